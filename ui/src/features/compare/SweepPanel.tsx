import { useEffect, useState } from "preact/hooks";
import type { PresetInfo, SweepView } from "../../api/types";
import { ErrorBox } from "../../components/ErrorBox";
import { JobProgress, useJob } from "../../components/JobProgress";
import { PathField } from "../../components/PathField";
import { useApi, useSession } from "../../context";

const STATE_CLASS: Record<string, string> = { failed: "failed", queued: "muted" };

/** "Sweep": the open model under several recipes into one folder of run records and a reviewer's
 * report, here or as Slurm array tasks on a cluster (the same as `pareto sweep --executor slurm`).
 * While it follows a cluster, the scheduler's task states stream in as lines. */
export function SweepPanel() {
  const api = useApi();
  const s = useSession();
  const [presets, setPresets] = useState<PresetInfo[]>([]);
  const [chosen, setChosen] = useState<string[]>(["w8", "w4-g32", "gguf-q4_0"]);
  // The last sweep's folder and cluster options come back with the studio (Settings).
  const saved = s.settings.sweep;
  const [out, setOut] = useState(saved?.out ?? "");
  const [executor, setExecutor] = useState<"local" | "slurm">(saved?.executor === "slurm" ? "slurm" : "local");
  const [slurm, setSlurm] = useState({ partition: saved?.partition ?? "", gres: saved?.gres ?? "", time: saved?.time ?? "", account: saved?.account ?? "" });
  const [detach, setDetach] = useState(false);
  const [validate, setValidate] = useState(true);
  // Blank: every window of the protocol; a count validates on the first N only (quicker, each KL
  // with its standard error).
  const [windows, setWindows] = useState("");
  const windowCount = windows.trim() ? Number(windows.trim()) : null;
  const windowsBad = windowCount !== null && !(Number.isInteger(windowCount) && windowCount >= 2);
  const [lines, setLines] = useState<string[]>([]);
  const [view, setView] = useState<SweepView | null>(null);
  const { job, stage, err, setErr, start: launch } = useJob((e) => {
    if (e.kind === "log") {
      setLines((l) => [...l.slice(-49), e.line]);
      return false;
    }
    return e.kind === "swept" && (setView(e.result), true);
  });

  useEffect(() => {
    api.listPresets().then(setPresets, setErr);
  }, []);

  const toggle = (name: string) => setChosen((c) => (c.includes(name) ? c.filter((n) => n !== name) : [...c, name]));
  const opt = (v: string) => (v.trim() ? v.trim() : null);
  const start = () => {
    setLines([]);
    setView(null);
    s.updateSettings({ sweep: { out, executor, ...slurm } });
    return launch((onEvent) =>
      api.startSweep(
        {
          recipes: chosen,
          out,
          executor,
          scenario: s.query.scenario,
          validate,
          validation_windows: validate ? windowCount : null,
          detach: executor === "slurm" && detach,
          partition: opt(slurm.partition),
          gres: opt(slurm.gres),
          time: opt(slurm.time),
          account: opt(slurm.account),
        },
        onEvent,
      ),
    );
  };
  const field = (key: keyof typeof slurm, label: string, placeholder: string) => (
    <label>
      {label}{" "}
      <input
        id={`sweep-${key}`}
        value={slurm[key]}
        placeholder={placeholder}
        size={12}
        onInput={(e) => setSlurm({ ...slurm, [key]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );

  return (
    <div id="sweep-panel">
      <h3>Sweep recipes into a report</h3>
      <p class="muted small">
        Compresses, validates and projects the open model once per recipe into a folder of run records and a reviewer's report (report.html, report.md). Run it again on the
        same folder to resume: finished variants are kept. On Slurm each variant is one array task; the folder must be on a filesystem the nodes share (a probe job checks
        first), and the nodes run the <code>pareto</code> command-line tool at the same path.
      </p>
      <div class="row" id="sweep-recipes">
        {presets.map((p) => (
          <label key={p.name} title={p.description} class="small">
            <input type="checkbox" checked={chosen.includes(p.name)} onChange={() => toggle(p.name)} /> {p.name}
          </label>
        ))}
      </div>
      <div class="row">
        <PathField
          id="sweep-out"
          label="Sweep folder"
          value={out}
          onInput={setOut}
          pick={{ title: "Sweep folder (new, empty or an earlier sweep's)", directory: true }}
          placeholder="/shared/sweeps/my-model"
          onError={setErr}
        />
        <label>
          run on{" "}
          <select id="sweep-executor" value={executor} onChange={(e) => setExecutor((e.target as HTMLSelectElement).value as "local" | "slurm")}>
            <option value="local">this machine</option>
            <option value="slurm">Slurm cluster</option>
          </select>
        </label>
        <label>
          <input id="sweep-validate" type="checkbox" checked={validate} onChange={() => setValidate(!validate)} /> validate
        </label>
        <label title="Validate decoders on the protocol's first N windows only: quicker, and each KL divergence carries its standard error. Blank: every window.">
          on the first{" "}
          <input
            id="sweep-windows"
            value={windows}
            placeholder="all"
            size={4}
            disabled={!validate}
            onInput={(e) => setWindows((e.target as HTMLInputElement).value)}
          />{" "}
          windows
        </label>
      </div>
      {executor === "slurm" && (
        <div class="row" id="sweep-slurm">
          {field("partition", "partition", "default")}
          {field("gres", "gres", "gpu:1")}
          {field("time", "time", "02:00:00")}
          {field("account", "account", "none")}
          <label title="Submit and return; run the same sweep again later to follow it and write the report">
            <input id="sweep-detach" type="checkbox" checked={detach} onChange={() => setDetach(!detach)} /> submit and return
          </label>
        </div>
      )}
      <div class="row">
        <button
          id="sweep-start"
          class="primary"
          disabled={job !== null || !out.trim() || chosen.length === 0 || !s.model || (validate && windowsBad)}
          onClick={start}
        >
          {executor === "slurm" ? "Submit" : "Run sweep"}
        </button>
        <button id="sweep-cancel" disabled={job === null} onClick={() => job !== null && api.cancelJob(job)} title="On Slurm this cancels the submitted jobs too">
          Cancel
        </button>
      </div>
      <ErrorBox error={err} />
      {job !== null && <JobProgress stage={stage} idle="starting the sweep" id="sweep-progress" />}
      {lines.length > 0 && (
        <pre class="small" id="sweep-log">
          {lines.join("\n")}
        </pre>
      )}
      {view && (
        <div id="sweep-result">
          {view.recommendation && (
            <p>
              <strong id="sweep-recommendation">{view.recommendation}</strong> Report: <code>{view.report_html}</code>
            </p>
          )}
          <table class="qt" id="sweep-variants">
            <thead>
              <tr>
                <th>recipe</th>
                <th>state</th>
                <th>record, job or error</th>
              </tr>
            </thead>
            <tbody>
              {view.variants.map((v) => (
                <tr key={v.recipe}>
                  <td>{v.recipe}</td>
                  <td class={STATE_CLASS[v.state] ?? ""}>{v.state}</td>
                  <td class="small">{v.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {view.variants.some((v) => v.state === "queued") && (
            <p class="muted small" id="sweep-queued-note">
              Queued on the cluster. Run the same sweep again (Submit, without "submit and return") to follow the tasks and write the report.
            </p>
          )}
        </div>
      )}
    </div>
  );
}
