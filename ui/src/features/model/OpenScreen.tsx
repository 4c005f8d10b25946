import { useEffect, useMemo, useState } from "preact/hooks";
import type { TensorRow } from "../../api/types";
import { Bars } from "../../components/charts";
import { ErrorBox } from "../../components/ErrorBox";
import { JobProgress } from "../../components/JobProgress";
import { PathField } from "../../components/PathField";
import { type Column, VirtualTable } from "../../components/VirtualTable";
import { useApi, useSession } from "../../context";
import { bytes, count, shape } from "../../format";

const columns: Column<TensorRow>[] = [
  { key: "name", label: "tensor", width: "minmax(260px, 3fr)", render: (t) => t.name, sort: (t) => t.name },
  { key: "role", label: "role", width: "90px", render: (t) => t.role, sort: (t) => t.role },
  { key: "layer", label: "layer", width: "60px", render: (t) => t.layer ?? "", sort: (t) => t.layer ?? -1, align: "right" },
  { key: "dtype", label: "dtype", width: "70px", render: (t) => t.dtype, sort: (t) => t.dtype },
  { key: "shape", label: "shape", width: "140px", render: (t) => shape(t.shape), sort: (t) => t.params },
  { key: "params", label: "params", width: "90px", render: (t) => count(t.params), sort: (t) => t.params, align: "right" },
  { key: "bytes", label: "size", width: "90px", render: (t) => bytes(t.bytes), sort: (t) => t.bytes, align: "right" },
];

export function OpenScreen() {
  const s = useSession();
  const api = useApi();
  const [path, setPath] = useState("");
  const [err, setErr] = useState<unknown>(null);
  const m = s.model;
  useEffect(() => {
    if (m && !path) setPath(m.summary.root);
  }, [m]);
  const filterText = useMemo(() => (t: TensorRow) => `${t.name} ${t.role} ${t.dtype}`, []);
  return (
    <section class="screen" id="screen-open">
      <h2>Open a model</h2>
      <div class="row">
        <PathField
          id="model-path"
          label="Model folder, .safetensors or .gguf file"
          value={path}
          onInput={setPath}
          onEnter={() => s.openPath(path)}
          pick={{ title: "Open a model folder", directory: true }}
          placeholder="/path/to/model (or drop it on the window)"
          onError={setErr}
        />
        <button id="open-model" class="primary" disabled={s.opening || !path.trim()} onClick={() => s.openPath(path)}>
          {s.opening ? "Opening…" : "Open"}
        </button>
      </div>
      {s.demo && !m && (
        <p>
          <button id="open-demo" disabled={s.opening} onClick={() => s.demo && s.openPath(s.demo)}>
            Open the bundled demo model (stories260K)
          </button>{" "}
          <span class="muted">a 260K-parameter TinyStories decoder shipped with the app, to try every screen</span>
        </p>
      )}
      <p class="muted">
        Drop a model folder, .safetensors or .gguf file anywhere on the window to open it. A GGUF is read through its
        Hugging Face conversion, made once into the cache (its dequantized weights; a quantized GGUF is flagged).
      </p>
      {s.opening && s.openStage && (
        <div class="row">
          <JobProgress stage={s.openStage} idle="Reading the GGUF…" id="open-progress" />
          <button id="open-cancel" disabled={s.openJob === null} onClick={() => s.openJob !== null && api.cancelJob(s.openJob)}>
            Cancel
          </button>
        </div>
      )}
      <ErrorBox error={err ?? s.openError} onClose={() => (setErr(null), s.setOpenError(null))} />
      {s.settings.recent_models.length > 0 && (
        <div class="recent">
          <h3>Recent</h3>
          {s.settings.recent_models.map((r) => (
            <button key={r} class="link" onClick={() => (setPath(r), s.openPath(r))} title={r}>
              {r}
            </button>
          ))}
        </div>
      )}
      {m && (
        <>
          <div class="cards" id="model-summary">
            <div class="card">
              <div class="k">architecture</div>
              <div class="v">{m.summary.architecture ?? "unknown (no config.json)"}</div>
            </div>
            <div class="card">
              <div class="k">parameters</div>
              <div class="v">{count(m.summary.parameters)}</div>
            </div>
            <div class="card">
              <div class="k">weights</div>
              <div class="v">{bytes(m.summary.bytes)}</div>
            </div>
            <div class="card">
              <div class="k">tensors / shards</div>
              <div class="v">
                {m.summary.tensor_count} / {m.summary.shards}
              </div>
            </div>
            {m.summary.config && (
              <div class="card wide">
                <div class="k">config</div>
                <div class="v small">
                  {m.summary.config.num_layers} layers · hidden {m.summary.config.hidden_size} · {m.summary.config.num_heads} heads ({m.summary.config.num_kv_heads} KV) · FFN{" "}
                  {m.summary.config.intermediate_size} · vocab {m.summary.config.vocab_size}
                </div>
              </div>
            )}
            {s.openMs !== null && (
              <div class="card">
                <div class="k">open → table</div>
                <div class="v" id="open-ms" data-ms={s.openMs.toFixed(1)} data-seq={String(s.openSeq)}>
                  {s.openMs.toFixed(0)} ms
                </div>
              </div>
            )}
          </div>
          <div class="two">
            <div>
              <h3>Memory by dtype</h3>
              <Bars bars={m.summary.by_dtype.map((d) => ({ label: `${d.key} (${d.tensors})`, value: d.bytes }))} format={bytes} />
            </div>
            <div>
              <h3>Memory by role</h3>
              <Bars bars={m.summary.by_role.map((d) => ({ label: `${d.key} (${d.tensors})`, value: d.bytes }))} format={bytes} />
            </div>
          </div>
          <h3>Tensors</h3>
          <VirtualTable id="tensor-table" rows={m.tensors} columns={columns} rowKey={(t) => t.name} filterText={filterText} />
        </>
      )}
    </section>
  );
}
