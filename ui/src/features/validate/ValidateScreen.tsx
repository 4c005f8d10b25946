import { useState } from "preact/hooks";
import type { MetricRow, ValidationView } from "../../api/types";
import { ErrorBox } from "../../components/ErrorBox";
import { JobProgress, useJob } from "../../components/JobProgress";
import { PathField } from "../../components/PathField";
import { useApi, useSession } from "../../context";
import { bytes, duration, num, pct, signedPct } from "../../format";

function fmt(v: number | null, unit: string): string {
  if (v === null) return "–";
  if (unit === "B") return bytes(v);
  if (unit === "fraction") return pct(v, 2);
  return `${num(v, 4)}${unit && unit !== "%" ? ` ${unit}` : unit}`;
}

function delta(m: MetricRow): { text: string; cls: string } {
  if (m.original === null || m.compressed === null || m.original === 0) return { text: "", cls: "" };
  const d = (m.compressed - m.original) / Math.abs(m.original);
  const worse = m.better === "lower" ? d > 0 : d < 0;
  return { text: signedPct(d), cls: Math.abs(d) < 1e-9 ? "" : worse ? "worse" : "better" };
}

function Table({ rows, id }: { rows: MetricRow[]; id: string }) {
  return (
    <table class="qt" id={id}>
      <thead>
        <tr>
          <th>metric</th>
          <th>original</th>
          <th>compressed</th>
          <th>change</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((m) => {
          const d = delta(m);
          return (
            <tr key={m.name}>
              <td title={`${m.better} is better`}>{m.name}</td>
              <td>{fmt(m.original, m.unit)}</td>
              <td>{fmt(m.compressed, m.unit)}</td>
              <td class={d.cls}>{d.text}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** Measured validation of a run: original vs compressed on the same samples (pareto-eval). */
export function ValidateScreen() {
  const api = useApi();
  const s = useSession();
  const [samples, setSamples] = useState("");
  const [limit, setLimit] = useState<number | null>(8);
  const [speed, setSpeed] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [results, setResults] = useState<Record<number, ValidationView>>({});
  const { job, stage, err, setErr, start: launch } = useJob(
    (e) => {
      if (e.kind !== "validated") return false;
      setResults((r) => ({ ...r, [e.result.run_id]: e.result }));
      s.noteValidation();
      setStatus(`Validated in ${duration(e.result.seconds)}`);
      return true;
    },
    () => setStatus("Cancelled."),
  );
  const run = s.runs.find((r) => r.id === s.selectedRun) ?? s.runs[s.runs.length - 1];

  if (!run) {
    return (
      <section class="screen" id="screen-validate">
        <h2>Validate</h2>
        <p class="muted">Run a compression first; validation compares it with the original on the same samples.</p>
      </section>
    );
  }
  const start = () => {
    setStatus(null);
    return launch((onEvent) =>
      api.startValidate({ run_id: run.id, samples: samples.trim() || null, limit, speed, device: s.computeDevice }, onEvent),
    );
  };
  const v = results[run.id];
  return (
    <section class="screen" id="screen-validate">
      <h2>Validate run #{run.id} — {run.recipe_name}</h2>
      <div class="row">
        <label>
          Variant{" "}
          <select value={String(run.id)} onChange={(e) => s.setSelectedRun(Number((e.target as HTMLSelectElement).value))}>
            {s.runs.map((r) => (
              <option key={r.id} value={String(r.id)}>
                #{r.id} {r.recipe_name}
              </option>
            ))}
          </select>
        </label>
        <PathField
          id="samples-path"
          label="Samples"
          value={samples}
          onInput={setSamples}
          pick={{ title: "Sample set", directory: false, filters: [{ name: "samples", extensions: ["tsv", "csv", "jsonl", "txt"] }] }}
          placeholder="empty: the bundled set for this model family"
          onError={setErr}
        />
      </div>
      <div class="row">
        <label>
          limit{" "}
          <input
            id="validate-limit"
            type="number"
            min={1}
            value={limit ?? ""}
            placeholder="all"
            onChange={(e) => {
              const x = (e.target as HTMLInputElement).value;
              setLimit(x === "" ? null : Math.max(1, Math.floor(Number(x))));
            }}
          />
        </label>
        <label>
          <input id="validate-measure-speed" type="checkbox" checked={speed} onChange={(e) => setSpeed((e.target as HTMLInputElement).checked)} /> measure speed (load, prefill, decode at batch 1, 4 and 16: the Project screen sets them beside the projection)
        </label>
        <span class="muted small">device: {s.computeDevice}</span>
        <button id="validate-start" class="primary" disabled={job !== null} onClick={start}>
          Validate
        </button>
        <button id="validate-cancel" disabled={job === null} onClick={() => job !== null && api.cancelJob(job)}>
          Cancel
        </button>
      </div>
      <ErrorBox error={err} onClose={() => setErr(null)} />
      {job !== null && (
        <JobProgress stage={stage} idle="loading models" />
      )}
      {status && <p class="notice">{status}</p>}
      {v && (
        <div id="validate-result">
          <p class="muted small">
            {v.family} · {v.sample_kind ?? "samples"} {v.samples ? <code>{v.samples}</code> : null} · {v.device}
          </p>
          <h3>Accuracy</h3>
          <Table rows={v.metrics} id="validate-metrics" />
          {v.speed.length > 0 && (
            <>
              <h3>Measured speed ({v.device})</h3>
              <Table rows={v.speed} id="validate-speed" />
            </>
          )}
          {v.notes.length > 0 && (
            <ul class="small muted">
              {v.notes.map((n, i) => (
                <li key={i}>{n}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
