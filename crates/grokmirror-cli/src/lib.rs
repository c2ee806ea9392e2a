//! What the `grok-*` programs share at the command-line edge: how an error
//! becomes one line on stderr and an exit status, the version string, and
//! logging set-up from flags and config, the progress bar, and Ctrl-C
//! ([`interrupt`]).

pub mod config_check;
pub mod interrupt;
pub mod logging;
pub mod progress;

use std::fmt;
use std::path::PathBuf;

use grokmirror::config::{self, LogLevel};
use logging::{LogHandle, LogSettings};

/// The layout of every program's `--help`: it starts with `usage:`, as
/// grokmirror's argparse help does (scripts and operators grep for it),
/// then the description and the flags.
pub const HELP_TEMPLATE: &str =
    "usage: {usage}\n\n{before-help}{about-with-newline}\n{all-args}{after-help}";

/// Exit status of a run where everything succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit status when the run did its work but something failed (a repo could
/// not be fetched, a manifest could not be read, ...); details are logged.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for bad usage: unknown flags, a broken or missing config
/// file, paths that are not what they should be.
pub const EXIT_USAGE: i32 = 2;

/// The version line every program prints for `--version`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (drop-in for grokmirror 2.0.12)"
);

/// An error in how the program was invoked or configured (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Build a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// A flag's duration (`-w 30`, `-k 7d`): seconds, or numbers with `s m h
/// d w`; clap's `value_parser` for every such flag.
pub fn duration_flag(text: &str) -> Result<std::time::Duration, String> {
    grokmirror::formats::freshness::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration (use seconds, or 90s, 30m, 12h, 7d)"))
}

/// Whether an error is the operator's to fix in flags or config.
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<UsageError>() || e.is::<config::Error>())
}

/// Turn a program's result into its exit status, printing a failure as one
/// line: `grok-pull: error: <what failed>: <why>`.
pub fn finish(program: &str, result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{program}: error: {err:#}");
            if is_usage(&err) {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// Set up logging to stderr and, when given, a log file.
pub fn init_logging(
    program: &str,
    verbose: bool,
    file: Option<PathBuf>,
    file_level: LogLevel,
) -> anyhow::Result<LogHandle> {
    let settings = LogSettings {
        program: program.to_string(),
        verbose,
        file,
        file_level,
    };
    logging::init(&settings).map_err(|e| usage(e.to_string()))
}

/// Report a panic (always a bug) as one line on stderr and in the log,
/// instead of Rust's default text that asks for `RUST_BACKTRACE`.
/// It is installed for the whole process: a panic on any thread (a tokio
/// task's or a worker's too) is reported this way.
pub fn install_panic_hook(program: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let line = panic_line(program, info.payload(), info.location());
        // With logging set up, the logger prints errors on stderr and into
        // the log file; before that, stderr is all there is.
        if tracing::dispatcher::has_been_set() {
            tracing::error!("{line}");
        } else {
            eprintln!("{line}");
        }
    }));
}

/// The line a panic is reported with: what the panic said (its payload,
/// when it is text) and where.
fn panic_line(
    program: &str,
    payload: &(dyn std::any::Any + Send),
    location: Option<&std::panic::Location<'_>>,
) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    let at = location
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    format!("{program}: internal error: {what}{at}; this is a bug, please report it with the log")
}

/// Run a program's body: panics are reported as one line (see
/// [`install_panic_hook`]) and become exit status 1, errors become one line
/// and status 1 or 2 (see [`finish`]).
pub fn run_main(program: &'static str, body: impl FnOnce() -> anyhow::Result<i32>) -> i32 {
    install_panic_hook(program);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => finish(program, result),
        Err(_) => EXIT_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        assert_eq!(run_main("t", || Ok(0)), EXIT_OK);
        assert_eq!(run_main("t", || Err(usage("bad flag"))), EXIT_USAGE);
        assert_eq!(
            run_main("t", || Err(anyhow::anyhow!("disk full"))),
            EXIT_FAILURE
        );
        assert_eq!(run_main("t", || panic!("a bug")), EXIT_FAILURE);
        let _ = std::panic::take_hook();
    }

    #[test]
    fn a_panic_is_one_line_with_the_program_and_the_place() {
        let here = std::panic::Location::caller();
        let line = panic_line("grok-pull", &"index out of bounds", Some(here));
        assert_eq!(
            line,
            format!(
                "grok-pull: internal error: index out of bounds at {}:{}; this is a bug, please report it with the log",
                here.file(),
                here.line()
            )
        );
        let formatted: Box<dyn std::any::Any + Send> = Box::new(format!("bad {}", 7));
        assert_eq!(
            panic_line("t", formatted.as_ref(), None),
            "t: internal error: bad 7; this is a bug, please report it with the log"
        );
        assert!(panic_line("t", &42u8, None).contains("unknown panic"));
    }
}
