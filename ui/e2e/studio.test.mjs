// End-to-end: the real app under Xvfb through WebDriver. Open the bundled model by typed path, apply
// a preset, run compression, see the result, export, and check the exported files on disk.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { repo, shot, start, typeInto } from "./driver.mjs";

const model = path.join(repo, "models/stories260K");
const work = mkdtempSync(path.join(tmpdir(), "pareto-e2e-"));
let session;

before(async () => {
  session = await start();
});
after(async () => {
  await session?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("open the bundled model by typed path", async () => {
  const b = session.browser;
  await typeInto(b, "#model-path", model);
  await (await b.$("#open-model")).click();
  const row = await b.$("#tensor-table .tr");
  await row.waitForDisplayed({ timeout: 20000 });
  const summary = await (await b.$("#model-summary")).getText();
  assert.match(summary, /llama/);
  const count = await (await b.$("[data-testid=tensor-table-count]")).getText();
  assert.match(count, /\d+ rows/);
  await shot(b, "01-open");
});

test("apply a preset and see the plan update", async () => {
  const b = session.browser;
  await (await b.$("#nav-recipe")).click();
  const size = await b.$("#plan-size");
  await size.waitForDisplayed({ timeout: 15000 });
  const select = await b.$("#preset-select");
  await select.waitForExist({ timeout: 10000 });
  await b.waitUntil(async () => (await select.getText()).includes("gguf-q8_0"), { timeout: 10000 });
  await select.selectByVisibleText("gguf-q8_0");
  await (await b.$("#apply-preset")).click();
  await b.waitUntil(async () => (await (await b.$("#recipe-toml")).getValue()).includes("q8_0"), { timeout: 10000 });
  await b.waitUntil(async () => (await (await b.$("#plan-table")).getText()).includes("q8_0"), { timeout: 10000 });
  const text = await size.getText();
  assert.match(text, /→/);
  await shot(b, "02-recipe");
});

test("run compression and see the result", async () => {
  const b = session.browser;
  await (await b.$("#nav-run")).click();
  await typeInto(b, "#out-path", path.join(work, "out"));
  await (await b.$("#run-start")).click();
  const result = await b.$("#run-result");
  await result.waitForDisplayed({ timeout: 60000 });
  assert.match(await result.getText(), /Run #1/);
  assert.match(await (await b.$("#run-output")).getText(), /out/);
  await (await b.$("[data-testid=heatmap]")).waitForDisplayed({ timeout: 10000 });
  await (await b.$("[data-testid=histogram]")).waitForDisplayed({ timeout: 20000 });
  assert.ok(existsSync(path.join(work, "out/model.safetensors")));
  await shot(b, "03-run");
});

test("validate the run against the original", async () => {
  const b = session.browser;
  await (await b.$("#nav-validate")).click();
  await typeInto(b, "#validate-limit", "2");
  await (await b.$("#validate-measure-speed")).click();
  await (await b.$("#validate-start")).click();
  const table = await b.$("#validate-metrics");
  await table.waitForDisplayed({ timeout: 180000 });
  const text = await table.getText();
  assert.match(text, /perplexity/);
  assert.match(text, /top-1 agreement/);
  await shot(b, "04-validate");
});

test("project cost before and after", async () => {
  const b = session.browser;
  await (await b.$("#nav-project")).click();
  const cost = await b.$("#cost-compressed");
  await cost.waitForDisplayed({ timeout: 15000 });
  const title = await cost.getAttribute("title");
  assert.match(title, /=/, "hover text shows the formula");
  assert.match(await (await b.$("#latency-boundary")).getText(), /Real-time vs batch: the latency requirement costs/);
  await shot(b, "05-project");
});

test("the decode measured on this machine sits beside the projection and can calibrate it", async () => {
  const b = session.browser;
  await (await b.$("#hardware-select")).selectByAttribute("value", "x86_c7i_8xlarge");
  const table = await b.$("#measured-table");
  await table.waitForDisplayed({ timeout: 15000 });
  const rows = await b.$$("#measured-table tbody tr");
  assert.equal(rows.length, 3, await table.getText());
  assert.equal(await (await rows[2].$("td")).getText(), "16");
  assert.match(await rows[2].getText(), /tok\/s/);
  await (await b.$("#calibrate-measured")).click();
  await b.waitUntil(async () => /in use above/.test(await (await b.$("#measured-speed")).getText()), { timeout: 15000 });
  await (await b.$("#measured-speed")).scrollIntoView();
  await shot(b, "05b-measured");
  await (await b.$("#calibrate-measured")).click();
  await (await b.$("#hardware-select")).selectByAttribute("value", "");
});

test("measure cache hit rates on a query log and price them", async () => {
  const b = session.browser;
  const log = path.join(work, "queries.txt");
  writeFileSync(log, ["How do I reset my password?", "What is the refund policy?", "how do I reset my  password?", "How can I reset my password?"].join("\n"));
  await typeInto(b, "#cache-log", log);
  await (await b.$("#cache-start")).click();
  const rows = await b.$("#cache-rows");
  const failed = await b.$("#cache-panel .error");
  await b.waitUntil(async () => (await rows.isDisplayed()) || (await failed.isExisting()), { timeout: 120000 });
  assert.ok(await rows.isDisplayed(), await (await b.$("#cache-panel")).getText());
  assert.match(await (await b.$("#cache-summary")).getText(), /4 requests, 3 distinct/);
  await (await b.$(".use-cache")).click();
  const inUse = await b.$("#cache-in-use");
  await inUse.waitForDisplayed({ timeout: 15000 });
  assert.match(await inUse.getText(), /25\.0% exact/);
  await b.waitUntil(async () => /measured on/.test((await (await b.$("#cache-savings")).getAttribute("title")) ?? ""), { timeout: 15000 });
  await (await b.$("#cache-panel")).scrollIntoView();
  await shot(b, "06-cache");
});

test("compare ranks the validated run on a measured metric", async () => {
  const b = session.browser;
  await (await b.$("#nav-compare")).click();
  const table = await b.$("#variants");
  await table.waitForDisplayed({ timeout: 30000 });
  await b.waitUntil(async () => /(worse|better|unchanged)/.test(await table.getText()), { timeout: 30000 });
  assert.equal(await (await b.$("#compare-metric")).getValue(), "perplexity");
  assert.equal(await (await b.$("#proxy-banner")).isExisting(), false);
  await shot(b, "07-compare");
});

test("sweep recipes into a report, on Slurm when a cluster answers", async () => {
  const b = session.browser;
  // CI starts a one-node Slurm (scripts/slurm-local.sh) before the studio tests; elsewhere the
  // sweep runs here.
  let slurm = false;
  try {
    execFileSync("sinfo", ["-h"], { stdio: "ignore" });
    slurm = true;
  } catch {}
  await (await b.$("#nav-compare")).click();
  await (await b.$("#sweep-panel")).scrollIntoView();
  await typeInto(b, "#sweep-out", path.join(work, "sweep"));
  if (slurm) await (await b.$("#sweep-executor")).selectByAttribute("value", "slurm");
  await (await b.$("#sweep-start")).click();
  const result = await b.$("#sweep-recommendation");
  const failed = await b.$("#sweep-panel .error");
  await b.waitUntil(async () => (await result.isExisting()) || (await failed.isExisting()), { timeout: 180000 });
  assert.ok(await result.isExisting(), await (await b.$("#sweep-panel")).getText());
  assert.match(await result.getText(), /^Ship /);
  const rows = await (await b.$("#sweep-variants")).getText();
  assert.equal((rows.match(/recorded/g) ?? []).length, 3, rows);
  if (slurm) assert.match(await (await b.$("#sweep-log")).getText(), /Slurm array job \d+/);
  assert.ok(existsSync(path.join(work, "sweep/report.html")));
  await (await b.$("#sweep-panel")).scrollIntoView();
  await shot(b, "07b-sweep");
});

test("find the best recipe for a budget from a sensitivity scan", async () => {
  const b = session.browser;
  await (await b.$("#nav-recipe")).click();
  await typeInto(b, "#scan-samples", path.join(repo, "assets/samples/tinystories/tinystories-valid-excerpt.txt"));
  await typeInto(b, "#scan-skip", "65536");
  await typeInto(b, "#scan-windows", "4");
  await (await b.$("#scan-start")).click();
  const alloc = await b.$("#allocation");
  const panel = await b.$("#budget-panel");
  // Until the allocation shows or the panel shows an error box (its text mentions "weight error", so
  // match the element, not the words).
  const failed = await b.$("#budget-panel .error");
  await b.waitUntil(async () => (await alloc.isDisplayed()) || (await failed.isExisting()), { timeout: 120000 });
  assert.ok(await alloc.isDisplayed(), await panel.getText());
  assert.match(await alloc.getText(), /predicted KL/);
  await (await b.$("[data-testid=sensitivity]")).waitForDisplayed({ timeout: 10000 });
  await (await b.$("#budget-panel")).scrollIntoView();
  await shot(b, "08-budget");
  await (await b.$("#use-allocation")).click();
  await b.waitUntil(async () => (await (await b.$("#recipe-toml")).getValue()).includes("auto-"), { timeout: 10000 });
});

test("export and check the files on disk", async () => {
  const b = session.browser;
  await (await b.$("#nav-export")).click();
  const target = path.join(work, "exported");
  await typeInto(b, "#export-path", target);
  await (await b.$("#export-run")).click();
  const res = await b.$("#export-result");
  await res.waitForDisplayed({ timeout: 30000 });
  for (const f of ["model.safetensors", "pareto-manifest.json", "report.json", "report.md", "config.json"]) {
    assert.ok(existsSync(path.join(target, f)), `${f} exported`);
  }
  assert.ok(statSync(path.join(target, "model.safetensors")).size > 1000);
  const manifest = JSON.parse(readFileSync(path.join(target, "pareto-manifest.json"), "utf8"));
  assert.equal(manifest.recipe.name, "gguf-q8_0");
  const report = JSON.parse(readFileSync(path.join(target, "report.json"), "utf8"));
  assert.ok(report.tensors.length > 0);
  await shot(b, "06-export");
});

test("a bad path shows a readable error", async () => {
  const b = session.browser;
  await (await b.$("#nav-open")).click();
  await typeInto(b, "#model-path", path.join(work, "no-such-model"));
  await (await b.$("#open-model")).click();
  const err = await b.$("[data-testid=error]");
  await err.waitForDisplayed({ timeout: 10000 });
  assert.match(await err.getText(), /no-such-model/);
});
