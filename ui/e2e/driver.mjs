// Shared WebDriver plumbing: starts tauri-driver (WebKitWebDriver underneath) and opens a session on
// the built app. Needs a display (Xvfb in CI).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const app =
  process.env.PARETO_APP ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "release/pareto-app");
export const shots = path.join(repo, "target/screenshots");

function waitPort(port, ms) {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.end(), resolve()));
      s.once("error", () => (Date.now() > end ? reject(new Error(`port ${port} never opened`)) : setTimeout(attempt, 100)));
    };
    attempt();
  });
}

/** Starts tauri-driver and a session; `config` isolates the app's settings dir. */
export async function start({ port = 4444, config } = {}) {
  mkdirSync(shots, { recursive: true });
  const cfg = config ?? mkdtempSync(path.join(tmpdir(), "pareto-e2e-cfg-"));
  const driverBin = process.env.TAURI_DRIVER ?? "tauri-driver";
  const nativePort = port + 100;
  const driver = spawn(driverBin, ["--port", String(port), "--native-port", String(nativePort), "--native-driver", "/usr/bin/WebKitWebDriver"], {
    // The paths the tests type are chosen for the session (the studio would otherwise ask, natively).
    env: { ...process.env, XDG_CONFIG_HOME: cfg, PARETO_STUDIO_ALLOW: [repo, tmpdir()].join(path.delimiter) },
    // tauri-driver logs every dropped keep-alive connection; keep its output out of test logs.
    stdio: ["ignore", "ignore", process.env.PARETO_E2E_DRIVER_LOG ? "inherit" : "ignore"],
  });
  // Never leave a driver (and its port) behind, whatever happens to this process.
  process.on("exit", () => driver.kill());
  await waitPort(port, 20000);
  const browser = await remote({
    hostname: "127.0.0.1",
    port,
    logLevel: "warn",
    capabilities: { "tauri:options": { application: app } },
  });
  const stop = async () => {
    await browser.deleteSession().catch(() => undefined);
    driver.kill();
  };
  return { browser, stop, cfg };
}

export async function shot(browser, name) {
  await browser.saveScreenshot(path.join(shots, `${name}.png`));
}

/** Sets a text field's value the way a user typing would (input events fire). */
export async function typeInto(browser, selector, value) {
  const el = await browser.$(selector);
  await el.waitForDisplayed({ timeout: 15000 });
  await el.clearValue();
  await el.setValue(value);
}
