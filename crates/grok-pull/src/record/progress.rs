//! Progress of a single run (an initial mirror takes hours): a bar when
//! stderr is a terminal, otherwise a line in the log every few seconds
//! while repositories are being worked on.

use std::time::Instant;

use grokmirror_cli::progress::{TerminalBar, LOG_EVERY};
use tracing::info;

/// The progress line for the log.
pub fn line(done: usize, total: usize, failed: usize, active: &[String]) -> String {
    let mut l = format!("progress: {done}/{total} repositories done");
    if failed > 0 {
        l.push_str(&format!(", {failed} failed"));
    }
    if !active.is_empty() {
        let shown: Vec<&str> = active.iter().take(3).map(String::as_str).collect();
        l.push_str(&format!(", working on {}", shown.join(" ")));
        if active.len() > shown.len() {
            l.push_str(&format!(" and {} more", active.len() - shown.len()));
        }
    }
    l
}

/// The bar: count, total, time, and what was last worked on.
const BAR_TEMPLATE: &str = "{bar:30} {pos}/{len} [{elapsed_precise}] {wide_msg}";

/// Progress over the planned jobs.
pub struct Progress {
    bar: Option<TerminalBar>,
    total: usize,
    done: usize,
    failed: usize,
    next_line: Instant,
}

impl Progress {
    /// Track `total` jobs; `terminal` shows a bar (log lines print above it).
    pub fn new(total: usize, terminal: bool) -> Progress {
        let bar = terminal.then(|| TerminalBar::new(Some(total as u64), BAR_TEMPLATE));
        Progress {
            bar,
            total,
            done: 0,
            failed: 0,
            next_line: Instant::now() + LOG_EVERY,
        }
    }

    /// More jobs were planned.
    pub fn add(&mut self, n: usize) {
        self.total += n;
        if let Some(bar) = &self.bar {
            bar.set_length(self.total as u64);
        }
    }

    /// A job finished.
    pub fn finish_one(&mut self, key: &str, failed: bool) {
        self.done += 1;
        self.failed += usize::from(failed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(key.to_string());
        }
    }

    /// When the next log line is due (`None` with a bar).
    pub fn next_line(&self) -> Option<Instant> {
        self.bar.is_none().then_some(self.next_line)
    }

    /// Log a line if one is due, naming what is being worked on.
    pub fn tick(&mut self, now: Instant, active: &[String]) {
        if self.bar.is_some() || now < self.next_line {
            return;
        }
        self.next_line = now + LOG_EVERY;
        info!("   {}", line(self.done, self.total, self.failed, active));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(line(1, 5, 0, &[]), "progress: 1/5 repositories done");
        let active: Vec<String> = ["/a", "/b", "/c", "/d"].map(String::from).to_vec();
        assert_eq!(
            line(2, 9, 1, &active),
            "progress: 2/9 repositories done, 1 failed, working on /a /b /c and 1 more"
        );
    }
}
