//! TEMPORARY stand-in for `pareto_core::job` while pareto-core does not compile; same API subset.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub trait Progress: Send + Sync {
    fn stage(&self, name: &str, total: u64);
    fn advance(&self, n: u64, item: &str);
    fn log(&self, line: &str);
}

#[derive(Debug, Default, Clone, Copy)]
pub struct NullProgress;

impl Progress for NullProgress {
    fn stage(&self, _name: &str, _total: u64) {}
    fn advance(&self, _n: u64, _item: &str) {}
    fn log(&self, _line: &str) {}
}

#[derive(Debug, Default, Clone)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct JobContext {
    pub progress: Arc<dyn Progress>,
    pub cancel: CancelToken,
}

impl JobContext {
    pub fn silent() -> Self {
        Self { progress: Arc::new(NullProgress), cancel: CancelToken::default() }
    }
}
