//! Progress over a channel: the engine's `Progress` trait turned into [`JobEvent`]s. Advances are
//! batched (at most one event per ~30 ms, plus one at every stage change and at the end) so a model
//! with thousands of tensors does not flood the webview.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pareto_core::job::{JobContext, Progress};

use crate::dto::{ApiError, ApiResult, JobEvent, from_std};
use crate::state::AppState;

/// Where job events go: a Tauri channel in the app, a vector in tests.
pub type Sink = Arc<dyn Fn(JobEvent) + Send + Sync>;

const BATCH: Duration = Duration::from_millis(30);

/// Runs `work` as a new job of `state` on a worker thread named `{kind}-{id}` and returns the id at
/// once. Progress streams to `sink` while it runs; then comes one last event: `work`'s, or
/// `Cancelled` when it failed after the job was cancelled, else `Failed` with its error.
pub fn spawn(
    state: &Arc<AppState>,
    kind: &str,
    sink: Sink,
    work: impl FnOnce(&JobContext) -> Result<JobEvent, ApiError> + Send + 'static,
) -> ApiResult<u32> {
    let (id, cancel) = state.new_job();
    let state = Arc::clone(state);
    std::thread::Builder::new()
        .name(format!("{kind}-{id}"))
        .spawn(move || {
            let progress = Arc::new(ChannelProgress::new(Arc::clone(&sink)));
            let ctx = JobContext::new(progress.clone(), cancel.clone());
            let result = work(&ctx);
            progress.flush();
            state.finish_job(id);
            sink(match result {
                Ok(event) => event,
                Err(_) if cancel.is_cancelled() => JobEvent::Cancelled,
                Err(error) => JobEvent::Failed { error },
            });
        })
        .map_err(|e| from_std(&e).context("could not start a worker thread"))?;
    Ok(id)
}

struct Pending {
    done: u64,
    items: Vec<String>,
    last_sent: Instant,
}

pub struct ChannelProgress {
    sink: Sink,
    pending: Mutex<Pending>,
}

impl ChannelProgress {
    pub fn new(sink: Sink) -> Self {
        ChannelProgress { sink, pending: Mutex::new(Pending { done: 0, items: Vec::new(), last_sent: Instant::now() }) }
    }

    /// Sends any advances not yet sent.
    pub fn flush(&self) {
        let event = {
            let Ok(mut p) = self.pending.lock() else { return };
            if p.items.is_empty() {
                return;
            }
            p.last_sent = Instant::now();
            JobEvent::Advance { done: p.done, items: std::mem::take(&mut p.items) }
        };
        (self.sink)(event);
    }
}

impl Progress for ChannelProgress {
    fn stage(&self, name: &str, total: u64) {
        self.flush();
        if let Ok(mut p) = self.pending.lock() {
            p.done = 0;
        }
        (self.sink)(JobEvent::Stage { name: name.to_string(), total });
    }

    fn advance(&self, n: u64, item: &str) {
        let event = {
            let Ok(mut p) = self.pending.lock() else { return };
            p.done = p.done.saturating_add(n);
            p.items.push(item.to_string());
            if p.last_sent.elapsed() < BATCH {
                return;
            }
            p.last_sent = Instant::now();
            JobEvent::Advance { done: p.done, items: std::mem::take(&mut p.items) }
        };
        (self.sink)(event);
    }

    fn log(&self, line: &str) {
        self.flush();
        (self.sink)(JobEvent::Log { line: line.to_string() });
    }
}
