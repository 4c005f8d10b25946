import { useEffect, useState } from "preact/hooks";
import type { CompareView } from "../../api/types";
import { Scatter } from "../../components/charts";
import { ErrorBox } from "../../components/ErrorBox";
import { Marked } from "../../components/Provenance";
import { useApi, useSession } from "../../context";
import { bytes, num } from "../../format";
import { SweepPanel } from "./SweepPanel";

/** Every run of the session on accuracy vs cost. The accuracy axis is a measured validation
 * metric the user picks; weight error is offered as a labelled proxy, never mixed in. */
export function CompareScreen() {
  const api = useApi();
  const s = useSession();
  const [view, setView] = useState<CompareView | null>(null);
  const [metric, setMetric] = useState<string | null>(null);
  const [err, setErr] = useState<unknown>(null);

  useEffect(() => {
    if (!s.model || s.runs.length === 0) return;
    setErr(null);
    api.compare({ ...s.query, recipe_toml: null }, metric).then(setView, setErr);
  }, [s.runs.length, s.validations, s.query, metric]);

  if (s.runs.length === 0) {
    return (
      <section class="screen" id="screen-compare">
        <h2>Compare variants</h2>
        <p class="muted">Every compression run of this session appears here. Run one on the Run screen.</p>
        {s.model && <SweepPanel />}
      </section>
    );
  }
  const costed = view?.points.every((p) => p.usd_month !== null) ?? false;
  // Plotted as loss (lower is better): percent for relative changes, the metric's unit otherwise.
  const scale = (p: { change_is_relative: boolean }) => (p.change_is_relative ? 100 : 1);
  const measured = (view?.points ?? []).filter((p) => p.accuracy !== null);
  const points = measured.map((p) => ({
    id: p.run_id,
    x: costed ? (p.usd_month ?? 0) : p.weight_bytes / (1024 * 1024),
    y: -(p.accuracy ?? 0) * scale(p),
    label: p.label,
    frontier: p.on_frontier,
  }));
  const relative = measured.some((p) => p.change_is_relative);
  const yLabel = view ? (view.is_proxy ? "weight error (proxy)" : `${view.metric} loss${relative ? " (%)" : ""}`) : "";
  return (
    <section class="screen" id="screen-compare">
      <h2>Compare variants: accuracy vs cost</h2>
      <ErrorBox error={err} />
      {view && (
        <>
          <label>
            Accuracy axis{" "}
            <select id="compare-metric" value={view.metric} onChange={(e) => setMetric((e.target as HTMLSelectElement).value)}>
              {view.metrics.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </label>
          {view.is_proxy && (
            <p class="warn" id="proxy-banner">
              No run is measured on this axis: weight error is a proxy that does not predict task accuracy. Validate runs on the Validate screen for a measured frontier.
            </p>
          )}
          {view.warnings.map((w) => (
            <p class="warn small" key={w}>
              {w}
            </p>
          ))}
          <p class="muted small">
            x: {costed ? `projected $/month (${s.query.scenario})` : "packed weight size (MiB)"} · y: {view.accuracy_axis}, plotted as loss (lower is better). Points on the
            dashed line are on the frontier: no other variant is both cheaper and at least as accurate. Runs without this measurement are listed below, not plotted. Click a
            point to pick it for export.
          </p>
          <Scatter points={points} xLabel={costed ? "$/month" : "weights (MiB)"} yLabel={yLabel} selected={s.selectedRun ?? undefined} onPick={s.setSelectedRun} />
          <p id="recommendation">
            <strong>{view.recommendation}</strong> {view.reasons.join(" ")}
          </p>
          <table class="qt" id="variants">
            <thead>
              <tr>
                <th>variant</th>
                <th>weights</th>
                <th>{view.metric}</th>
                <th>change</th>
                <th>$/month</th>
                <th>frontier</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {view.points.map((p) => (
                <tr key={p.run_id} class={p.run_id === s.selectedRun ? "best" : ""}>
                  <td>{p.label}</td>
                  <td>{bytes(p.weight_bytes)}</td>
                  <td>
                    {p.metric_value === null ? (
                      "not measured"
                    ) : view.is_proxy ? (
                      <Marked kind="proxy">{num(p.metric_value, 5)}</Marked>
                    ) : (
                      num(p.metric_value, 5)
                    )}
                  </td>
                  <td>{p.change_text ?? "–"}</td>
                  <td>{p.usd_month === null ? "–" : <Marked kind="projected">{num(p.usd_month, 0)}</Marked>}</td>
                  <td>{p.on_frontier ? "yes" : p.dominated ? "dominated" : ""}</td>
                  <td>
                    <button class="link" onClick={() => (s.setSelectedRun(p.run_id), s.go("export"))}>
                      pick → export
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <SweepPanel />
    </section>
  );
}
