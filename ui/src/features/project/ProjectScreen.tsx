import { useEffect, useState } from "preact/hooks";
import type { HardwareInfo, PlanSide, ProjectionView, QuantityView, ScenarioInfo } from "../../api/types";
import { PairBars, explain, qtext, rangeText } from "../../components/charts";
import { ErrorBox } from "../../components/ErrorBox";
import { Marked, ProvenanceKey } from "../../components/Provenance";
import { useApi, useSession } from "../../context";
import { num } from "../../format";
import { CachePanel } from "./CachePanel";
import { MeasuredPanel } from "./MeasuredPanel";

function pairs(a: PlanSide, b: PlanSide | null, pick: (s: PlanSide) => [string, QuantityView][], only?: string[]) {
  const labels = pick(a)
    .map(([k]) => k)
    .filter((k) => !only || only.includes(k));
  return labels.map((label) => ({
    label,
    before: pick(a).find(([k]) => k === label)?.[1],
    after: b ? pick(b).find(([k]) => k === label)?.[1] : undefined,
  }));
}

function Q({ q, id }: { q: QuantityView | null | undefined; id?: string }) {
  if (!q) return <span class="muted">–</span>;
  return (
    <>
      <Marked kind="projected" detail={explain(q)} id={id}>
        {qtext(q)}
        {q.estimate ? "*" : ""}
      </Marked>
      {q.range && <span class="range muted small"> ({rangeText(q)})</span>}
    </>
  );
}

export function ProjectScreen() {
  const api = useApi();
  const s = useSession();
  const [hardware, setHardware] = useState<HardwareInfo[]>([]);
  const [scenarios, setScenarios] = useState<ScenarioInfo[]>([]);
  const [view, setView] = useState<ProjectionView | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [withRecipe, setWithRecipe] = useState(true);

  useEffect(() => {
    api.listHardware().then(setHardware, setErr);
    api.listScenarios().then(setScenarios, setErr);
  }, []);

  useEffect(() => {
    if (!s.model) return;
    let live = true;
    api.project({ ...s.query, recipe_toml: withRecipe && !s.planError ? s.recipeToml : null }).then(
      (v) => {
        if (!live) return;
        setView(v);
        setErr(null);
      },
      (e) => live && setErr(e),
    );
    return () => {
      live = false;
    };
  }, [s.model, s.query, s.recipeToml, withRecipe]);

  if (!s.model) {
    return (
      <section class="screen" id="screen-project">
        <h2>Project</h2>
        <p class="muted">Open a model first.</p>
      </section>
    );
  }
  const sc = scenarios.find((x) => x.id === s.query.scenario);
  const numInput = (id: string, label: string, value: number | null | undefined, fallback: number | undefined, set: (v: number | null) => void) => (
    <label>
      {label}{" "}
      <input
        id={id}
        type="number"
        min={0}
        value={value ?? ""}
        placeholder={fallback !== undefined ? String(fallback) : ""}
        onChange={(e) => {
          const v = (e.target as HTMLInputElement).value;
          set(v === "" ? null : Number(v));
        }}
      />
    </label>
  );
  return (
    <section class="screen" id="screen-project">
      <h2>Project: memory, latency and cost</h2>
      <div class="row">
        <label>
          Scenario{" "}
          <select
            id="scenario-select"
            value={s.query.scenario}
            onChange={(e) => s.setQuery({ ...s.query, scenario: (e.target as HTMLSelectElement).value, traffic: { requests_per_day: null, input_tokens: null, output_tokens: null, engine: null, cache: null } })}
          >
            {scenarios.map((x) => (
              <option key={x.id} value={x.id} title={x.description}>
                {x.id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Hardware{" "}
          <select
            id="hardware-select"
            value={s.query.device ?? ""}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              s.setQuery({ ...s.query, device: v || null });
            }}
          >
            <option value="">scenario default{sc?.default_device ? ` (${sc.default_device})` : ""}</option>
            {hardware.map((h) => (
              <option key={h.id} value={h.id}>
                {h.name} — {h.mem_gib} GiB ({h.kind})
              </option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={withRecipe} onChange={(e) => setWithRecipe((e.target as HTMLInputElement).checked)} /> compare with the current recipe
        </label>
      </div>
      <div class="row">
        {numInput("rpd", "requests/day", s.query.traffic.requests_per_day, sc?.requests_per_day, (v) => s.setQuery({ ...s.query, traffic: { ...s.query.traffic, requests_per_day: v } }))}
        {numInput("in-tok", "input tokens", s.query.traffic.input_tokens, sc?.input_tokens, (v) => s.setQuery({ ...s.query, traffic: { ...s.query.traffic, input_tokens: v } }))}
        {numInput("out-tok", "output tokens", s.query.traffic.output_tokens, sc?.output_tokens, (v) => s.setQuery({ ...s.query, traffic: { ...s.query.traffic, output_tokens: v } }))}
        <label title="Decode speeds use figures fitted to this engine's published measurements on the device's class (BENCHMARKS.md)">
          engine{" "}
          <select
            id="engine-select"
            value={s.query.traffic.engine ?? ""}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              s.setQuery({ ...s.query, traffic: { ...s.query.traffic, engine: v === "" ? null : v } });
            }}
          >
            <option value="">scenario's ({sc?.engine ?? "roofline defaults"})</option>
            {["llama.cpp", "vllm", "tensorrt-llm", "sglang"].map((e) => (
              <option key={e} value={e}>
                {e}
              </option>
            ))}
          </select>
        </label>
      </div>
      {sc && <p class="muted small">{sc.description}</p>}
      <ErrorBox error={err} />
      {view && (
        <>
          <p>
            <strong>{view.device}</strong> · {view.scenario} · {view.mode}
            {view.summary && <> — {view.summary}</>}
          </p>
          <p class="muted small">Hover any number or bar for its formula and sources. * = model estimate. Grey = original, blue = compressed.</p>
          <ProvenanceKey kinds={["projected"]} />
          <div class="two">
            <div>
              <h3>Memory</h3>
              <PairBars rows={pairs(view.original, view.compressed, (p) => p.memory, ["weights", "KV cache", "activations", "runtime overhead", "total"])} />
              <p class="small">
                Fits: original {view.original.fits ? "yes" : "no"}
                {view.compressed && <> · compressed {view.compressed.fits ? "yes" : "no"}</>}
              </p>
              <h3>Latency</h3>
              <table class="qt">
                <thead>
                  <tr>
                    <th />
                    <th>original</th>
                    {view.compressed && <th>compressed</th>}
                  </tr>
                </thead>
                <tbody>
                  {view.original.latency.map(([k, q]) => (
                    <tr key={k}>
                      <td>{k}</td>
                      <td>
                        <Q q={q} />
                      </td>
                      {view.compressed && (
                        <td>
                          <Q q={view.compressed.latency.find(([kk]) => kk === k)?.[1]} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div>
              <h3>$/month by category</h3>
              <PairBars rows={pairs(view.original, view.compressed, (p) => p.cost, ["compute", "memory", "I/O", "network"])} />
              <table class="qt">
                <tbody>
                  <tr>
                    <td>total $/month</td>
                    <td>
                      <Q q={view.original.total_usd_month} id="cost-original" />
                    </td>
                    {view.compressed && (
                      <td>
                        <Q q={view.compressed.total_usd_month} id="cost-compressed" />
                      </td>
                    )}
                  </tr>
                  <tr>
                    <td>$ per 1M requests</td>
                    <td>
                      <Q q={view.original.usd_per_1m_requests} />
                    </td>
                    {view.compressed && (
                      <td>
                        <Q q={view.compressed.usd_per_1m_requests} />
                      </td>
                    )}
                  </tr>
                  <tr>
                    <td>caching saves</td>
                    <td>
                      <Q q={view.original.cost.find(([k]) => k === "caching saves")?.[1]} id="cache-savings" />
                    </td>
                    {view.compressed && (
                      <td>
                        <Q q={view.compressed.cost.find(([k]) => k === "caching saves")?.[1]} />
                      </td>
                    )}
                  </tr>
                  <tr>
                    <td>SLO</td>
                    <td class="small">{view.original.slo}</td>
                    {view.compressed && <td class="small">{view.compressed.slo}</td>}
                  </tr>
                </tbody>
              </table>
            </div>
          </div>
          <h3>Right-sizing {view.ranking_verdict && <span class="small muted">— {view.ranking_verdict}</span>}</h3>
          <table class="qt" id="ranking">
            <thead>
              <tr>
                <th>rank</th>
                <th>hardware</th>
                <th>fits</th>
                <th>SLO</th>
                <th>instances</th>
                <th>$/month</th>
                <th>note</th>
              </tr>
            </thead>
            <tbody>
              {view.ranking.map((r) => (
                <tr key={r.device_id} class={r.rank === 1 ? "best" : ""}>
                  <td>{r.rank ?? "–"}</td>
                  <td>{r.device_name}</td>
                  <td>{r.fits ? "yes" : "no"}</td>
                  <td>{r.slo}</td>
                  <td>{r.instances === null ? "–" : num(r.instances, 0)}</td>
                  <td>
                    <Q q={r.usd_month} />
                  </td>
                  <td class="small muted">{r.note}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {view.latency_verdict && (
            <p id="latency-boundary" title={view.batch_terms.length ? `batch side: ${view.batch_terms.join("; ")}` : undefined}>
              <strong>Real-time vs batch:</strong> {view.latency_verdict}
              {view.latency_premium && (
                <>
                  {" "}
                  (<Q q={view.latency_premium} />)
                </>
              )}
            </p>
          )}
          <MeasuredPanel measured={view.measured} />
          {(view.unknowns.length > 0 || view.notes.length > 0) && (
            <ul class="small muted">
              {[...view.unknowns, ...view.notes].map((n, i) => (
                <li key={i}>{n}</li>
              ))}
            </ul>
          )}
        </>
      )}
      <CachePanel />
    </section>
  );
}
