// The one interface the screens use to reach Rust. `tauri.ts` implements it with `invoke`; tests use
// `mock.ts`. Nothing outside ui/src/api/ imports @tauri-apps/*.
import type * as T from "./types";

export interface PickOptions {
  title: string;
  directory: boolean;
  save?: boolean;
  filters?: { name: string; extensions: string[] }[];
}

export interface Api {
  startup(): Promise<T.Startup>;
  saveSettings(settings: T.Settings): Promise<void>;
  openModel(path: string): Promise<T.ModelView>;
  /** Opens a model as a job (a GGUF is converted first, with progress; cancel with `cancelJob`). */
  startOpenModel(path: string, onEvent: (e: T.JobEvent) => void): Promise<number>;
  listPresets(): Promise<T.PresetInfo[]>;
  listFormats(): Promise<T.FormatInfo[]>;
  loadRecipe(presetOrPath: string): Promise<string>;
  saveRecipe(path: string, toml: string): Promise<void>;
  plan(toml: string): Promise<T.PlanView>;
  editRecipe(toml: string, edit: T.RecipeEdit): Promise<T.RecipeDoc>;
  startCompress(
    toml: string,
    out: string,
    overwrite: boolean,
    device: string,
    calibration: T.CalibrationInput | null,
    onEvent: (e: T.JobEvent) => void,
  ): Promise<number>;
  cancelJob(id: number): Promise<boolean>;
  listRuns(): Promise<T.RunView[]>;
  tensorHistogram(runId: number, tensor: string, bins: number): Promise<T.Histogram>;
  listHardware(): Promise<T.HardwareInfo[]>;
  listScenarios(): Promise<T.ScenarioInfo[]>;
  project(query: T.ProjectionQuery): Promise<T.ProjectionView>;
  /** `metric`: the accuracy axis by name; null lets the engine choose (measured when any run is validated). */
  compare(query: T.ProjectionQuery, metric: string | null): Promise<T.CompareView>;
  exportFormats(): Promise<T.ExportFormatInfo[]>;
  exportRun(request: T.ExportRequest): Promise<T.ExportResult>;
  computeDevices(): Promise<T.ComputeDevice[]>;
  startValidate(request: T.ValidateRequest, onEvent: (e: T.JobEvent) => void): Promise<number>;
  /** Measures the open model's per-tensor sensitivity; the result stays in the session for `allocate`. */
  startScan(request: T.ScanRequest, onEvent: (e: T.JobEvent) => void): Promise<number>;
  allocate(query: T.BudgetQuery): Promise<T.AllocationView>;
  /** Replays a query log through simulated caches (a job): exact and semantic hit rates per threshold. */
  startCacheEstimate(request: T.CacheRequest, onEvent: (e: T.JobEvent) => void): Promise<number>;
  /** Sweeps the open model over several recipes here or on Slurm (a job; Slurm task states arrive as log events). */
  startSweep(request: T.SweepRequest, onEvent: (e: T.JobEvent) => void): Promise<number>;
  /** A native open/save dialog; null when the user cancels. */
  pickPath(options: PickOptions): Promise<string | null>;
  /** Calls `onDrop` with the paths of files dropped on the window; returns an unsubscribe function. */
  onFileDrop(onDrop: (paths: string[]) => void): Promise<() => void>;
}

/** A failed call, carrying the Rust error's message and its causes. */
export class ApiFailure extends Error {
  readonly causes: string[];
  constructor(message: string, causes: string[] = []) {
    super(message);
    this.name = "ApiFailure";
    this.causes = causes;
  }
}

/** Normalises whatever a call rejected with into an ApiFailure. */
export function toFailure(e: unknown): ApiFailure {
  if (e instanceof ApiFailure) return e;
  if (e && typeof e === "object" && "message" in e) {
    const o = e as { message: unknown; causes?: unknown };
    const causes = Array.isArray(o.causes) ? o.causes.map(String) : [];
    return new ApiFailure(String(o.message), causes);
  }
  return new ApiFailure(String(e));
}
