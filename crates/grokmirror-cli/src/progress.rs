//! A progress bar on a terminal's stderr, shared by the programs: log lines
//! go above it while it is shown (through the logging's stderr sink), and
//! it is cleared when dropped. Without a terminal the programs write a
//! progress line to the log every [`LOG_EVERY`] instead.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the log gets a progress line when there is no bar.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// A bar (or, without a length, a spinner) drawn on stderr.
pub struct TerminalBar {
    bar: ProgressBar,
}

impl TerminalBar {
    /// Show a bar of `len` steps (`None`: a spinner) drawn with `template`
    /// (indicatif's syntax); from now on log lines print above it.
    pub fn new(len: Option<u64>, template: &str) -> TerminalBar {
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(250));
        let printer = bar.clone();
        grokmirror_cli::logging::set_stderr_sink(Arc::new(move |line: &str| printer.println(line)));
        TerminalBar { bar }
    }
}

impl Deref for TerminalBar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.bar
    }
}

impl Drop for TerminalBar {
    fn drop(&mut self) {
        grokmirror_cli::logging::clear_stderr_sink();
        self.bar.finish_and_clear();
    }
}
