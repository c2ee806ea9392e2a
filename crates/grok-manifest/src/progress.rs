//! Progress of a full walk (kernel.org's tree takes minutes): on a terminal
//! a bar against the number of repositories the manifest listed before
//! (which gives an ETA; the bar grows when the tree has more), or a spinner
//! counting them when there was no manifest; otherwise a line in the log
//! every few seconds. The walk is parallel, so this is shared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use grokmirror_cli::progress::{TerminalBar, LOG_EVERY};
use tracing::info;

/// The log line after `n` repositories.
pub fn line(n: usize) -> String {
    format!("   search: {n} repositories inspected so far")
}

/// Progress of the walk.
pub struct WalkProgress {
    bar: Option<TerminalBar>,
    count: AtomicUsize,
    next_line: Mutex<Instant>,
}

impl WalkProgress {
    /// Start; `terminal` shows a bar (log lines print above it) against
    /// `expected` repositories, or a spinner when that is 0.
    pub fn new(terminal: bool, expected: usize) -> WalkProgress {
        let bar = terminal.then(|| match expected {
            0 => TerminalBar::new(
                None,
                "{spinner} {pos} repositories [{elapsed_precise}] {wide_msg}",
            ),
            n => TerminalBar::new(
                Some(n as u64),
                "{bar:30} {pos}/{len} repositories [{elapsed_precise}, ETA {eta}] {wide_msg}",
            ),
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
            if bar.length().is_some_and(|len| n as u64 > len) {
                bar.set_length(n as u64);
            }
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

#[cfg(test)]
mod tests {
    #[test]
    fn counts() {
        let p = super::WalkProgress::new(false, 0);
        for _ in 0..3 {
            p.one("/x.git");
        }
        assert_eq!(p.count.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(super::line(3), "   search: 3 repositories inspected so far");
    }
}
