import type { Stage } from "./components/JobProgress";
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./api/api";
import type { ModelView, PlanView, ProjectionQuery, RunView, Settings } from "./api/types";

export const ApiContext = createContext<Api | null>(null);

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("ApiContext is not provided");
  return api;
}

/** What the screens share: the open model, the recipe being edited, the session's runs. */
export interface Session {
  model: ModelView | null;
  setModel: (m: ModelView | null) => void;
  recipeToml: string;
  setRecipeToml: (t: string) => void;
  /** The plan of `recipeToml` on the open model, recomputed on every edit. */
  plan: PlanView | null;
  planError: unknown;
  /** Milliseconds from the last edit to the rendered numbers. */
  editMs: number | null;
  runs: RunView[];
  addRun: (r: RunView) => void;
  /** Count of finished validations: Compare re-ranks when a run gains a measurement. */
  validations: number;
  noteValidation: () => void;
  selectedRun: number | null;
  setSelectedRun: (id: number | null) => void;
  query: Omit<ProjectionQuery, "recipe_toml">;
  setQuery: (q: Omit<ProjectionQuery, "recipe_toml">) => void;
  settings: Settings;
  updateSettings: (patch: Partial<Settings>) => void;
  /** The demo model shipped inside the app bundle, when there is one. */
  demo: string | null;
  computeDevice: string;
  setComputeDevice: (id: string) => void;
  go: (screen: ScreenId) => void;
  /** Open a model by path (Open screen, recent list, drag-and-drop, --open). */
  openPath: (path: string) => Promise<void>;
  opening: boolean;
  /** The conversion stage while a GGUF opens, and the job to cancel. */
  openStage: Stage | null;
  openJob: number | null;
  openError: unknown;
  setOpenError: (e: unknown) => void;
  /** Milliseconds from the request to the rendered table, measured in the UI. */
  openMs: number | null;
  /** Count of successful opens (lets tests tell one measurement from the next). */
  openSeq: number;
  setOpenMs: (ms: number | null) => void;
}

export type ScreenId = "open" | "recipe" | "run" | "validate" | "project" | "compare" | "export";

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("SessionContext is not provided");
  return s;
}
