import { useEffect, useState } from "preact/hooks";
import type { AllocationView, FormatInfo, HardwareInfo, Sensitivity } from "../../api/types";
import { HeatmapChart, Scatter } from "../../components/charts";
import { ErrorBox } from "../../components/ErrorBox";
import { JobProgress, useJob } from "../../components/JobProgress";
import { PathField } from "../../components/PathField";
import { useApi, useSession } from "../../context";
import { bytes, duration, fixed, num } from "../../format";

/** The scan's default candidates as the backend ranks them (the CLI's default too), cheapest first. */
export function scanDefaults(formats: FormatInfo[]): string {
  return formats
    .filter((f) => f.scan_default != null)
    .sort((a, b) => (a.scan_default ?? 0) - (b.scan_default ?? 0))
    .map((f) => f.id)
    .join(",");
}

/** "Find the best recipe": measure each tensor's sensitivity once (a job), then solve any budget
 * at once against it; the predicted frontier with the editor's recipe marked, and the heatmap. */
export function BudgetPanel() {
  const api = useApi();
  const s = useSession();
  const [samples, setSamples] = useState("");
  const [skip, setSkip] = useState(0);
  const [windows, setWindows] = useState(8);
  const [formats, setFormats] = useState("");
  const [scan, setScan] = useState<Sensitivity | null>(null);
  const { job, stage, err, setErr, start: launch } = useJob((e) => e.kind === "scanned" && (setScan(e.result), true));
  // llama.cpp's Q4_K_M size is the budget most users know; the others are a click away.
  const [kind, setKind] = useState("like");
  const [value, setValue] = useState(5);
  const [like, setLike] = useState("gguf-q4_k_m");
  const [device, setDevice] = useState("");
  const [hardware, setHardware] = useState<HardwareInfo[]>([]);
  const [base, setBase] = useState("gguf-q4_k_m");
  const [fuse, setFuse] = useState(true);
  const [quick, setQuick] = useState(false);
  const [alloc, setAlloc] = useState<AllocationView | null>(null);
  const [shown, setShown] = useState(0);

  useEffect(() => {
    api.listHardware().then(setHardware, () => setHardware([]));
    // What the user typed before the list arrives is kept.
    api.listFormats().then(
      (fs) => setFormats((typed) => typed || scanDefaults(fs)),
      () => {},
    );
  }, []);

  // Every budget change is solved at once against the scan (no model pass).
  useEffect(() => {
    if (!scan) return;
    let live = true;
    api
      .allocate({
        kind,
        value: kind === "like" || kind === "fits" ? null : value,
        like: kind === "like" ? like : null,
        device: kind === "fits" || kind === "usd" || kind === "tok_s" ? device || null : null,
        scenario: s.query.scenario,
        base,
        fuse,
        current_toml: s.recipeToml,
      })
      .then(
        (a) => {
          if (!live) return;
          setAlloc(a);
          setErr(null);
        },
        (e) => live && (setAlloc(null), setErr(e)),
      );
    return () => {
      live = false;
    };
  }, [scan, kind, value, like, device, base, fuse, s.recipeToml, s.query.scenario]);

  const start = () => {
    const list = formats
      .split(",")
      .map((f) => f.trim())
      .filter((f) => f);
    // Quick: measure the first (cheapest) candidate only and predict the others from the proxy.
    const predict_from = quick ? (list[0] ?? null) : null;
    return launch((onEvent) => api.startScan({ samples, windows, window: 256, skip_chars: skip, formats: list, predict_from }, onEvent));
  };

  const points = (alloc?.frontier ?? [])
    .filter((p) => p.predicted_kl !== null)
    .map((p, i) => ({ id: i, x: p.bytes / (1024 * 1024), y: p.predicted_kl ?? 0, label: "", frontier: true }));
  if (alloc?.chosen.predicted_kl != null) {
    points.push({ id: 1000, x: alloc.chosen.bytes / (1024 * 1024), y: alloc.chosen.predicted_kl, label: "chosen", frontier: false });
  }
  if (alloc?.current?.predicted_kl != null) {
    points.push({ id: 1001, x: alloc.current.bytes / (1024 * 1024), y: alloc.current.predicted_kl, label: "current recipe", frontier: false });
  }
  const f = Math.min(shown, (scan?.formats.length ?? 1) - 1);
  const per = scan ? scan.layers.length * scan.kinds.length : 0;
  return (
    <div id="budget-panel">
      <h3>Find the best recipe for a budget</h3>
      <p class="muted small">
        Measures, on your text, how much each tensor alone changes the model's next-token distribution (KL divergence) in each format, then picks the format of every
        tensor that keeps the predicted divergence least within the budget (exact knapsack). Decoders only; keep this text apart from the validation text.
      </p>
      <div class="row">
        <PathField
          id="scan-samples"
          label="Text"
          value={samples}
          onInput={setSamples}
          pick={{ title: "Plain-text sample", directory: false, filters: [{ name: "text", extensions: ["txt"] }] }}
          placeholder="/path/text.txt"
          onError={setErr}
        />
        <label>
          skip chars <input id="scan-skip" type="number" min={0} value={skip} onInput={(e) => setSkip(Math.max(0, Math.floor(Number((e.target as HTMLInputElement).value))))} />
        </label>
        <label>
          windows <input id="scan-windows" type="number" min={1} value={windows} onInput={(e) => setWindows(Math.max(1, Math.floor(Number((e.target as HTMLInputElement).value))))} />
        </label>
      </div>
      <div class="row">
        <label>
          candidate formats <input id="scan-formats" value={formats} onInput={(e) => setFormats((e.target as HTMLInputElement).value)} size={40} />
        </label>
        <label title="Measure the first candidate's KL per tensor and predict the others from the importance-weighted error: one model pass per tensor instead of one per format">
          <input id="scan-quick" type="checkbox" checked={quick} onChange={() => setQuick(!quick)} /> quick (measure the first format, predict the rest)
        </label>
        <button id="scan-start" class="primary" disabled={job !== null || !samples.trim()} onClick={start}>
          Scan
        </button>
        <button id="scan-cancel" disabled={job === null} onClick={() => job !== null && api.cancelJob(job)}>
          Cancel
        </button>
      </div>
      {job !== null && (
        <JobProgress stage={stage} idle="loading the model" id="scan-progress" />
      )}
      <ErrorBox error={err} onClose={() => setErr(null)} />
      {scan && (
        <>
          <p class="muted small" id="scan-summary">
            {scan.tokens} tokens in {duration(scan.seconds)}; the cheap proxy (importance-weighted weight error) ranks like the measurement with Spearman{" "}
            {scan.proxy_spearman === null ? "n/a" : fixed(scan.proxy_spearman, 3)}. {scan.notes.join(" ")}
          </p>
          <div class="row">
            <label>
              Budget{" "}
              <select id="budget-kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
                <option value="bpw">bits per weight</option>
                <option value="mib">total size (MiB)</option>
                <option value="like">same size as a preset</option>
                <option value="fits">fits on a device</option>
                <option value="usd">projected $/month at most</option>
                <option value="tok_s">projected decode tok/s at least</option>
              </select>
            </label>
            {kind !== "like" && kind !== "fits" && (
              <input id="budget-value" type="number" step="0.1" min={0} value={value} onChange={(e) => setValue(Number((e.target as HTMLInputElement).value))} />
            )}
            {kind === "like" && <input id="budget-like" value={like} onInput={(e) => setLike((e.target as HTMLInputElement).value)} />}
            {(kind === "fits" || kind === "usd" || kind === "tok_s") && (
              <select id="budget-device" value={device} onChange={(e) => setDevice((e.target as HTMLSelectElement).value)}>
                <option value="">{kind === "fits" ? "choose a device" : "the scenario's device"}</option>
                {hardware.map((h) => (
                  <option key={h.id} value={h.id}>
                    {h.name} ({h.mem_gib} GiB)
                  </option>
                ))}
              </select>
            )}
            <label>
              base <input id="budget-base" value={base} onInput={(e) => setBase((e.target as HTMLInputElement).value)} size={14} />
            </label>
            <label title="vLLM fuses q/k/v and gate/up into one layer each, so they must share a format; GGUF does not need it">
              <input type="checkbox" checked={fuse} onChange={(e) => setFuse((e.target as HTMLInputElement).checked)} /> q/k/v and gate/up on one format
            </label>
          </div>
          {alloc && (
            <div id="allocation">
              <p>
                Best within {bytes(alloc.budget_bytes)}: <strong>{bytes(alloc.chosen.bytes)}</strong> ({fixed(alloc.chosen.bpw, 2)} bits/weight), predicted KL{" "}
                <strong>{alloc.chosen.predicted_kl === null ? "–" : num(alloc.chosen.predicted_kl, 5)}</strong> nats/token
                {alloc.current && (
                  <>
                    {" "}
                    · the editor's recipe: {bytes(alloc.current.bytes)}, predicted KL {alloc.current.predicted_kl === null ? "unknown" : num(alloc.current.predicted_kl, 5)}
                  </>
                )}
                .{" "}
                <button id="use-allocation" class="primary" onClick={() => s.setRecipeToml(alloc.recipe_toml)}>
                  Use this recipe
                </button>
              </p>
              <p class="muted small">
                Predicted: the sum of single-tensor KLs on the scan's text. Run and validate the recipe for the measured number; Compare shows measured runs.
              </p>
              <Scatter points={points} xLabel="weights (MiB)" yLabel="predicted KL (nats/token)" onPick={(id) => id < 1000 && alloc.frontier[id] && (setKind("bpw"), setValue(Number(alloc.frontier[id].bpw.toFixed(2))))} />
              {alloc.notes.map((n) => (
                <p class="muted small" key={n}>
                  {n}
                </p>
              ))}
            </div>
          )}
          <div class="row">
            <label>
              Sensitivity of{" "}
              <select id="heatmap-format" value={String(f)} onChange={(e) => setShown(Number((e.target as HTMLSelectElement).value))}>
                {scan.formats.map((x, i) => (
                  <option key={x} value={String(i)}>
                    {x}
                  </option>
                ))}
              </select>
            </label>
            <span class="muted small">KL divergence with only that tensor in this format; grey: the format does not fit that tensor's shape.</span>
          </div>
          <HeatmapChart hm={{ layers: scan.layers, kinds: scan.kinds, cells: scan.cells.slice(f * per, (f + 1) * per) }} what="KL" testId="sensitivity" />
        </>
      )}
    </div>
  );
}
