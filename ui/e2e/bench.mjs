// Studio timings through the real app (run under Xvfb, not part of the test suite):
//   PARETO_BENCH_MODEL=/path/to/synth8b node e2e/bench.mjs
// Prints: open → populated tensor table (ms, measured in the webview from the click to the painted
// table), recipe edit → updated numbers (ms, median of 10 edits), and the longest frame during a
// compression run of the bundled model.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { repo, shot, start, typeInto } from "./driver.mjs";

const big = process.env.PARETO_BENCH_MODEL;
if (!big) throw new Error("set PARETO_BENCH_MODEL to a model folder (e.g. bench-data/synth8b)");
const { browser: b, stop } = await start({ port: 4450 });
const ms = async (sel) => Number(await (await b.$(sel)).getAttribute("data-ms"));
const median = (xs) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
try {
  const opens = [];
  for (let i = 0; i < 3; i++) {
    await typeInto(b, "#model-path", big);
    await (await b.$("#open-model")).click();
    await b.waitUntil(async () => (await b.$("#open-ms").isExisting()) && Number(await (await b.$("#open-ms")).getAttribute("data-seq")) === i + 1, {
      timeout: 120000,
      interval: 250,
    });
    await (await b.$("#tensor-table .tr")).waitForDisplayed({ timeout: 60000 });
    opens.push(await ms("#open-ms"));
  }
  const rows = await (await b.$("[data-testid=tensor-table-count]")).getText();
  await shot(b, "bench-open-8b");
  await (await b.$("#nav-recipe")).click();
  await (await b.$("#plan-size")).waitForDisplayed({ timeout: 30000 });
  await (await b.$("#nav-open")).click();
  await (await b.$("#nav-recipe")).click();
  const edits = [];
  const area = await b.$("#recipe-toml");
  for (let i = 0; i < 10; i++) {
    const fmt = i % 2 ? "q8_0" : "q4_0";
    const prev = await (await b.$("#plan-size")).getAttribute("data-bytes");
    await b.execute(
      (el, f) => {
        el.value = `name = "bench"\n[default.quantize]\nformat = "${f}"\n`;
        el.dispatchEvent(new Event("input", { bubbles: true }));
      },
      area,
      fmt,
    );
    await b.waitUntil(async () => (await (await b.$("#plan-size")).getAttribute("data-bytes")) !== prev, { timeout: 10000 });
    await b.pause(150);
    edits.push(await ms("#edit-ms"));
  }
  // A compression run while the frame monitor watches (PARETO_BENCH_RUN_MODEL, default the bundled model).
  const runModel = process.env.PARETO_BENCH_RUN_MODEL ?? path.join(repo, "models/stories260K");
  await (await b.$("#nav-open")).click();
  await typeInto(b, "#model-path", runModel);
  await (await b.$("#open-model")).click();
  await (await b.$("#tensor-table .tr")).waitForDisplayed({ timeout: 20000 });
  await (await b.$("#nav-run")).click();
  const scratch = mkdtempSync(path.join(tmpdir(), "pareto-bench-"));
  process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
  await typeInto(b, "#out-path", path.join(scratch, "out"));
  await (await b.$("#run-start")).click();
  const t0 = Date.now();
  await (await b.$("#run-result")).waitForDisplayed({ timeout: 600000 });
  const runSeconds = (Date.now() - t0) / 1000;
  await (await b.$("#max-frame")).waitForExist({ timeout: 10000 });
  const frame = await ms("#max-frame");
  console.log(JSON.stringify({ model: big, tensor_rows: rows, open_to_table_ms: opens, edit_to_numbers_ms: edits, edit_median_ms: median(edits), run_model: runModel, run_wall_s: runSeconds, longest_frame_during_run_ms: frame }, null, 2));
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await stop();
  process.exit(process.exitCode ?? 0);
}
