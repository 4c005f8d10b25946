import { type StateUpdater, useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type Api, ApiFailure } from "./api/api";
import { type Stage, trackStage } from "./components/JobProgress";
import type { ComputeDevice, ModelView, PlanView, ProjectionQuery, RunView, Settings } from "./api/types";
import { ApiContext, type ScreenId, type Session, SessionContext } from "./context";
import { CompareScreen } from "./features/compare/CompareScreen";
import { ExportScreen } from "./features/export/ExportScreen";
import { OpenScreen } from "./features/model/OpenScreen";
import { ProjectScreen } from "./features/project/ProjectScreen";
import { RecipeScreen } from "./features/recipe/RecipeScreen";
import { RunScreen } from "./features/run/RunScreen";
import { ValidateScreen } from "./features/validate/ValidateScreen";

const SCREENS: { id: ScreenId; label: string }[] = [
  { id: "open", label: "Open" },
  { id: "recipe", label: "Recipe" },
  { id: "run", label: "Run" },
  { id: "validate", label: "Validate" },
  { id: "project", label: "Project" },
  { id: "compare", label: "Compare" },
  { id: "export", label: "Export" },
];

const EMPTY_SETTINGS: Settings = { recent_models: [], last_recipe_toml: null, scenario: null, device: null, compute_device: null, sweep: null };
const DEFAULT_PRESET = "w8";

/** Resolves once the browser has painted the current state. */
const afterPaint = () => new Promise<void>((r) => requestAnimationFrame(() => setTimeout(r, 0)));

export function App({ api }: { api: Api }) {
  const [screen, setScreen] = useState<ScreenId>("open");
  const [model, setModel] = useState<ModelView | null>(null);
  const [recipeToml, setRecipeTomlRaw] = useState("");
  const [plan, setPlan] = useState<PlanView | null>(null);
  const [planError, setPlanError] = useState<unknown>(null);
  const [editMs, setEditMs] = useState<number | null>(null);
  const [runs, setRuns] = useState<RunView[]>([]);
  const [selectedRun, setSelectedRun] = useState<number | null>(null);
  const [validations, setValidations] = useState(0);
  const [query, setQueryRaw] = useState<Omit<ProjectionQuery, "recipe_toml">>({
    scenario: "high-volume-api",
    device: null,
    traffic: { requests_per_day: null, input_tokens: null, output_tokens: null, engine: null, cache: null },
    calibrate_measured: false,
  });
  const [settings, setSettings] = useState<Settings>(EMPTY_SETTINGS);
  const [demo, setDemo] = useState<string | null>(null);
  const [devices, setDevices] = useState<ComputeDevice[]>([]);
  const [computeDevice, setComputeDeviceRaw] = useState("cpu");
  const [opening, setOpening] = useState(false);
  const [openStage, setOpenStage] = useState<Stage | null>(null);
  const [openJob, setOpenJob] = useState<number | null>(null);
  const [openError, setOpenError] = useState<unknown>(null);
  const [openMs, setOpenMs] = useState<number | null>(null);
  const [openSeq, setOpenSeq] = useState(0);
  const [version, setVersion] = useState("");
  const [dragging, setDragging] = useState(false);
  const settingsRef = useRef(settings);
  settingsRef.current = settings;

  const updateSettings = useCallback(
    (patch: Partial<Settings>) => {
      const next = { ...settingsRef.current, ...patch };
      setSettings(next);
      api.saveSettings(next).catch(() => undefined);
    },
    [api],
  );

  // Planner: every recipe edit re-resolves the plan; requests are coalesced so only the newest waits.
  const inflight = useRef(false);
  const pending = useRef<{ toml: string; t0: number } | null>(null);
  const runPlan = useCallback(
    async (toml: string, t0: number) => {
      inflight.current = true;
      try {
        const p = await api.plan(toml);
        setPlan(p);
        setPlanError(null);
        await afterPaint();
        setEditMs(performance.now() - t0);
      } catch (e) {
        setPlanError(e);
      } finally {
        inflight.current = false;
        const next = pending.current;
        pending.current = null;
        if (next) void runPlan(next.toml, next.t0);
      }
    },
    [api],
  );
  const schedulePlan = useCallback(
    (toml: string) => {
      const job = { toml, t0: performance.now() };
      if (inflight.current) pending.current = job;
      else void runPlan(job.toml, job.t0);
    },
    [runPlan],
  );

  const saveTimer = useRef<number | undefined>(undefined);
  const setRecipeToml = useCallback(
    (t: string) => {
      setRecipeTomlRaw(t);
      schedulePlan(t);
      window.clearTimeout(saveTimer.current);
      saveTimer.current = window.setTimeout(() => updateSettings({ last_recipe_toml: t }), 800);
    },
    [schedulePlan, updateSettings],
  );

  const openPath = useCallback(
    async (path: string) => {
      setOpening(true);
      setOpenError(null);
      setOpenStage(null);
      const t0 = performance.now();
      try {
        // A GGUF is converted first (minutes for a large file): a job with progress and cancel.
        const m = /\.gguf$/i.test(path.trim()) ? await openAsJob(api, path, setOpenStage, setOpenJob) : await api.openModel(path);
        if (!m) return;
        setModel(m);
        setScreen("open");
        await afterPaint();
        setOpenMs(performance.now() - t0);
        setOpenSeq((n) => n + 1);
        const shown = /\.gguf$/i.test(path.trim()) ? path.trim() : m.summary.root;
        const recent = [shown, ...settingsRef.current.recent_models.filter((r) => r !== shown)].slice(0, 10);
        setSettings({ ...settingsRef.current, recent_models: recent });
      } catch (e) {
        setOpenError(e);
        setScreen("open");
      } finally {
        setOpening(false);
        setOpenStage(null);
        setOpenJob(null);
      }
    },
    [api],
  );

  // Re-plan when a model is opened.
  // Keyboard: Alt+1…7 opens a screen, Alt+↑/↓ the previous or next one (Alt keeps plain keys for typing).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey) return;
      const digit = /^Digit([1-9])$/.exec(e.code)?.[1];
      const target = digit ? SCREENS[Number(digit) - 1] : undefined;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        setScreen((cur) => {
          const i = SCREENS.findIndex((x) => x.id === cur);
          const j = (i + (e.key === "ArrowDown" ? 1 : SCREENS.length - 1)) % SCREENS.length;
          return SCREENS[j]?.id ?? cur;
        });
        e.preventDefault();
        return;
      }
      if (target) {
        setScreen(target.id);
        e.preventDefault();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  useEffect(() => {
    if (model && recipeToml) schedulePlan(recipeToml);
  }, [model]);

  // Start-up: settings, last recipe, devices, a model given on the command line.
  useEffect(() => {
    (async () => {
      try {
        const st = await api.startup();
        setVersion(st.version);
        setSettings(st.settings);
        setDemo(st.demo);
        setQueryRaw((q) => ({ ...q, scenario: st.settings.scenario ?? q.scenario, device: st.settings.device ?? null }));
        if (st.settings.compute_device) setComputeDeviceRaw(st.settings.compute_device);
        const toml = st.settings.last_recipe_toml ?? (await api.loadRecipe(DEFAULT_PRESET));
        setRecipeTomlRaw(toml);
        setDevices(await api.computeDevices());
        if (st.open) await openPath(st.open);
      } catch (e) {
        setOpenError(e);
      }
    })();
  }, []);

  // Drag-and-drop a model folder or file onto the window.
  useEffect(() => {
    let off: (() => void) | undefined;
    api
      .onFileDrop((paths) => {
        setDragging(false);
        const first = paths[0];
        if (first) void openPath(first);
      })
      .then((u) => (off = u), () => undefined);
    return () => off?.();
  }, [api, openPath]);

  const session: Session = useMemo(
    () => ({
      model,
      setModel,
      recipeToml,
      setRecipeToml,
      plan,
      planError,
      editMs,
      runs,
      addRun: (r) => setRuns((rs) => [...rs, r]),
      validations,
      noteValidation: () => setValidations((n) => n + 1),
      selectedRun,
      setSelectedRun,
      query,
      setQuery: (q) => {
        setQueryRaw(q);
        updateSettings({ scenario: q.scenario, device: q.device });
      },
      settings,
      demo,
      updateSettings,
      computeDevice,
      setComputeDevice: (id) => {
        setComputeDeviceRaw(id);
        updateSettings({ compute_device: id });
      },
      go: setScreen,
      openPath,
      opening,
      openStage,
      openJob,
      openError,
      setOpenError,
      openMs,
      setOpenMs,
      openSeq,
    }),
    [model, recipeToml, plan, planError, editMs, runs, validations, selectedRun, query, settings, demo, computeDevice, opening, openStage, openJob, openError, openMs, openSeq, setRecipeToml, updateSettings, openPath],
  );

  return (
    <ApiContext.Provider value={api}>
      <SessionContext.Provider value={session}>
        <div class={`shell ${dragging ? "dragging" : ""}`} onDragOver={() => setDragging(true)} onDragLeave={() => setDragging(false)}>
          <nav>
            <div class="brand">
              Pareto <span class="muted small">{version}</span>
            </div>
            {SCREENS.map((x) => (
              <button
                key={x.id}
                id={`nav-${x.id}`}
                class={screen === x.id ? "active" : ""}
                title={`Alt+${SCREENS.indexOf(x) + 1}`}
                aria-current={screen === x.id ? "page" : undefined}
                onClick={() => setScreen(x.id)}
              >
                {x.label}
                {x.id === "compare" && runs.length > 0 ? ` (${runs.length})` : ""}
              </button>
            ))}
            <div class="spacer" />
            <label class="small">
              Compute device
              <select id="compute-device" value={computeDevice} onChange={(e) => session.setComputeDevice((e.target as HTMLSelectElement).value)}>
                {devices.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.label}
                  </option>
                ))}
              </select>
            </label>
            {model && (
              <div class="small muted model-chip" title={model.summary.root}>
                {model.summary.root.split("/").filter(Boolean).pop()}
              </div>
            )}
          </nav>
          <main>
            <div hidden={screen !== "open"}>
              <OpenScreen />
            </div>
            <div hidden={screen !== "recipe"}>
              <RecipeScreen />
            </div>
            <div hidden={screen !== "run"}>
              <RunScreen />
            </div>
            <div hidden={screen !== "validate"}>
              <ValidateScreen />
            </div>
            <div hidden={screen !== "project"}>
              <ProjectScreen />
            </div>
            <div hidden={screen !== "compare"}>
              <CompareScreen />
            </div>
            <div hidden={screen !== "export"}>
              <ExportScreen />
            </div>
          </main>
        </div>
      </SessionContext.Provider>
    </ApiContext.Provider>
  );
}

/** Opens through `startOpenModel`, following its progress; null when the user cancelled. */
function openAsJob(
  api: Api,
  path: string,
  setStage: (u: StateUpdater<Stage | null>) => void,
  setJob: (id: number | null) => void,
): Promise<ModelView | null> {
  return new Promise((resolve, reject) => {
    api
      .startOpenModel(path, (e) => {
        if (trackStage(e, setStage)) return;
        if (e.kind === "opened") resolve(e.model);
        else if (e.kind === "failed") reject(new ApiFailure(e.error.message, e.error.causes));
        else if (e.kind === "cancelled") resolve(null);
      })
      .then(setJob, reject);
  });
}
