import { useEffect, useState } from "preact/hooks";
import type { CompareView } from "../../api/types";
import { Scatter } from "../../components/charts";
import { ErrorBox } from "../../components/ErrorBox";
import { useApi, useSession } from "../../context";
import { bytes, num } from "../../format";

export function CompareScreen() {
  const api = useApi();
  const s = useSession();
  const [view, setView] = useState<CompareView | null>(null);
  const [err, setErr] = useState<unknown>(null);

  useEffect(() => {
    if (!s.model || s.runs.length === 0) return;
    api.compare({ ...s.query, recipe_toml: null }).then(setView, setErr);
  }, [s.runs.length, s.query]);

  if (s.runs.length === 0) {
    return (
      <section class="screen" id="screen-compare">
        <h2>Compare variants</h2>
        <p class="muted">Every compression run of this session appears here. Run one on the Run screen.</p>
      </section>
    );
  }
  const costed = view?.points.every((p) => p.usd_month !== null) ?? false;
  const points = (view?.points ?? []).map((p) => ({
    id: p.run_id,
    x: costed ? (p.usd_month ?? 0) : p.weight_bytes / (1024 * 1024),
    y: p.mean_rel_error,
    label: p.label,
    frontier: p.on_frontier,
  }));
  return (
    <section class="screen" id="screen-compare">
      <h2>Compare variants: accuracy vs cost</h2>
      <ErrorBox error={err} />
      {view && (
        <>
          <p class="muted small">
            x: {costed ? `projected $/month (${s.query.scenario})` : "packed weight size (MiB)"} · y: {view.accuracy_axis}. Points on the dashed line are on the frontier: no
            other variant is both cheaper and more accurate. Click one to pick it for export.
          </p>
          <Scatter points={points} xLabel={costed ? "$/month" : "weights (MiB)"} yLabel="rel. weight error" selected={s.selectedRun ?? undefined} onPick={s.setSelectedRun} />
          <table class="qt" id="variants">
            <thead>
              <tr>
                <th>variant</th>
                <th>weights</th>
                <th>rel. error</th>
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
                  <td>{num(p.mean_rel_error, 5)}</td>
                  <td>{p.usd_month === null ? "–" : num(p.usd_month, 0)}</td>
                  <td>{p.on_frontier ? "yes" : ""}</td>
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
    </section>
  );
}
