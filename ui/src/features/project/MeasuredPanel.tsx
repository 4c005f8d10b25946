import type { MeasuredSpeedView } from "../../api/types";
import { CurveChart, type Series } from "../../components/charts";
import { Marked } from "../../components/Provenance";
import { useSession } from "../../context";
import { num } from "../../format";

/** Decode measured on this machine (Validate → "measure speed") beside the roofline for the chosen
 * hardware, and the switch that projects with the efficiency fitted to it. */
export function MeasuredPanel({ measured }: { measured: MeasuredSpeedView | null }) {
  const s = useSession();
  if (!measured) {
    return (
      <div id="measured-speed">
        <h3>Measured on this machine</h3>
        <p class="muted small">
          No decode speed measured yet. On Validate, tick "measure speed": the original's decode at batch 1, 4 and 16 then appears here beside the
          projection, and can calibrate it.
        </p>
      </div>
    );
  }
  const pts = measured.points;
  const line = (pick: (p: (typeof pts)[number]) => number | null) =>
    pts.flatMap((p) => {
      const v = pick(p);
      return v === null ? [] : [[p.batch, v] as [number, number]];
    });
  const series: Series[] = [
    { label: "measured", points: line((p) => p.measured_tok_s), dots: true, color: "var(--fg)" },
    { label: "projected (defaults)", points: line((p) => p.projected_tok_s), dots: false, color: "var(--before)", dashed: true },
    { label: "projected (fitted)", points: line((p) => p.calibrated_tok_s), dots: false, color: "var(--accent)" },
  ];
  const tok = (v: number | null) => (v === null ? "–" : `${num(v, v >= 100 ? 0 : 1)} tok/s`);
  return (
    <div id="measured-speed">
      <h3>Measured on this machine vs projected for {measured.device}</h3>
      <p class="muted small">
        {measured.source}. The model's float weights run as F32 here, so the projection beside it reads F32 weights too. Compare with the catalog entry
        that describes this machine.
      </p>
      <div class="two">
        <CurveChart id="measured-chart" series={series} xLabel="sequences decoded together (batch)" yLabel="decode, all sequences (tok/s)" />
        <table class="qt" id="measured-table">
          <thead>
            <tr>
              <th>batch</th>
              <th>measured</th>
              <th>projected (defaults)</th>
              <th>projected (fitted)</th>
            </tr>
          </thead>
          <tbody>
            {pts.map((p) => (
              <tr key={p.batch}>
                <td>{p.batch}</td>
                <td title={`measured by ${measured.source}`}>{tok(p.measured_tok_s)}</td>
                <td>
                  <Marked kind="projected" detail="the roofline with its default efficiencies">
                    {tok(p.projected_tok_s)}
                  </Marked>
                </td>
                <td>
                  <Marked kind="projected" detail="the roofline with the efficiency fitted to this measurement (batch 1's step and the sweep's per-sequence cost)">
                    {tok(p.calibrated_tok_s)}
                  </Marked>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="small">{measured.said}</p>
      <label title="Uses the bandwidth efficiency and per-sequence cost fitted to this measurement for the chosen hardware: choose the catalog entry that is this machine">
        <input
          id="calibrate-measured"
          type="checkbox"
          checked={s.query.calibrate_measured}
          disabled={!pts.some((p) => p.calibrated_tok_s !== null)}
          onChange={(e) => s.setQuery({ ...s.query, calibrate_measured: (e.target as HTMLInputElement).checked })}
        />{" "}
        project with the efficiency fitted to this measurement {measured.applied && <strong>(in use above)</strong>}
      </label>
    </div>
  );
}
