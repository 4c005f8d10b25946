// End-to-end on the installed desktop bundle (the .deb the Tauri CLI builds, installed with apt): the app
// starts with no argument, offers the demo model shipped inside the bundle, opens it, and compresses it.
// scripts/test-app.sh runs this with PARETO_APP pointing at the installed binary.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { app, shot, start, typeInto } from "../e2e/driver.mjs";

const work = mkdtempSync(path.join(tmpdir(), "pareto-installed-"));
let session;

before(async () => {
  assert.ok(app.startsWith("/usr/"), `PARETO_APP names the installed binary, not ${app}`);
  session = await start();
});
after(async () => {
  await session?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("the installed app opens its bundled demo model", async () => {
  const b = session.browser;
  const demo = await b.$("#open-demo");
  await demo.waitForDisplayed({ timeout: 20000 });
  await demo.click();
  await (await b.$("#tensor-table .tr")).waitForDisplayed({ timeout: 20000 });
  assert.match(await (await b.$("#model-summary")).getText(), /llama/);
  assert.match(await (await b.$("#model-path")).getValue(), /\/usr\/lib\/.*models\/stories260K/);
  await shot(b, "installed-01-demo");
});

test("the installed app compresses the demo model", async () => {
  const b = session.browser;
  await (await b.$("#nav-run")).click();
  await typeInto(b, "#out-path", path.join(work, "out"));
  await (await b.$("#run-start")).click();
  await (await b.$("#run-result")).waitForDisplayed({ timeout: 60000 });
  assert.ok(existsSync(path.join(work, "out", "pareto-manifest.json")));
  await shot(b, "installed-02-run");
});
