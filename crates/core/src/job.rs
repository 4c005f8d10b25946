//! The progress + cancellation contract shared by the CLI (indicatif), the app (a Tauri channel) and
//! tests (a null sink). Long work takes a `&JobContext` and checks `ctx.checkpoint()` between units of
//! work (tensors, batches), so a cancel takes effect within one unit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Receives progress events. Implementations must be cheap and thread-safe: kernels call them from
/// rayon workers.
pub trait Progress: Send + Sync {
    /// A new stage begins with `total` units of work (0 when unknown).
    fn stage(&self, name: &str, total: u64);
    /// `n` more units are done; `item` names the last one (e.g. a tensor).
    fn advance(&self, n: u64, item: &str);
    /// A human-readable line (warnings, fallbacks).
    fn log(&self, line: &str);
}

/// Discards every event: for tests and headless callers that do not care.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullProgress;

impl Progress for NullProgress {
    fn stage(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64, _item: &str) {}
    fn log(&self, _line: &str) {}
}

/// A cloneable flag; cancelling any clone cancels them all.
#[derive(Debug, Default, Clone)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a long-running job receives: where to report and how to learn it was cancelled.
#[derive(Clone)]
pub struct JobContext {
    pub progress: Arc<dyn Progress>,
    pub cancel: CancelToken,
}

impl JobContext {
    pub fn new(progress: Arc<dyn Progress>, cancel: CancelToken) -> Self {
        Self { progress, cancel }
    }

    /// A context that reports nowhere and is never cancelled.
    pub fn silent() -> Self {
        Self::new(Arc::new(NullProgress), CancelToken::new())
    }

    /// Returns `Error::Cancelled` once the token is set; call between units of work.
    pub fn checkpoint(&self) -> Result<()> {
        if self.cancel.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
    }
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").field("cancelled", &self.cancel.is_cancelled()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_is_seen_by_every_clone() {
        let ctx = JobContext::silent();
        let other = ctx.clone();
        assert!(ctx.checkpoint().is_ok());
        other.cancel.cancel();
        assert!(matches!(ctx.checkpoint(), Err(Error::Cancelled)));
    }
}
