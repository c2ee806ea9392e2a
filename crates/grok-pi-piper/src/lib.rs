//! grok-pi-piper: pipe new messages of mirrored public-inbox archives to a
//! command, compatible with grokmirror 2.x's `grok-pi-piper`.
//!
//! Same config file, same flags, and the same record of what was piped
//! (`pi-piper.latest` in the repository: the id of the last commit piped,
//! no newline), so a mirror can switch between the reference and this
//! program in either direction without a message piped twice.

#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod settings;
mod work;

use clap::Parser;

pub use cli::Cli;
pub use settings::PiperSettings;
pub use work::{Piper, STATE_FILE};

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-pi-piper", || run(&cli))
}

/// Run with parsed flags; `Ok` carries the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    // Present: clap requires it unless --config-check.
    let repo = cli.repo.clone().unwrap_or_default();
    let settings = PiperSettings::load(&cli.config, &repo)
        .map_err(|e| grokmirror_cli::usage(e.to_string()))?;
    let Some(pipe) = settings.pipe.clone() else {
        // `pipe = None` switches an inbox off.
        return Ok(grokmirror_cli::EXIT_OK);
    };
    let _log =
        grokmirror_cli::init_logging("pull", cli.verbose, settings.log.clone(), settings.loglevel)?;
    let piper = Piper {
        git: grokmirror::git::Git::from_env(),
        repo: grokmirror::tree::fsutil::absolute(&repo),
        command: pipe,
        dry_run: cli.dry_run,
        shallow: settings.shallow,
        pipe_last: cli.pipe_last.filter(|&n| n > 0),
    };
    piper.run()
}
