import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ProjectionQuery, ProjectionView, RunView } from "./api/types";
import { App } from "./App";
import { type MockApi, mockApi } from "./api/mock";

let root: HTMLElement;
let api: MockApi;

const tick = async (ms = 30) => {
  await act(async () => {
    await new Promise((r) => setTimeout(r, ms));
  });
};
const $ = <E extends Element = HTMLElement>(sel: string) => root.querySelector<E & HTMLElement>(sel);
const click = async (sel: string) => {
  const el = $(sel);
  if (!el) throw new Error(`no ${sel}`);
  await act(() => el.click());
  await tick();
};
const type = async (sel: string, value: string) => {
  const el = $<HTMLInputElement>(sel);
  if (!el) throw new Error(`no ${sel}`);
  await act(() => {
    el.value = value;
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await tick();
};

/** Finishes the mock's running compression as run #1 of `recipe`. */
const finishRun = async (recipe: string) => {
  await act(() =>
    api.finishJob({
      id: 1, recipe_name: recipe, recipe_toml: "", source: "/mock/model", output: "/mock/out", seconds: 0.5, source_bytes: 100,
      planned_bytes: 50, written_bytes: 100, mean_rel_error: 0.01, content_hash: "abc", tensors: [],
      heatmap: { layers: [], kinds: [], cells: [] }, files: [],
    }),
  );
};

beforeEach(async () => {
  root = document.createElement("div");
  document.body.appendChild(root);
  api = mockApi();
  await act(() => render(<App api={api} />, root));
  await tick();
});
afterEach(() => {
  render(null, root);
  root.remove();
});

describe("Open", () => {
  it("opens a typed path and virtualises a 5000-row tensor table", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    expect(api.calls.some((c) => c.method === "openModel" && c.args[0] === "/mock/model")).toBe(true);
    expect($("#model-summary")?.textContent).toContain("llama");
    const rows = root.querySelectorAll("#tensor-table .tr");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(100);
    expect($("[data-testid=tensor-table-count]")?.textContent).toContain("5000 rows");
  });

  it("opens a GGUF as a job with progress, and names a failure", async () => {
    await type("#model-path", "/mock/model.Q4_1.gguf");
    await click("#open-model");
    expect(api.calls.some((c) => c.method === "startOpenModel" && c.args[0] === "/mock/model.Q4_1.gguf")).toBe(true);
    expect(api.calls.some((c) => c.method === "openModel")).toBe(false);
    expect($("#model-summary")?.textContent).toContain("llama");
    await type("#model-path", "/mock/missing.gguf");
    await click("#open-model");
    expect(root.textContent).toContain("could not open /mock/missing.gguf");
  });

  it("filters and sorts the tensor table", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await type("[data-testid=tensor-table-filter]", "layers.3.");
    expect($("[data-testid=tensor-table-count]")?.textContent).toContain("of 5000");
    const headers = root.querySelectorAll<HTMLButtonElement>("#tensor-table .th");
    await act(() => headers[0]?.click());
    await act(() => headers[0]?.click());
    const first = root.querySelector("#tensor-table .tr .td")?.textContent ?? "";
    expect(first).toContain("layers.3");
  });

  it("shows an error with its cause", async () => {
    await type("#model-path", "/missing/model");
    await click("#open-model");
    const err = $("[data-testid=error]")?.textContent ?? "";
    expect(err).toContain("could not open /missing/model");
    expect(err).toContain("caused by: No such file");
  });

  it("lists recent models from the saved settings", () => {
    expect(root.textContent).toContain("/mock/recent");
  });

  it("offers the bundled demo model until a model is open", async () => {
    await click("#open-demo");
    expect(api.calls.some((c) => c.method === "openModel" && c.args[0] === "/mock/demo")).toBe(true);
    expect($("#open-demo")).toBeNull();
  });
});

describe("Recipe", () => {
  beforeEach(async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-recipe");
  });

  it("re-plans on every edit and shows the new size", async () => {
    expect($("#plan-size")?.textContent).toContain("→");
    const before = Number($("#plan-size")?.dataset.bytes);
    await type("#recipe-toml", 'name = "x"\n');
    const after = Number($("#plan-size")?.dataset.bytes);
    expect(after).toBeGreaterThan(before);
    expect($("#edit-ms")).not.toBeNull();
  });

  it("keeps the last plan and shows the error for a bad recipe", async () => {
    await type("#recipe-toml", '[default.quantize]\nformat = "q3_z"\n');
    expect(root.textContent).toContain("unknown format q3_z");
  });

  it("applies a preset", async () => {
    const sel = $<HTMLSelectElement>("#preset-select");
    await act(() => {
      if (sel) {
        sel.value = "gguf-q4_0";
        sel.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
    await click("#apply-preset");
    expect(($<HTMLTextAreaElement>("#recipe-toml")?.value ?? "")).toContain("q4_0");
  });
});

describe("Run and Export", () => {
  const run: RunView = {
    id: 1,
    recipe_name: "w8",
    recipe_toml: "",
    source: "/mock/model",
    output: "/mock/out",
    seconds: 0.5,
    source_bytes: 100,
    planned_bytes: 50,
    written_bytes: 100,
    mean_rel_error: 0.01,
    content_hash: "abc",
    tensors: [{ name: "t", action: "q8_0", format: "q8_0", shape: [2, 2], source_bytes: 8, planned_bytes: 4, notes: [], metrics: { rel_error: 0.01, snr_db: 40, cosine: 1, max_abs_error: 0.1, sparsity: 0 }, calib_loss: null }],
    heatmap: { layers: [0], kinds: ["mlp"], cells: [0.01] },
    files: [],
  };

  it("streams progress, shows the result, and exports it", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-run");
    await click("#run-start");
    expect($("#run-progress")?.textContent).toContain("1 / 2");
    expect(($<HTMLButtonElement>("#run-cancel"))?.disabled).toBe(false);
    await act(() => api.finishJob(run));
    await tick();
    expect($("#run-result")?.textContent).toContain("Run #1");
    expect($("[data-testid=heatmap]")).not.toBeNull();
    expect($("[data-testid=heatmap-legend]")?.textContent).toContain("relative error");
    expect($("[data-testid=histogram]")).not.toBeNull();
    // Weight error stands in for accuracy: marked as a proxy on the number and the table's columns.
    expect($("#run-error")?.dataset.provenance).toBe("proxy");
    expect($("#run-error")?.getAttribute("title")).toMatch(/^proxy, not a measured accuracy/);
    expect($("#run-error")?.textContent).toBe("0.01");
    expect(Array.from(root.querySelectorAll(".vtable-head [data-provenance=proxy]")).map((e) => e.textContent)).toEqual(["rel err", "SNR dB"]);
    await click("#nav-export");
    expect(root.querySelector<HTMLInputElement>("input[value=gguf]")?.disabled).toBe(true);
    await click("#export-run");
    expect($("#export-result")?.textContent).toContain("model.safetensors");
  });

  it("asks a GPTQ recipe for its calibration set and passes it to the job", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-run");
    expect($("#calibration-row")).toBeNull();
    await click("#nav-recipe");
    await type("#recipe-toml", '[default.quantize]\nformat = "int4_g32_sym"\nalgorithm = "gptq"\n');
    await click("#nav-run");
    expect($("#calibration-row")?.textContent).toContain("tensors are decided by this set");
    await type("#calibration-path", "/data/calib.txt");
    await type("#calibration-skip", "65536");
    await click("#run-start");
    const call = api.calls.filter((c) => c.method === "startCompress").pop();
    expect(call?.args[4]).toEqual({ samples: "/data/calib.txt", windows: 128, window: 512, skip_chars: 65536 });
  });

  it("shows a failed job's error", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-run");
    await click("#run-start");
    await act(() => api.failJob({ message: "compression failed", causes: ["disk full"] }));
    await tick();
    expect(root.textContent).toContain("caused by: disk full");
  });
});

describe("Validate", () => {
  it("asks for a run first, then shows original vs compressed metrics", async () => {
    await click("#nav-validate");
    expect(root.textContent).toContain("Run a compression first");
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-run");
    await click("#run-start");
    await finishRun("w8");
    await tick();
    await click("#nav-validate");
    await click("#validate-start");
    const table = $("#validate-metrics")?.textContent ?? "";
    expect(table).toContain("perplexity");
    expect(table).toContain("+5.00%");
  });
});

describe("Compare", () => {
  it("plots measured runs only, lists the rest as not measured, and switches the accuracy axis", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-run");
    await click("#run-start");
    await finishRun("w4-g32");
    await tick();
    await click("#nav-compare");
    await tick();
    const rows = $("#variants")?.textContent ?? "";
    expect(rows).toContain("+0.40% (worse)");
    expect(rows).toContain("not measured");
    expect(root.querySelectorAll("[data-testid=frontier] circle").length).toBe(1);
    expect($("#proxy-banner")).toBeNull();
    expect($("#recommendation")?.textContent).toContain("Ship w4-g32");
    const select = $<HTMLSelectElement>("#compare-metric")!;
    await act(() => {
      select.value = "weight error (proxy)";
      select.dispatchEvent(new Event("change"));
    });
    await tick();
    expect(api.calls.filter((c) => c.method === "compare").pop()?.args[1]).toBe("weight error (proxy)");
    expect($("#proxy-banner")?.textContent).toContain("proxy");
    // The proxy's values carry the mark on the number itself; measured values carry none.
    const marked = Array.from(root.querySelectorAll<HTMLElement>("#variants [data-provenance]"));
    expect(marked.map((e) => [e.dataset.provenance, e.textContent])).toEqual([["proxy", "4.6"]]);
    expect(marked[0]?.getAttribute("title")).toMatch(/^proxy, not a measured accuracy/);
  });
});

describe("Keyboard", () => {
  it("Alt+digit goes to a screen and Alt+arrows to the next or previous one", async () => {
    const key = async (init: KeyboardEventInit) => {
      await act(() => {
        window.dispatchEvent(new KeyboardEvent("keydown", { bubbles: true, ...init }));
      });
      await tick();
    };
    await key({ key: "5", code: "Digit5", altKey: true });
    expect($("#nav-project")?.className).toContain("active");
    await key({ key: "ArrowDown", altKey: true });
    expect($("#nav-compare")?.className).toContain("active");
    await key({ key: "ArrowUp", altKey: true });
    await key({ key: "ArrowUp", altKey: true });
    expect($("#nav-validate")?.className).toContain("active");
    // Plain digits are typing, not navigation.
    await key({ key: "1", code: "Digit1" });
    expect($("#nav-validate")?.className).toContain("active");
    expect($("#nav-open")?.getAttribute("title")).toBe("Alt+1");
  });
});

describe("Sweep", () => {
  it("sends the chosen recipes and Slurm options, streams the scheduler's lines and lists each variant", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-compare");
    expect(($<HTMLButtonElement>("#sweep-start"))?.disabled).toBe(true);
    await type("#sweep-out", "/shared/sweeps/m");
    const executor = $<HTMLSelectElement>("#sweep-executor")!;
    await act(() => {
      executor.value = "slurm";
      executor.dispatchEvent(new Event("change"));
    });
    await tick();
    await type("#sweep-gres", "gpu:1");
    await type("#sweep-partition", "  ");
    await click("#sweep-start");
    const req = api.calls.filter((c) => c.method === "startSweep").pop()?.args[0] as Record<string, unknown>;
    expect(req.recipes).toEqual(["w8", "w4-g32", "gguf-q4_0"]);
    expect(req.executor).toBe("slurm");
    expect(req.gres).toBe("gpu:1");
    expect(req.partition).toBeNull();
    expect(req.detach).toBe(false);
    expect(req.validation_windows).toBeNull();
    const saved = api.calls.filter((c) => c.method === "saveSettings").pop()?.args[0] as { sweep: Record<string, string> };
    expect(saved.sweep).toMatchObject({ out: "/shared/sweeps/m", executor: "slurm", gres: "gpu:1" });
    expect($("#sweep-log")?.textContent).toContain("Slurm array job 7");
    expect(root.querySelectorAll("#sweep-variants tbody tr").length).toBe(3);
    expect($("#sweep-recommendation")?.textContent).toBe("Ship w8.");

    // A window count validates on the first N windows; one that gives no standard error is refused.
    await type("#sweep-windows", "1");
    expect($<HTMLButtonElement>("#sweep-start")!.disabled).toBe(true);
    await type("#sweep-windows", "16");
    await click("#sweep-start");
    expect((api.calls.filter((c) => c.method === "startSweep").pop()?.args[0] as { validation_windows: number }).validation_windows).toBe(16);
    await type("#sweep-windows", "");

    await click("#sweep-detach");
    await click("#sweep-start");
    expect((api.calls.filter((c) => c.method === "startSweep").pop()?.args[0] as { detach: boolean }).detach).toBe(true);
    expect($("#sweep-variants")?.textContent).toContain("Slurm job 7_2");
    expect($("#sweep-queued-note")?.textContent).toContain("Run the same sweep again");
    expect($("#sweep-recommendation")).toBeNull();
  });
});

describe("Budget", () => {
  it("scans once, solves budgets against it, and puts the chosen recipe in the editor", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-recipe");
    expect(($<HTMLButtonElement>("#scan-start"))?.disabled).toBe(true);
    await type("#scan-samples", "/data/text.txt");
    await click("#scan-quick");
    await click("#scan-start");
    const scan = api.calls.filter((c) => c.method === "startScan").pop();
    // The backend's default candidates in its order (the mock ranks q4_0, q4_k, q8_0; nf4 is not one).
    expect((scan?.args[0] as { formats: string[] }).formats).toEqual(["q4_0", "q4_k", "q8_0"]);
    expect((scan?.args[0] as { predict_from: string | null }).predict_from).toBe("q4_0");
    expect($("#scan-summary")?.textContent).toContain("2048 tokens");
    expect($("[data-testid=sensitivity]")).not.toBeNull();
    await tick();
    expect($("#allocation")?.textContent).toContain("predicted KL");
    expect((api.calls.filter((c) => c.method === "allocate").pop()?.args[0] as { like: string }).like).toBe("gguf-q4_k_m");
    const kind = $<HTMLSelectElement>("#budget-kind")!;
    await act(() => {
      kind.value = "bpw";
      kind.dispatchEvent(new Event("change"));
    });
    await tick();
    const value = $<HTMLInputElement>("#budget-value")!;
    await act(() => {
      value.value = "6";
      value.dispatchEvent(new Event("change"));
    });
    await tick();
    expect((api.calls.filter((c) => c.method === "allocate").pop()?.args[0] as { value: number }).value).toBe(6);
    await click("#use-allocation");
    expect(($<HTMLTextAreaElement>("#recipe-toml"))?.value).toContain("auto-5.00bpw");
  });
});

describe("Cache", () => {
  it("measures hit rates on a query log and puts a threshold's rates into the projection", async () => {
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-project");
    expect(($<HTMLButtonElement>("#cache-start"))?.disabled).toBe(true);
    await type("#cache-log", "/data/queries.jsonl");
    await type("#cache-thresholds", "0.85, 0.95");
    await click("#cache-start");
    const req = api.calls.filter((c) => c.method === "startCacheEstimate").pop()?.args[0] as { thresholds: number[]; log: string; ttl_seconds: number | null };
    expect(req.thresholds).toEqual([0.85, 0.95]);
    expect(req.ttl_seconds).toBeNull();
    expect($("#cache-summary")?.textContent).toContain("1,000 requests");
    expect(root.querySelectorAll("#cache-rows tbody tr").length).toBe(2);
    expect($("#cache-chart")).not.toBeNull();
    expect($("#cache-tenants")?.textContent).toContain("search 70.0%");
    await click(".use-cache[data-threshold='0.95']");
    const q = api.calls.filter((c) => c.method === "project").pop()?.args[0] as { traffic: { cache: { semantic_hit_rate: number; source: string } | null } };
    expect(q.traffic.cache?.semantic_hit_rate).toBeCloseTo(0.05);
    expect(q.traffic.cache?.source).toContain("threshold 0.95");
    expect($("#cache-in-use")?.textContent).toContain("50.0% exact");
    await click("#cache-clear");
    const back = api.calls.filter((c) => c.method === "project").pop()?.args[0] as { traffic: { cache: unknown } };
    expect(back.traffic.cache).toBeNull();
  });
});

describe("Project", () => {
  it("sets this machine's measured decode beside the projection and projects with the fitted efficiency on request", async () => {
    const side = { label: "original", fits: true, memory: [], latency: [], cost: [], total_usd_month: null, usd_per_1m_requests: null, slo: "met" };
    const asked: ProjectionQuery[] = [];
    let measured = false;
    api.project = async (q: ProjectionQuery): Promise<ProjectionView> => {
      asked.push(q);
      return {
        device: "CPU box", scenario: "s", mode: "m", original: side, compressed: null, summary: null, ranking: [], ranking_verdict: null,
        latency_verdict: null, latency_premium: null, batch_terms: [], unknowns: [], notes: [], project_ms: 1,
        measured: measured
          ? {
              source: "validation of run #1 (cpu, 2 CPUs)",
              device: "x86_box",
              points: [
                { batch: 1, measured_tok_s: 27.1, projected_tok_s: 136, calibrated_tok_s: 27.9 },
                { batch: 4, measured_tok_s: 50.2, projected_tok_s: 537, calibrated_tok_s: 80.6 },
                { batch: 16, measured_tok_s: 141, projected_tok_s: 2052, calibrated_tok_s: null },
              ],
              said: "calibrated on validation of run #1: η_bw 0.170",
              applied: q.calibrate_measured,
            }
          : null,
      };
    };
    await type("#model-path", "/mock/model");
    await click("#open-model");
    await click("#nav-project");
    expect($("#measured-speed")?.textContent).toContain("No decode speed measured yet");
    expect($("#measured-chart")).toBeNull();
    measured = true;
    const rpd = $<HTMLInputElement>("#rpd")!;
    await act(() => {
      rpd.value = "1000";
      rpd.dispatchEvent(new Event("change"));
    });
    await tick();
    const rows = root.querySelectorAll("#measured-table tbody tr");
    expect(rows.length).toBe(3);
    expect(rows[1]!.textContent).toContain("50.2 tok/s");
    expect(rows[2]!.textContent).toContain("–");
    // Three series: the measured dots, the default roofline, the fitted one (only where it exists).
    expect(root.querySelectorAll("#measured-chart [data-series='measured'] circle.datum").length).toBe(3);
    expect(root.querySelectorAll("#measured-chart [data-series='projected (fitted)'] circle.datum").length).toBe(2);
    expect(rows[0]!.querySelectorAll("[data-provenance=projected]").length).toBe(2);
    expect(asked.at(-1)?.calibrate_measured).toBe(false);
    await click("#calibrate-measured");
    expect(asked.at(-1)?.calibrate_measured).toBe(true);
    expect($("#measured-speed")?.textContent).toContain("(in use above)");
  });
});
