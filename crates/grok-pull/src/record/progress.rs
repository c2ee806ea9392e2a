//! Progress of a single run (an initial mirror takes hours): a bar when
//! stderr is a terminal, otherwise a line in the log every few seconds
//! while repositories are being worked on.

use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration};

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
/// What the log line adds to [`line()`]: the bytes received so far and, once
/// something is done, about how long the rest will take at this pace.
pub fn received_and_left(received: u64, elapsed: Duration, done: usize, total: usize) -> String {
    let mut out = format!(", {} received", HumanBytes(received));
    if done > 0 && done < total {
        let left = elapsed.mul_f64((total - done) as f64 / done as f64);
        out.push_str(&format!(", about {} left", HumanDuration(left)));
    }
    out
}

const BAR_TEMPLATE: &str =
    "{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {prefix} received {wide_msg}";

/// Progress over the planned jobs.
pub struct Progress {
    bar: Option<TerminalBar>,
    total: usize,
    done: usize,
    failed: usize,
    received: u64,
    started: Instant,
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
            received: 0,
            started: Instant::now(),
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
    pub fn finish_one(&mut self, key: &str, failed: bool, received_bytes: u64) {
        self.done += 1;
        self.failed += usize::from(failed);
        self.received += received_bytes;
        if let Some(bar) = &self.bar {
            bar.set_prefix(HumanBytes(self.received).to_string());
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
        let mut text = line(self.done, self.total, self.failed, active);
        text.push_str(&received_and_left(
            self.received,
            now.duration_since(self.started),
            self.done,
            self.total,
        ));
        info!("   {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_tells_bytes_and_time_left() {
        assert_eq!(
            received_and_left(0, Duration::from_secs(5), 0, 10),
            ", 0 B received"
        );
        assert_eq!(
            received_and_left(3 * 1024 * 1024, Duration::from_secs(60), 2, 6),
            ", 3.00 MiB received, about 2 minutes left"
        );
        assert_eq!(
            received_and_left(1024, Duration::from_secs(60), 6, 6),
            ", 1.00 KiB received"
        );
    }

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
