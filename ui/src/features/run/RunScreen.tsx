import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Histogram, JobEvent, RunView, TensorResult } from "../../api/types";
import { HeatmapChart, HistogramChart } from "../../components/charts";
import { ErrorBox } from "../../components/ErrorBox";
import { Marked } from "../../components/Provenance";
import { PathField } from "../../components/PathField";
import { type Column, VirtualTable } from "../../components/VirtualTable";
import { useApi, useSession } from "../../context";
import { bytes, duration, num, pct, shape, whole } from "../../format";

interface Progress {
  stage: string;
  total: number;
  done: number;
}

const resultColumns: Column<TensorResult>[] = [
  { key: "name", label: "tensor", width: "minmax(240px, 3fr)", render: (t) => t.name, sort: (t) => t.name },
  { key: "action", label: "action", width: "130px", render: (t) => t.action, sort: (t) => t.action },
  { key: "shape", label: "shape", width: "120px", render: (t) => shape(t.shape), sort: (t) => t.shape.reduce((a, b) => a * b, 1) },
  { key: "after", label: "packed", width: "80px", render: (t) => bytes(t.planned_bytes), sort: (t) => t.planned_bytes, align: "right" },
  {
    key: "err",
    label: "rel err",
    width: "80px",
    render: (t) => (t.metrics ? num(t.metrics.rel_error, 5) : "–"),
    sort: (t) => t.metrics?.rel_error ?? -1,
    align: "right",
    provenance: "proxy",
  },
  {
    key: "snr",
    label: "SNR dB",
    width: "70px",
    render: (t) => (t.metrics ? (t.metrics.snr_db === null ? "∞" : num(t.metrics.snr_db, 1)) : "–"),
    sort: (t) => t.metrics?.snr_db ?? 1e9,
    align: "right",
    provenance: "proxy",
  },
  { key: "zeros", label: "zeros", width: "64px", render: (t) => (t.metrics ? pct(t.metrics.sparsity) : "–"), sort: (t) => t.metrics?.sparsity ?? -1, align: "right" },
  { key: "loss", label: "solver loss", width: "84px", render: (t) => (t.calib_loss === null ? "–" : num(t.calib_loss, 4)), sort: (t) => t.calib_loss ?? -1, align: "right" },
];

function defaultOut(root: string, name: string): string {
  const clean = root.replace(/\/+$/, "");
  return `${clean}-${(name || "custom").replace(/[^A-Za-z0-9._-]+/g, "_")}`;
}

export function RunScreen() {
  const api = useApi();
  const s = useSession();
  const [out, setOut] = useState("");
  const [overwrite, setOverwrite] = useState(false);
  // Calibration set of GPTQ / AWQ / Wanda recipes: the protocol of `pareto compress --calibration`.
  const [calText, setCalText] = useState("");
  const [calWindows, setCalWindows] = useState(128);
  const [calWindow, setCalWindow] = useState(512);
  const [calSkip, setCalSkip] = useState(0);
  const [job, setJob] = useState<number | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [log, setLog] = useState<string[]>([]);
  const [err, setErr] = useState<unknown>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [maxFrame, setMaxFrame] = useState<number | null>(null);
  const [picked, setPicked] = useState<string | null>(null);
  const [hist, setHist] = useState<Histogram | null>(null);
  const [histErr, setHistErr] = useState<unknown>(null);
  const doneNames = useRef(new Set<string>());
  const latestDone = useRef(0);
  const frameQueued = useRef(false);
  const [doneVersion, setDoneVersion] = useState(0);
  const running = job !== null;
  const needsCalibration = (s.plan?.totals.calibrated ?? 0) > 0;

  const run: RunView | undefined = s.runs.find((r) => r.id === s.selectedRun) ?? s.runs[s.runs.length - 1];

  useEffect(() => {
    if (s.model && !out) setOut(defaultOut(s.model.summary.root, s.plan?.recipe.name ?? ""));
  }, [s.model, s.plan]);

  // Frame monitor: the longest gap between animation frames while a job runs.
  useEffect(() => {
    if (!running) return;
    let last = performance.now();
    let worst = 0;
    let raf = 0;
    const tick = (now: number) => {
      worst = Math.max(worst, now - last);
      last = now;
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    return () => {
      cancelAnimationFrame(raf);
      setMaxFrame(worst);
    };
  }, [running]);

  useEffect(() => {
    if (!run || !picked) return;
    setHist(null);
    setHistErr(null);
    api.tensorHistogram(run.id, picked, 96).then(setHist, setHistErr);
  }, [run?.id, picked]);

  const start = async () => {
    setErr(null);
    setStatus(null);
    setLog([]);
    setProgress(null);
    doneNames.current = new Set();
    setDoneVersion((v) => v + 1);
    const onEvent = (e: JobEvent) => {
      switch (e.kind) {
        case "stage":
          setProgress({ stage: e.name, total: e.total, done: 0 });
          break;
        case "advance":
          // Coalesce bursts of events into one render per animation frame.
          e.items.forEach((i) => doneNames.current.add(i));
          latestDone.current = e.done;
          if (!frameQueued.current) {
            frameQueued.current = true;
            requestAnimationFrame(() => {
              frameQueued.current = false;
              setDoneVersion((v) => v + 1);
              setProgress((p) => (p ? { ...p, done: latestDone.current } : p));
            });
          }
          break;
        case "log":
          setLog((l) => [...l.slice(-200), e.line]);
          break;
        case "finished":
          s.addRun(e.run);
          s.setSelectedRun(e.run.id);
          setPicked(e.run.tensors.find((t) => t.metrics)?.name ?? null);
          setStatus(`Finished in ${duration(e.run.seconds)}`);
          setJob(null);
          break;
        case "failed":
          setErr(e.error);
          setJob(null);
          break;
        case "cancelled":
          setStatus("Cancelled — nothing was written.");
          setJob(null);
          break;
      }
    };
    try {
      const calibration = needsCalibration
        ? { samples: calText, windows: calWindows, window: calWindow, skip_chars: calSkip }
        : null;
      setJob(await api.startCompress(s.recipeToml, out, overwrite, s.computeDevice, calibration, onEvent));
    } catch (e) {
      setErr(e);
    }
  };

  const planRows = s.plan?.rows ?? [];
  const statusRows = useMemo(
    () => planRows.map((r) => ({ name: r.name, action: r.action, done: doneNames.current.has(r.name) })),
    [planRows, doneVersion],
  );

  if (!s.model) {
    return (
      <section class="screen" id="screen-run">
        <h2>Run</h2>
        <p class="muted">Open a model and choose a recipe first.</p>
      </section>
    );
  }
  const frac = progress && progress.total > 0 ? progress.done / progress.total : 0;
  return (
    <section class="screen" id="screen-run">
      <h2>Run compression</h2>
      <div class="row">
        <PathField
          id="out-path"
          label="Output folder"
          value={out}
          onInput={setOut}
          pick={{ title: "Output folder", directory: true }}
          onError={setErr}
        />
        <label>
          <input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite((e.target as HTMLInputElement).checked)} /> overwrite
        </label>
        <button id="run-start" class="primary" disabled={running || !s.plan || !!s.planError} onClick={start}>
          Compress with “{s.plan?.recipe.name || "custom"}”
        </button>
        <button id="run-cancel" disabled={!running} onClick={() => job !== null && api.cancelJob(job)}>
          Cancel
        </button>
        <span class="muted small">device: {s.computeDevice}</span>
      </div>
      {needsCalibration && (
        <div class="row" id="calibration-row">
          <PathField
            id="calibration-path"
            label="Calibration text"
            value={calText}
            onInput={setCalText}
            pick={{ title: "Calibration text (plain text the model is not evaluated on)", directory: false, filters: [{ name: "Text", extensions: ["txt", "text", "md"] }] }}
            onError={setErr}
          />
          <label>
            windows <input id="calibration-windows" type="number" min={1} value={calWindows} onInput={(e) => setCalWindows(Number((e.target as HTMLInputElement).value))} />
          </label>
          <label>
            tokens <input id="calibration-window" type="number" min={2} value={calWindow} onInput={(e) => setCalWindow(Number((e.target as HTMLInputElement).value))} />
          </label>
          <label>
            skip chars <input id="calibration-skip" type="number" min={0} value={calSkip} onInput={(e) => setCalSkip(Number((e.target as HTMLInputElement).value))} />
          </label>
          <span class="muted small">
            {s.plan?.totals.calibrated} tensors are decided by this set (GPTQ codes, AWQ scales or Wanda masks); calibration runs layer by layer before the export.
          </span>
        </div>
      )}
      <ErrorBox error={err} onClose={() => setErr(null)} />
      {(running || progress) && (
        <div class="progress-wrap">
          <div class="progress" role="progressbar" aria-valuenow={Math.round(frac * 100)}>
            <div class="bar" style={{ width: `${frac * 100}%` }} />
          </div>
          <span id="run-progress">
            {progress?.stage ?? "starting"}: {progress?.done ?? 0} / {progress?.total ?? "?"}
          </span>
        </div>
      )}
      {status && (
        <p class="notice" id="run-status">
          {status}
        </p>
      )}
      {maxFrame !== null && (
        <p class="muted small">
          Longest frame during the last run: <span id="max-frame" data-ms={maxFrame.toFixed(1)}>{maxFrame.toFixed(0)} ms</span>
        </p>
      )}
      {log.length > 0 && <pre class="log">{log.join("\n")}</pre>}
      {running && (
        <VirtualTable
          id="run-status-table"
          rows={statusRows}
          columns={[
            { key: "name", label: "tensor", width: "3fr", render: (r) => r.name, sort: (r) => r.name },
            { key: "action", label: "action", width: "160px", render: (r) => r.action, sort: (r) => r.action },
            { key: "st", label: "status", width: "90px", render: (r) => (r.done ? "✓ done" : "pending"), sort: (r) => (r.done ? 1 : 0) },
          ]}
          rowKey={(r) => r.name}
          filterText={(r) => `${r.name} ${r.action}`}
          height={260}
        />
      )}
      {run && !running && (
        <div id="run-result">
          <h3>
            Run #{run.id} — {run.recipe_name}
            {s.runs.length > 1 && (
              <select value={String(run.id)} onChange={(e) => s.setSelectedRun(Number((e.target as HTMLSelectElement).value))}>
                {s.runs.map((r) => (
                  <option key={r.id} value={String(r.id)}>
                    #{r.id} {r.recipe_name}
                  </option>
                ))}
              </select>
            )}
          </h3>
          <div class="cards">
            <div class="card">
              <div class="k">weights (packed)</div>
              <div class="v">
                {bytes(run.source_bytes)} → {bytes(run.planned_bytes)}
              </div>
            </div>
            <div class="card">
              <div class="k">written (dense)</div>
              <div class="v">{bytes(run.written_bytes)}</div>
            </div>
            <div class="card">
              <div class="k">mean rel. weight error</div>
              <div class="v">
                <Marked kind="proxy" detail="parameter-weighted mean of ‖w − ŵ‖/‖w‖ over transformed tensors" id="run-error">
                  {num(run.mean_rel_error, 5)}
                </Marked>
              </div>
            </div>
            <div class="card">
              <div class="k">time</div>
              <div class="v">{duration(run.seconds)}</div>
            </div>
            <div class="card wide">
              <div class="k">output</div>
              <div class="v small" id="run-output">{run.output}</div>
            </div>
          </div>
          <div class="two">
            <div>
              <h3>Per-layer error</h3>
              {run.heatmap.layers.length ? (
                <HeatmapChart
                  hm={run.heatmap}
                  onPick={(layer, kind) => {
                    const t = run.tensors.find((x) => x.name.includes(`.${layer}.`) && x.name.includes(kind));
                    if (t) setPicked(t.name);
                  }}
                />
              ) : (
                <p class="muted">No per-layer tensors were transformed.</p>
              )}
            </div>
            <div>
              <h3>Weights before / after {picked && <code class="small">{picked}</code>}</h3>
              <p class="small">
                <span class="swatch before" /> original <span class="swatch after" /> compressed
              </p>
              <ErrorBox error={histErr} />
              {hist ? (
                <>
                  <HistogramChart h={hist} />
                  <p class="small muted">
                    {whole(hist.elements)} weights · exact zeros {whole(hist.zeros_before)} → {whole(hist.zeros_after)}
                  </p>
                </>
              ) : (
                picked && !histErr && <p class="muted">Reading {picked}…</p>
              )}
            </div>
          </div>
          <h3>Per-tensor results (click a row for its histogram)</h3>
          <VirtualTable
            id="result-table"
            rows={run.tensors}
            columns={resultColumns}
            rowKey={(t) => t.name}
            filterText={(t) => `${t.name} ${t.action}`}
            onActivate={(t) => setPicked(t.name)}
            selected={picked ? new Set([picked]) : new Set()}
            height={300}
          />
        </div>
      )}
    </section>
  );
}
