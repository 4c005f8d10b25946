import { useState } from "preact/hooks";
import type { CacheRowView, CacheView } from "../../api/types";
import { ErrorBox } from "../../components/ErrorBox";
import { JobProgress, useJob } from "../../components/JobProgress";
import { PathField } from "../../components/PathField";
import { useApi, useSession } from "../../context";
import { duration, fixed, pct, whole } from "../../format";


/** Exact and semantic hits per threshold, stacked on one 0–100 % scale. */
function HitBars({ rows, chosen }: { rows: CacheRowView[]; chosen: number | null }) {
  const width = 460;
  const rowH = 24;
  const labelW = 60;
  const barW = width - labelW - 110;
  return (
    <svg class="chart" id="cache-chart" viewBox={`0 0 ${width} ${rows.length * rowH + 4}`} style={{ maxWidth: `${width}px` }} role="img">
      {rows.map((r, i) => {
        const ex = r.exact_hit_rate * barW;
        const se = r.semantic_hit_rate * barW;
        const wrong = se * (r.wrong_answer_share ?? 0);
        return (
          <g key={i} transform={`translate(0, ${i * rowH + 2})`} class={chosen === r.threshold ? "chosen" : ""}>
            <title>
              {`threshold ${fixed(r.threshold, 2)}: ${pct(r.exact_hit_rate)} exact + ${pct(r.semantic_hit_rate)} semantic hits` +
                (r.wrong_answer_share === null ? "" : `, an estimated ${pct(r.wrong_answer_share)} of the semantic hits wrong`)}
            </title>
            <text x={labelW - 6} y={15} text-anchor="end" class="axis">
              {fixed(r.threshold, 2)}
            </text>
            <rect x={labelW} y={3} width={Math.max(1, ex)} height={rowH - 8} fill="var(--muted, #999)" />
            <rect x={labelW + ex} y={3} width={se} height={rowH - 8} fill="var(--accent)" />
            <rect x={labelW + ex + se - wrong} y={3} width={wrong} height={rowH - 8} fill="var(--bad, #c33)" opacity={0.7} />
            <text x={labelW + ex + se + 6} y={15} class="axis">
              {pct(r.exact_hit_rate + r.semantic_hit_rate)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** "Measure from a query log": the user's own traffic replayed through simulated caches; a row's
 * rates replace the scenario's assumed hit rates in the projection. */
export function CachePanel() {
  const api = useApi();
  const s = useSession();
  const [log, setLog] = useState("");
  const [thresholds, setThresholds] = useState("0.80,0.85,0.90,0.95");
  const [capacity, setCapacity] = useState(100000);
  const [ttlHours, setTtlHours] = useState<number | null>(null);
  const [updates, setUpdates] = useState("never");
  const [view, setView] = useState<CacheView | null>(null);
  const { job, stage, err, setErr, start: launch } = useJob((e) => e.kind === "cache_estimated" && (setView(e.result), true));
  const inUse = s.query.traffic.cache;

  const start = () => {
    const list = thresholds
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t)
      .map(Number);
    return launch((onEvent) =>
      api.startCacheEstimate({ log, thresholds: list, capacity, ttl_seconds: ttlHours === null ? null : ttlHours * 3600, updates, encoder: null }, onEvent),
    );
  };

  const use = (v: CacheView, r: CacheRowView) =>
    s.setQuery({
      ...s.query,
      traffic: {
        ...s.query.traffic,
        cache: {
          exact_hit_rate: r.exact_hit_rate,
          semantic_hit_rate: r.semantic_hit_rate,
          source:
            `measured on ${v.log} (${whole(v.requests)} requests): threshold ${fixed(r.threshold, 2)}, capacity ${whole(v.capacity)}, ` +
            `ttl ${v.ttl_seconds === null ? "none" : `${v.ttl_seconds} s`}, updates ${v.updates}`,
        },
      },
    });

  return (
    <div id="cache-panel">
      <h3>Cache hit rates from your traffic</h3>
      <p class="muted small">
        Replays a query log (.txt one per line; .tsv/.csv/.jsonl with query, timestamp, tenant, token columns) through a simulated response cache: an exact hit is the
        same query, a semantic hit a cached query within the cosine threshold (all-MiniLM-L6-v2). Wrong answers are estimated on STS-B's labelled pairs.
      </p>
      <div class="row">
        <PathField
          id="cache-log"
          label="Query log"
          value={log}
          onInput={setLog}
          pick={{ title: "Query log", directory: false, filters: [{ name: "query log", extensions: ["txt", "log", "tsv", "csv", "jsonl", "ndjson"] }] }}
          placeholder="/path/queries.jsonl"
          onError={setErr}
        />
        <label>
          thresholds <input id="cache-thresholds" value={thresholds} onInput={(e) => setThresholds((e.target as HTMLInputElement).value)} size={22} />
        </label>
      </div>
      <div class="row">
        <label>
          capacity (entries){" "}
          <input id="cache-capacity" type="number" min={1} value={capacity} onInput={(e) => setCapacity(Math.max(1, Math.floor(Number((e.target as HTMLInputElement).value))))} />
        </label>
        <label>
          time to live (hours){" "}
          <input
            id="cache-ttl"
            type="number"
            min={0}
            placeholder="none"
            value={ttlHours ?? ""}
            onInput={(e) => {
              const v = (e.target as HTMLInputElement).value;
              setTtlHours(v === "" || Number(v) <= 0 ? null : Number(v));
            }}
          />
        </label>
        <label title="A model update empties the cache: answers are valid only for the model that produced them">
          model updates{" "}
          <select id="cache-updates" value={updates} onChange={(e) => setUpdates((e.target as HTMLSelectElement).value)}>
            {["never", "daily", "weekly", "monthly", "quarterly"].map((u) => (
              <option key={u} value={u}>
                {u}
              </option>
            ))}
          </select>
        </label>
        <button id="cache-start" class="primary" disabled={job !== null || !log.trim()} onClick={start}>
          Measure
        </button>
        <button id="cache-cancel" disabled={job === null} onClick={() => job !== null && api.cancelJob(job)}>
          Cancel
        </button>
      </div>
      {job !== null && <JobProgress stage={stage} idle="loading the encoder" id="cache-progress" />}
      <ErrorBox error={err} onClose={() => setErr(null)} />
      {inUse && (
        <p class="small" id="cache-in-use">
          The projection uses measured cache rates: {pct(inUse.exact_hit_rate)} exact + {pct(inUse.semantic_hit_rate)} semantic ({inUse.source}).{" "}
          <button id="cache-clear" onClick={() => s.setQuery({ ...s.query, traffic: { ...s.query.traffic, cache: null } })}>
            Back to the scenario's assumptions
          </button>
        </p>
      )}
      {view && (
        <>
          <p class="muted small" id="cache-summary">
            {whole(view.requests)} requests, {whole(view.distinct_queries)} distinct; {whole(view.embedded_per_second)} queries embedded per second; search: {view.search};{" "}
            {duration(view.seconds)}. Grey: exact hits, blue: semantic hits, red: the estimated wrong answers among them.
          </p>
          <HitBars rows={view.rows} chosen={inUse ? (view.rows.find((r) => r.exact_hit_rate === inUse.exact_hit_rate && r.semantic_hit_rate === inUse.semantic_hit_rate)?.threshold ?? null) : null} />
          <table class="qt" id="cache-rows">
            <thead>
              <tr>
                <th>threshold</th>
                <th>exact hits</th>
                <th>semantic hits</th>
                <th>wrong (of semantic)</th>
                <th title="On the labelled pairs: of the pairs at or above the threshold, the share asking the same thing">precision</th>
                <th title="On the labelled pairs: of the same-intent pairs, the share at or above the threshold">recall</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {view.rows.map((r) => (
                <tr key={r.threshold}>
                  <td>{fixed(r.threshold, 2)}</td>
                  <td>{pct(r.exact_hit_rate)}</td>
                  <td>{pct(r.semantic_hit_rate)}</td>
                  <td>{r.wrong_answer_share === null ? "–" : pct(r.wrong_answer_share)}</td>
                  <td>{r.precision === null ? "–" : pct(r.precision)}</td>
                  <td>{r.recall === null ? "–" : pct(r.recall)}</td>
                  <td>
                    <button class="use-cache" data-threshold={r.threshold} onClick={() => use(view, r)}>
                      Use in the projection
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {view.tenants.length > 0 && (
            <p class="small" id="cache-tenants">
              Measured use by tenant: {view.tenants.map(([n, share]) => `${n} ${pct(share)}`).join(", ")}
            </p>
          )}
        </>
      )}
    </div>
  );
}
