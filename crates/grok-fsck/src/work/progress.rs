//! Progress over the repositories being worked on: a bar when stderr is a
//! terminal, otherwise a log line every few seconds.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use grokmirror_cli::progress::{TerminalBar, LOG_EVERY};
use tracing::info;

/// The bar: count, total, time, and what is being worked on.
const BAR_TEMPLATE: &str = "{bar:30} {pos}/{len} [{elapsed_precise}] {wide_msg}";

/// Progress of the processing phase.
pub struct Progress {
    bar: Option<TerminalBar>,
    total: usize,
    done: AtomicUsize,
    saved_kib: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Track `total` repositories; `terminal` shows a bar (the log keeps
    /// its lines, printed above the bar).
    pub fn new(total: usize, terminal: bool) -> Progress {
        let bar = terminal.then(|| TerminalBar::new(Some(total as u64), BAR_TEMPLATE));
        Progress {
            bar,
            total,
            done: AtomicUsize::new(0),
            saved_kib: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// A repository is being started.
    pub fn start(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
        }
    }

    /// A repository is finished; `saved_kib` is the space its work freed.
    pub fn finish_one(&self, saved_kib: u64) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let saved = self.saved_kib.fetch_add(saved_kib, Ordering::SeqCst) + saved_kib;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let mut last = self.last_line.lock().expect("progress poisoned");
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            let left = self.total.saturating_sub(done);
            if saved > 0 {
                info!(
                    "      ---: {done} done, {left} queued, {} saved",
                    human_size(saved)
                );
            } else {
                info!("      ---: {done} done, {left} queued");
            }
        }
    }

    /// Space freed so far (KiB).
    pub fn saved_kib(&self) -> u64 {
        self.saved_kib.load(Ordering::SeqCst)
    }

    /// Repositories finished so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }
}

/// A size in KiB for humans (`1.50 MiB`).
pub fn human_size(kib: u64) -> String {
    let mut n = kib as f64;
    for unit in ["KiB", "MiB", "GiB"] {
        if n < 1024.0 {
            return format!("{n:.2} {unit}");
        }
        n /= 1024.0;
    }
    format!("{n:.2} TiB")
}

/// A periodic "still working" line for long loops without a bar.
pub struct Ticker {
    last: Instant,
}

impl Ticker {
    /// Start now.
    pub fn new() -> Ticker {
        Ticker {
            last: Instant::now(),
        }
    }

    /// Whether another line is due (every few seconds).
    pub fn due(&mut self) -> bool {
        if self.last.elapsed() >= LOG_EVERY {
            self.last = Instant::now();
            true
        } else {
            false
        }
    }
}

impl Default for Ticker {
    fn default() -> Self {
        Ticker::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(11), "11.00 KiB");
        assert_eq!(human_size(1536), "1.50 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.00 TiB");
    }
}
