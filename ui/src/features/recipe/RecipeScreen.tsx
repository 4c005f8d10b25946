import { useEffect, useMemo, useState } from "preact/hooks";
import type { ActionEdit, FormatInfo, PlanRow, PresetInfo, ProjectionView, TensorRow } from "../../api/types";
import { Bars, explain } from "../../components/charts";
import { Marked } from "../../components/Provenance";
import { ErrorBox } from "../../components/ErrorBox";
import { PathField } from "../../components/PathField";
import { type Column, VirtualTable } from "../../components/VirtualTable";
import { useApi, useSession } from "../../context";
import { BudgetPanel } from "./BudgetPanel";
import { bytes, fixed, num, pct, shape } from "../../format";

interface Row {
  t: TensorRow;
  p: PlanRow | undefined;
}

const columns: Column<Row>[] = [
  { key: "name", label: "tensor", width: "minmax(240px, 3fr)", render: (r) => r.t.name, sort: (r) => r.t.name },
  { key: "role", label: "role", width: "84px", render: (r) => r.t.role, sort: (r) => r.t.role },
  { key: "shape", label: "shape", width: "120px", render: (r) => shape(r.t.shape), sort: (r) => r.t.params },
  {
    key: "action",
    label: "action",
    width: "150px",
    render: (r) => (
      <span class={r.p?.action === "keep" ? "muted" : "tag"} title={r.p?.notes.join("\n")}>
        {r.p?.action}
        {r.p?.requested_format ? ` (asked ${r.p.requested_format})` : ""}
      </span>
    ),
    sort: (r) => r.p?.action ?? "",
  },
  { key: "reason", label: "why", width: "140px", render: (r) => r.p?.reason, sort: (r) => r.p?.reason ?? "" },
  { key: "before", label: "before", width: "84px", render: (r) => bytes(r.t.bytes), sort: (r) => r.t.bytes, align: "right" },
  { key: "after", label: "after", width: "84px", render: (r) => (r.p ? bytes(r.p.planned_bytes) : ""), sort: (r) => r.p?.planned_bytes ?? 0, align: "right" },
];

function parseAction(v: string): ActionEdit {
  if (v === "keep") return { kind: "keep" };
  if (v === "sparse24") return { kind: "sparse24" };
  if (v.startsWith("prune:")) return { kind: "prune", sparsity: Number(v.slice(6)) };
  return { kind: "quantize", format: v.slice(2) };
}

function ActionSelect(props: { id: string; value: string; onChange: (v: string) => void; formats: FormatInfo[] }) {
  return (
    <select id={props.id} value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
      <option value="keep">keep</option>
      {props.formats.map((f) => (
        <option key={f.id} value={`q:${f.id}`} title={f.description}>
          quantize {f.id} ({fixed(f.bits_per_weight, 2)} bpw)
        </option>
      ))}
      <option value="prune:0.5">prune 50% (magnitude)</option>
      <option value="prune:0.3">prune 30% (magnitude)</option>
      <option value="sparse24">2:4 semi-structured</option>
    </select>
  );
}

export function RecipeScreen() {
  const api = useApi();
  const s = useSession();
  const [presets, setPresets] = useState<PresetInfo[]>([]);
  const [formats, setFormats] = useState<FormatInfo[]>([]);
  const [preset, setPreset] = useState("w8");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [override, setOverride] = useState("keep");
  const [dflt, setDflt] = useState("q:int8_channel");
  const [err, setErr] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [recipePath, setRecipePath] = useState("");
  const [proj, setProj] = useState<ProjectionView | null>(null);

  useEffect(() => {
    api.listPresets().then(setPresets, setErr);
    api.listFormats().then(setFormats, setErr);
  }, []);

  // Projected cost follows the plan (analytical, no work run).
  useEffect(() => {
    if (!s.model || !s.plan) return;
    let live = true;
    api.project({ ...s.query, recipe_toml: s.recipeToml }).then(
      (p) => live && setProj(p),
      () => live && setProj(null),
    );
    return () => {
      live = false;
    };
  }, [s.plan, s.query]);

  const rows: Row[] = useMemo(() => {
    const byName = new Map((s.plan?.rows ?? []).map((r) => [r.name, r]));
    return (s.model?.tensors ?? []).map((t) => ({ t, p: byName.get(t.name) }));
  }, [s.model, s.plan]);
  const filterText = useMemo(() => (r: Row) => `${r.t.name} ${r.t.role} ${r.t.dtype} ${r.p?.action ?? ""} ${r.p?.reason ?? ""}`, []);

  const applyPreset = async () => {
    try {
      setErr(null);
      s.setRecipeToml(await api.loadRecipe(preset));
    } catch (e) {
      setErr(e);
    }
  };
  const edit = async (e: Parameters<typeof api.editRecipe>[1]) => {
    try {
      setErr(null);
      const doc = await api.editRecipe(s.recipeToml, e);
      s.setRecipeToml(doc.toml);
      setNotice(
        doc.ignored_in_selection.length
          ? `${doc.ignored_in_selection.length} selected tensor(s) stay untouched because the recipe's ignore list wins: ${doc.ignored_in_selection.join(", ")}. Edit \`ignore\` in the TOML to change them.`
          : null,
      );
    } catch (x) {
      setErr(x);
    }
  };

  if (!s.model) {
    return (
      <section class="screen" id="screen-recipe">
        <h2>Recipe</h2>
        <p class="muted">Open a model first.</p>
      </section>
    );
  }
  const t = s.plan?.totals;
  const before = proj?.original.total_usd_month;
  const after = proj?.compressed?.total_usd_month;
  return (
    <section class="screen" id="screen-recipe">
      <h2>Recipe</h2>
      <div class="row">
        <label>
          Preset{" "}
          <select id="preset-select" value={preset} onChange={(e) => setPreset((e.target as HTMLSelectElement).value)}>
            {presets.map((p) => (
              <option key={p.name} value={p.name} title={p.description}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <button id="apply-preset" class="primary" onClick={applyPreset}>
          Apply preset
        </button>
        <span class="muted small">{presets.find((p) => p.name === preset)?.description}</span>
      </div>
      <div class="row">
        <label>
          New default action <ActionSelect id="default-action" value={dflt} onChange={setDflt} formats={formats} />
        </label>
        <button onClick={() => edit({ kind: "set_default", action: parseAction(dflt) })}>Set default</button>
      </div>
      <ErrorBox error={err} onClose={() => setErr(null)} />
      <div class="two">
        <div>
          <h3>
            Recipe TOML <span class="muted small">(edits re-plan instantly)</span>
          </h3>
          <textarea
            id="recipe-toml"
            spellcheck={false}
            value={s.recipeToml}
            onInput={(e) => s.setRecipeToml((e.target as HTMLTextAreaElement).value)}
            rows={14}
          />
          {s.planError ? <ErrorBox error={s.planError} /> : null}
          <div class="row">
            <PathField
              id="recipe-path"
              label="Recipe file"
              value={recipePath}
              onInput={setRecipePath}
              pick={{ title: "Recipe file", directory: false, save: true, filters: [{ name: "TOML", extensions: ["toml"] }] }}
              placeholder="/path/recipe.toml"
              onError={setErr}
            />
            <button
              id="save-recipe"
              disabled={!recipePath.trim()}
              onClick={() => api.saveRecipe(recipePath, s.recipeToml).then(() => setNotice(`Saved ${recipePath}`), setErr)}
            >
              Save
            </button>
            <button id="load-recipe" disabled={!recipePath.trim()} onClick={() => api.loadRecipe(recipePath).then(s.setRecipeToml, setErr)}>
              Load
            </button>
          </div>
          {s.plan && s.plan.recipe.rules.length > 0 && (
            <div>
              <h3>Rules (first match wins)</h3>
              <ol class="rules">
                {s.plan.recipe.rules.map((r, i) => (
                  <li key={i}>
                    <code>{r.action}</code> ← {r.targets.length > 3 ? `${r.targets.slice(0, 3).join(", ")} … (+${r.targets.length - 3})` : r.targets.join(", ")}{" "}
                    <button class="link" onClick={() => edit({ kind: "remove_rule", index: i })}>
                      remove
                    </button>
                  </li>
                ))}
              </ol>
            </div>
          )}
        </div>
        <div class={s.planError ? "stale" : ""}>
          <h3>Projected result</h3>
          {t && (
            <div class="cards" id="plan-totals">
              <div class="card">
                <div class="k">weights</div>
                <div class="v" id="plan-size" data-bytes={t.planned_bytes}>
                  {bytes(t.source_bytes)} → {bytes(t.planned_bytes)}
                </div>
                <div class="small muted">{pct(1 - t.planned_bytes / Math.max(1, t.source_bytes))} smaller (packed)</div>
              </div>
              <div class="card">
                <div class="k">tensors</div>
                <div class="v small">
                  {t.quantized} quantized · {t.pruned} pruned · {t.kept} kept{t.dropped ? ` · ${t.dropped} dropped` : ""}
                  {t.fallbacks ? ` · ${t.fallbacks} fallbacks` : ""}
                </div>
              </div>
              {before && (
                <div class="card">
                  <div class="k">$/month ({proj?.device})</div>
                  <div class="v">
                    <Marked kind="projected" detail={after ? explain(after) : explain(before)} id="plan-cost">
                      {num(before.value, 0)} → {after ? num(after.value, 0) : "–"}
                    </Marked>
                  </div>
                </div>
              )}
              {s.editMs !== null && (
                <div class="card">
                  <div class="k">edit → numbers</div>
                  <div class="v" id="edit-ms" data-ms={s.editMs.toFixed(1)}>
                    {s.editMs.toFixed(0)} ms
                  </div>
                </div>
              )}
            </div>
          )}
          {t && <Bars bars={t.bytes_by_format.map((b) => ({ label: b.key, value: b.bytes }))} format={bytes} width={460} />}
          {notice && <p class="notice">{notice}</p>}
        </div>
      </div>
      <BudgetPanel />
      <h3>Per-tensor plan</h3>
      <VirtualTable
        id="plan-table"
        rows={rows}
        columns={columns}
        rowKey={(r) => r.t.name}
        filterText={filterText}
        selected={selected}
        onSelect={setSelected}
        height={360}
        toolbar={
          <span class="override">
            {selected.size} selected — override with <ActionSelect id="override-action" value={override} onChange={setOverride} formats={formats} />
            <button id="apply-override" disabled={selected.size === 0} onClick={() => edit({ kind: "override", tensors: [...selected], action: parseAction(override) })}>
              Apply
            </button>
          </span>
        }
      />
    </section>
  );
}
