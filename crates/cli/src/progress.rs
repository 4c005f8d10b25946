//! The CLI's implementation of the engine's progress contract: indicatif bars on stderr, and
//! Ctrl-C wired to the job's cancel token.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pareto_core::job::{CancelToken, JobContext, Progress};

struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        let Ok(mut slot) = self.bar.lock() else { return };
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let target = if crate::output::quiet() { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed_precise} {wide_msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        *slot = Some(bar);
    }

    fn advance(&self, n: u64, item: &str) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(n);
            bar.set_message(item.to_string());
        }
    }

    fn log(&self, line: &str) {
        // A bar drawn nowhere (stderr not a terminal) would swallow the line: notes still go out.
        match self.bar.lock().ok().and_then(|s| s.clone()) {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => crate::note!("{line}"),
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// A job context drawing progress bars on stderr. The first Ctrl-C (or SIGTERM, SIGHUP) cancels
/// the job cleanly: the engine stops between tensors and removes its partial output. A second one
/// exits at once, after removing the running jobs' temporary folders.
pub fn bar_context() -> JobContext {
    let cancel = CancelToken::new();
    let token = cancel.clone();
    // Only the first handler registration succeeds; later contexts share the process handler.
    let _ = ctrlc::set_handler(move || {
        if token.is_cancelled() {
            pareto_core::export::remove_live_temp_folders();
            std::process::exit(130);
        }
        eprintln!("\ncancelling… (Ctrl-C again to exit at once)");
        token.cancel();
    });
    JobContext::new(Arc::new(Bars { bar: Mutex::new(None) }), cancel)
}
