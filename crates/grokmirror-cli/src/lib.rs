//! What the `grok-*` programs share at the command-line edge: how an error
//! becomes one line on stderr and an exit status, the version string, and
//! logging set-up from flags and config.

use std::fmt;
use std::path::PathBuf;

use grokmirror::config::{ConfigError, LogLevel};
use grokmirror::logging::{self, LogHandle, LogSettings};
pub use grokmirror::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

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

/// Whether an error is the operator's to fix in flags or config.
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<UsageError>() || e.is::<ConfigError>())
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
