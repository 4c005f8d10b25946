import { type StateUpdater, useState } from "preact/hooks";
import type { JobEvent } from "../api/types";

/** Where a job stands: its current stage and how far into it. */
export interface Stage {
  name: string;
  total: number;
  done: number;
}

/** Follows a job's stage and advance events; true when `e` was one of them. */
export function trackStage(e: JobEvent, setStage: (u: StateUpdater<Stage | null>) => void): boolean {
  if (e.kind === "stage") setStage({ name: e.name, total: e.total, done: 0 });
  else if (e.kind === "advance") setStage((p) => (p ? { ...p, done: e.done } : p));
  else return false;
  return true;
}

/** The progress bar of a running job; `idle` names what happens before the first stage. */
export function JobProgress({ stage, idle, id }: { stage: Stage | null; idle: string; id?: string }) {
  const known = stage !== null && stage.total > 0;
  return (
    <div class="progress-wrap">
      <div class="progress">
        <div class="bar" style={{ width: `${known ? (stage.done / stage.total) * 100 : 0}%` }} />
      </div>
      <span id={id}>
        {stage?.name ?? idle}
        {known ? `: ${stage.done} / ${stage.total}` : ""}
      </span>
    </div>
  );
}

/** A screen's background job: its id while it runs, its stage, and its error. `start` launches it with
 * the event handler; `onResult` takes the job's own final event (returns true when it did), a failure
 * becomes `err`, and `onCancelled` hears a cancel. */
export function useJob(onResult: (e: JobEvent) => boolean, onCancelled?: () => void) {
  const [job, setJob] = useState<number | null>(null);
  const [stage, setStage] = useState<Stage | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const start = async (launch: (onEvent: (e: JobEvent) => void) => Promise<number>) => {
    setErr(null);
    setStage(null);
    // A job can end before its id arrives (the final event and the command's reply travel
    // separately): then the id must not mark it running again.
    let ended = false;
    const onEvent = (e: JobEvent) => {
      if (trackStage(e, setStage)) return;
      if (onResult(e)) {
        ended = true;
        setJob(null);
      } else if (e.kind === "failed") {
        ended = true;
        setErr(e.error);
        setJob(null);
      } else if (e.kind === "cancelled") {
        ended = true;
        setStage(null);
        onCancelled?.();
        setJob(null);
      }
    };
    try {
      const id = await launch(onEvent);
      if (!ended) setJob(id);
    } catch (e) {
      setErr(e);
    }
  };
  return { job, stage, err, setErr, start };
}
