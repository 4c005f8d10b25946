import { useEffect, useState } from "preact/hooks";
import type { ExportFormatInfo, ExportResult } from "../../api/types";
import { ErrorBox } from "../../components/ErrorBox";
import { PathField } from "../../components/PathField";
import { useApi, useSession } from "../../context";
import { bytes } from "../../format";

export function ExportScreen() {
  const api = useApi();
  const s = useSession();
  const [formats, setFormats] = useState<ExportFormatInfo[]>([]);
  const [format, setFormat] = useState("safetensors");
  const [target, setTarget] = useState("");
  const [overwrite, setOverwrite] = useState(false);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const [result, setResult] = useState<ExportResult | null>(null);
  const run = s.runs.find((r) => r.id === s.selectedRun) ?? s.runs[s.runs.length - 1];

  useEffect(() => {
    api.exportFormats().then(setFormats, setErr);
  }, []);
  useEffect(() => {
    if (run) setTarget(`${run.output}-export`);
  }, [run?.id]);

  if (!run) {
    return (
      <section class="screen" id="screen-export">
        <h2>Export</h2>
        <p class="muted">Run a compression first; its result is what gets exported.</p>
      </section>
    );
  }
  const go = async () => {
    setBusy(true);
    setErr(null);
    setResult(null);
    try {
      setResult(await api.exportRun({ run_id: run.id, format, target, overwrite }));
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="screen" id="screen-export">
      <h2>Export</h2>
      <div class="row">
        <label>
          Variant{" "}
          <select id="export-run-select" value={String(run.id)} onChange={(e) => s.setSelectedRun(Number((e.target as HTMLSelectElement).value))}>
            {s.runs.map((r) => (
              <option key={r.id} value={String(r.id)}>
                #{r.id} {r.recipe_name} ({bytes(r.planned_bytes)})
              </option>
            ))}
          </select>
        </label>
      </div>
      <fieldset class="formats">
        <legend>Format — what each engine loads</legend>
        {formats.map((f) => (
          <label key={f.id} class={f.available ? "" : "disabled"}>
            <input type="radio" name="format" value={f.id} checked={format === f.id} disabled={!f.available} onChange={() => setFormat(f.id)} />
            <strong>{f.label}</strong> — {f.loads_in}
            <span class="small muted"> ({f.note})</span>
          </label>
        ))}
      </fieldset>
      <div class="row">
        <PathField id="export-path" label="Target folder" value={target} onInput={setTarget} pick={{ title: "Export to folder", directory: true }} onError={setErr} />
        <label>
          <input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite((e.target as HTMLInputElement).checked)} /> overwrite
        </label>
        <button id="export-run" class="primary" disabled={busy || !target.trim()} onClick={go}>
          {busy ? "Exporting…" : "Export"}
        </button>
      </div>
      <ErrorBox error={err} onClose={() => setErr(null)} />
      {result && (
        <div id="export-result">
          <p class="notice">
            Wrote {result.files.length} files to <code>{result.target}</code>
          </p>
          <table class="qt">
            <tbody>
              {result.files.map((f) => (
                <tr key={f.path}>
                  <td>{f.path}</td>
                  <td>{bytes(f.bytes)}</td>
                  <td class="small muted">{f.sha256 ? f.sha256.slice(0, 16) : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
