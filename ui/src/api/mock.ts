// A mock Api for vitest UI unit tests ONLY (never imported by the app). It returns small, clearly
// synthetic responses shaped exactly like the generated types, and records the calls it receives.
import type { Api } from "./api";
import { ApiFailure } from "./api";
import type * as T from "./types";

export interface MockApi extends Api {
  calls: { method: string; args: unknown[] }[];
  /** Resolves the last started job with `run` (or fails it with `error`). */
  finishJob(run: T.RunView): void;
  failJob(error: T.ApiError): void;
}

const tensors: T.TensorRow[] = Array.from({ length: 5000 }, (_, i) => ({
  name: `model.layers.${Math.floor(i / 7)}.mlp.proj_${i % 7}.weight`,
  dtype: "F16",
  shape: [64, 32],
  role: i % 7 < 3 ? "attention" : "mlp",
  layer: Math.floor(i / 7),
  params: 2048,
  bytes: 4096,
}));

export const mockModel: T.ModelView = {
  summary: {
    root: "/mock/model",
    architecture: "llama",
    parameters: 2048 * tensors.length,
    tensor_count: tensors.length,
    bytes: 4096 * tensors.length,
    file_bytes: 4096 * tensors.length + 1000,
    shards: 1,
    by_dtype: [{ key: "F16", tensors: tensors.length, elements: 2048 * tensors.length, bytes: 4096 * tensors.length }],
    by_role: [
      { key: "attention", tensors: 3, elements: 6144, bytes: 12288 },
      { key: "mlp", tensors: 4, elements: 8192, bytes: 16384 },
    ],
    config: null,
  },
  tensors,
  open_ms: 1,
};

function planFor(toml: string): T.PlanView {
  const fmt = /format\s*=\s*"([^"]+)"/.exec(toml)?.[1] ?? null;
  const rows = tensors.map((t) => ({
    name: t.name,
    action: fmt ?? "keep",
    format: fmt,
    requested_format: null,
    reason: fmt ? "default" : "default",
    notes: [],
    out_shape: t.shape,
    source_bytes: t.bytes,
    planned_bytes: fmt ? t.bytes / 2 : t.bytes,
    dropped: false,
  }));
  const planned = rows.reduce((a, r) => a + r.planned_bytes, 0);
  return {
    recipe: { name: fmt ?? "keep", description: "", toml, default_action: fmt ?? "keep", ignore: [], rules: [], ignored_in_selection: [] },
    rows,
    totals: {
      tensors: rows.length,
      quantized: fmt ? rows.length : 0,
      pruned: 0,
      kept: fmt ? 0 : rows.length,
      dropped: 0,
      fallbacks: 0,
      calibrated: /algorithm = "(gptq|awq)"|method = "wanda/.test(toml) ? rows.length : 0,
      params_before: 2048 * rows.length,
      params_after: 2048 * rows.length,
      source_bytes: 4096 * rows.length,
      planned_bytes: planned,
      bytes_by_format: [{ key: fmt ?? "f16", tensors: 0, elements: 0, bytes: planned }],
    },
    plan_ms: 0.1,
  };
}

export function mockApi(): MockApi {
  const calls: MockApi["calls"] = [];
  let onEvent: ((e: T.JobEvent) => void) | null = null;
  const rec =
    <A extends unknown[], R>(method: string, f: (...a: A) => R) =>
    (...a: A): R => {
      calls.push({ method, args: a });
      return f(...a);
    };
  return {
    calls,
    finishJob: (run) => onEvent?.({ kind: "finished", run }),
    failJob: (error) => onEvent?.({ kind: "failed", error }),
    startup: rec("startup", async () => ({ open: null, demo: "/mock/demo", settings: { recent_models: ["/mock/recent"], last_recipe_toml: null, scenario: null, device: null, compute_device: null, sweep: null }, version: "test" })),
    saveSettings: rec("saveSettings", async () => undefined),
    openModel: rec("openModel", async (path: string) => {
      if (path.includes("missing")) throw new ApiFailure(`could not open ${path}`, ["No such file or directory (os error 2)"]);
      return mockModel;
    }),
    startOpenModel: rec("startOpenModel", async (path: string, cb: (e: T.JobEvent) => void) => {
      cb({ kind: "stage", name: "converting tensors", total: 2 });
      cb({ kind: "advance", done: 2, items: ["a", "b"] });
      if (path.includes("missing")) cb({ kind: "failed", error: { message: `could not open ${path}`, causes: [] } });
      else cb({ kind: "opened", model: mockModel });
      return 7;
    }),
    listPresets: rec("listPresets", async () => [
      { name: "w8", description: "int8", toml: 'name = "w8"\n[default.quantize]\nformat = "int8_channel"\n' },
      { name: "gguf-q4_0", description: "q4_0", toml: 'name = "gguf-q4_0"\n[default.quantize]\nformat = "q4_0"\n' },
    ]),
    // Registry order differs from the scan's: the studio must follow `scan_default`, not the list.
    listFormats: rec("listFormats", async () => [
      { id: "q8_0", bits_per_weight: 8.5, description: "", scan_default: 2 },
      { id: "q4_0", bits_per_weight: 4.5, description: "", scan_default: 0 },
      { id: "nf4", bits_per_weight: 4.5, description: "", scan_default: null },
      { id: "q4_k", bits_per_weight: 4.5, description: "", scan_default: 1 },
    ]),
    loadRecipe: rec("loadRecipe", async (p: string) => `name = "${p}"\n[default.quantize]\nformat = "${p === "w8" ? "int8_channel" : "q4_0"}"\n`),
    saveRecipe: rec("saveRecipe", async () => undefined),
    plan: rec("plan", async (toml: string) => {
      if (toml.includes("q3_z")) throw new ApiFailure("unknown format q3_z", ["valid: q4_0, q8_0"]);
      return planFor(toml);
    }),
    editRecipe: rec("editRecipe", async (toml: string) => ({ ...planFor(toml).recipe })),
    startCompress: rec("startCompress", async (_t: string, _o: string, _w: boolean, _d: string, _c: T.CalibrationInput | null, cb: (e: T.JobEvent) => void) => {
      onEvent = cb;
      cb({ kind: "stage", name: "compress", total: 2 });
      cb({ kind: "advance", done: 1, items: [tensors[0]?.name ?? ""] });
      return 1;
    }),
    cancelJob: rec("cancelJob", async () => {
      onEvent?.({ kind: "cancelled" });
      return true;
    }),
    listRuns: rec("listRuns", async () => []),
    tensorHistogram: rec("tensorHistogram", async () => ({ min: -1, max: 1, before: [1, 2, 3, 2], after: [0, 4, 4, 0], zeros_before: 0, zeros_after: 0, elements: 8 })),
    listHardware: rec("listHardware", async () => []),
    listScenarios: rec("listScenarios", async () => []),
    project: rec("project", async () => {
      throw new ApiFailure("projection is not mocked");
    }),
    compare: rec("compare", async (_q: T.ProjectionQuery, metric: string | null) => ({
      cost_axis: "stored weight bytes",
      metric: metric ?? "perplexity",
      accuracy_axis: `${metric ?? "perplexity"}: relative change from the original, signed so that up is better`,
      metrics: ["perplexity", "KL divergence", "weight error (proxy)"],
      is_proxy: metric === "weight error (proxy)",
      warnings: ["Accuracy not measured for: w8."],
      recommendation: "Ship w4-g32.",
      reasons: ["It is on the accuracy-vs-size frontier."],
      points: [
        { run_id: 1, label: "#1 w4-g32", weight_bytes: 300000, accuracy: -0.004, change_is_relative: true, change_text: "+0.40% (worse)", metric_value: 4.6, usd_month: null, on_frontier: true, dominated: false },
        { run_id: 2, label: "#2 w8", weight_bytes: 600000, accuracy: null, change_is_relative: true, change_text: null, metric_value: null, usd_month: null, on_frontier: false, dominated: false },
      ],
    })),
    exportFormats: rec("exportFormats", async () => [
      { id: "safetensors", label: "Dense safetensors", loads_in: "any", available: true, note: "" },
      { id: "gguf", label: "GGUF", loads_in: "llama.cpp", available: false, note: "not built yet" },
    ]),
    exportRun: rec("exportRun", async (r: T.ExportRequest) => ({ target: r.target, files: [{ path: "model.safetensors", bytes: 10, sha256: "ab" }] })),
    computeDevices: rec("computeDevices", async () => [{ id: "cpu", label: "CPU" }]),
    startValidate: rec("startValidate", async (_r: T.ValidateRequest, cb: (e: T.JobEvent) => void) => {
      cb({ kind: "stage", name: "perplexity", total: 2 });
      cb({
        kind: "validated",
        result: {
          run_id: 1,
          family: "llama",
          samples: "/mock/samples.txt",
          sample_kind: "text",
          device: "cpu",
          metrics: [{ name: "perplexity", unit: "", original: 10, compressed: 10.5, better: "lower" }],
          speed: [],
          notes: [],
          seconds: 1,
        },
      });
      return 2;
    }),
    startScan: rec("startScan", async (r: T.ScanRequest, cb: (e: T.JobEvent) => void) => {
      cb({ kind: "stage", name: "sensitivity scan", total: 4 });
      cb({
        kind: "scanned",
        result: {
          tokens: 2048,
          seconds: 6,
          proxy_spearman: 0.91,
          formats: r.formats,
          layers: ["embed", "0", "head"],
          kinds: ["whole tensor", "self_attn.q_proj"],
          cells: r.formats.flatMap((_, i) => [0.001 / (i + 1), null, null, 0.002 / (i + 1), 0.02 / (i + 1), null]),
          measured: r.formats.flatMap(() => [true, false, false, true, true, false]),
          notes: [],
        },
      });
      return 3;
    }),
    startCacheEstimate: rec("startCacheEstimate", async (r: T.CacheRequest, cb: (e: T.JobEvent) => void) => {
      cb({ kind: "stage", name: "replaying the log", total: 100 });
      cb({
        kind: "cache_estimated",
        result: {
          log: r.log,
          requests: 1000,
          distinct_queries: 400,
          capacity: r.capacity,
          ttl_seconds: r.ttl_seconds,
          updates: r.updates,
          rows: r.thresholds.map((t, i) => ({
            threshold: t,
            exact_hit_rate: 0.5,
            semantic_hit_rate: 0.1 / (i + 1),
            wrong_answer_share: 0.4 / (i + 1),
            precision: 0.6 + i / 10,
            recall: 0.8 - i / 10,
          })),
          tenants: [["search", 0.7], ["ads", 0.3]],
          embedded_per_second: 160,
          seconds: 4,
          search: "exact",
          method: ["exact hit = identical query after normalisation"],
        },
      });
      return 4;
    }),
    startSweep: rec("startSweep", async (r: T.SweepRequest, cb: (e: T.JobEvent) => void) => {
      cb({ kind: "stage", name: "sweep", total: r.recipes.length });
      if (r.executor === "slurm") cb({ kind: "log", line: `submitted ${r.recipes.length} variant(s) as Slurm array job 7 after probe job 6` });
      cb({
        kind: "swept",
        result: {
          out: r.out,
          variants: r.recipes.map((name, i) =>
            r.detach
              ? { recipe: name, state: "queued", detail: `Slurm job 7_${i}` }
              : { recipe: name, state: "recorded", detail: `${r.out}/runs/${name}-0${i}.json` },
          ),
          recommendation: r.detach ? null : `Ship ${r.recipes[0]}.`,
          report_html: r.detach ? null : `${r.out}/report.html`,
          report_md: r.detach ? null : `${r.out}/report.md`,
        },
      });
      return 5;
    }),
    allocate: rec("allocate", async (q: T.BudgetQuery) => ({
      budget_bytes: 300000,
      chosen: { bytes: 299000, bpw: q.value ?? 5, predicted_kl: 0.014 },
      recipe_toml: 'name = "auto-5.00bpw"\n[default.quantize]\nformat = "q5_0"\n',
      frontier: [
        { bytes: 240000, bpw: 6.7, predicted_kl: 0.09 },
        { bytes: 350000, bpw: 9.8, predicted_kl: 0.001 },
      ],
      current: { bytes: 290000, bpw: 7.9, predicted_kl: 0.016 },
      notes: [],
    })),
    pickPath: rec("pickPath", async () => null),
    onFileDrop: rec("onFileDrop", async () => () => undefined),
  };
}
