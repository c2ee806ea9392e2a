//! Progress of a full walk (kernel.org's tree takes minutes): a spinner
//! counting repositories when stderr is a terminal, otherwise a line in the
//! log every few seconds. The walk is parallel, so this is shared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

/// How often the log gets a line when there is no spinner.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The log line after `n` repositories.
pub fn line(n: usize) -> String {
    format!("   search: {n} repositories inspected so far")
}

/// Progress of the walk.
pub struct WalkProgress {
    bar: Option<ProgressBar>,
    count: AtomicUsize,
    next_line: Mutex<Instant>,
}

impl WalkProgress {
    /// Start; `terminal` shows a spinner (log lines print above it).
    pub fn new(terminal: bool) -> WalkProgress {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {pos} repositories [{elapsed_precise}] {wide_msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            let printer = bar.clone();
            grokmirror::logging::set_stderr_sink(Arc::new(move |l: &str| printer.println(l)));
            bar
        });
        WalkProgress {
            bar,
            count: AtomicUsize::new(0),
            next_line: Mutex::new(Instant::now() + LOG_EVERY),
        }
    }

    /// One more repository inspected (`what` is its path).
    pub fn one(&self, what: &str) {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(what.to_string());
            return;
        }
        let mut next = self.next_line.lock().expect("progress poisoned");
        let now = Instant::now();
        if now >= *next {
            *next = now + LOG_EVERY;
            info!("{}", line(n));
        }
    }
}

impl Drop for WalkProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            grokmirror::logging::clear_stderr_sink();
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts() {
        let p = super::WalkProgress::new(false);
        for _ in 0..3 {
            p.one("/x.git");
        }
        assert_eq!(p.count.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(super::line(3), "   search: 3 repositories inspected so far");
    }
}
