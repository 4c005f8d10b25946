// The real implementation: Tauri IPC. This file and the webview helper below are the only callers
// of @tauri-apps/* in the UI. File dialogs are opened by the backend (`pick_path`), which is how a
// path becomes one the studio may use; the page itself has no dialog permission.
import { Channel, invoke } from "@tauri-apps/api/core";
import { getCurrentWebview } from "@tauri-apps/api/webview";
import type { Api, PickOptions } from "./api";
import { toFailure } from "./api";
import type * as T from "./types";

async function call<R>(cmd: string, args?: Record<string, unknown>): Promise<R> {
  try {
    return await invoke<R>(cmd, args);
  } catch (e) {
    throw toFailure(e);
  }
}

export const tauriApi: Api = {
  startup: () => call("startup"),
  saveSettings: (settings) => call("save_settings", { settings }),
  openModel: (path) => call("open_model", { path }),
  startOpenModel: (path, onEvent) => {
    const channel = new Channel<T.JobEvent>();
    channel.onmessage = onEvent;
    return call("start_open_model", { path, onEvent: channel });
  },
  listPresets: () => call("list_presets"),
  listFormats: () => call("list_formats"),
  loadRecipe: (presetOrPath) => call("load_recipe", { presetOrPath }),
  saveRecipe: (path, toml) => call("save_recipe", { path, toml }),
  plan: (toml) => call("plan", { toml }),
  editRecipe: (toml, edit) => call("edit_recipe", { toml, edit }),
  startCompress: (toml, out, overwrite, device, calibration, onEvent) => {
    const channel = new Channel<T.JobEvent>();
    channel.onmessage = onEvent;
    return call("start_compress", { toml, out, overwrite, device, calibration, onEvent: channel });
  },
  cancelJob: (id) => call("cancel_job", { id }),
  listRuns: () => call("list_runs"),
  tensorHistogram: (runId, tensor, bins) => call("tensor_histogram", { runId, tensor, bins }),
  listHardware: () => call("list_hardware"),
  listScenarios: () => call("list_scenarios"),
  project: (query) => call("project_plan", { query }),
  compare: (query, metric) => call("compare_runs", { query, metric }),
  exportFormats: () => call("export_formats"),
  exportRun: (request) => call("export_run", { request }),
  computeDevices: () => call("compute_devices"),
  startValidate: (request, onEvent) => {
    const channel = new Channel<T.JobEvent>();
    channel.onmessage = onEvent;
    return call("start_validate", { request, onEvent: channel });
  },
  startScan: (request, onEvent) => {
    const channel = new Channel<T.JobEvent>();
    channel.onmessage = onEvent;
    return call("start_scan", { request, onEvent: channel });
  },
  allocate: (query) => call("allocate", { query }),
  startCacheEstimate: (request, onEvent) => {
    const channel = new Channel<T.JobEvent>();
    channel.onmessage = onEvent;
    return call("start_cache_estimate", { request, onEvent: channel });
  },
  startSweep: (request, onEvent) => {
    const channel = new Channel<T.JobEvent>();
    channel.onmessage = onEvent;
    return call("start_sweep", { request, onEvent: channel });
  },
  pickPath: (o: PickOptions) =>
    call<string | null>("pick_path", {
      request: { title: o.title, directory: o.directory, save: o.save ?? false, filters: o.filters ?? [] },
    }),
  onFileDrop: async (onDrop) =>
    getCurrentWebview().onDragDropEvent((event) => {
      if (event.payload.type === "drop") onDrop(event.payload.paths);
    }),
};
