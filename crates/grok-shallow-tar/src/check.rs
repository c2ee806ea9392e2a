//! `grok-shallow-tar --config-check`: the `[core]` options grok-shallow-tar
//! reads, the paths they name, the config as a run loads it, and `-o` when
//! given. No lock, nothing written.

use crate::cli::Cli;

/// Check the config (and `-o`), print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    grokmirror_cli::config_check::check_core_and_outdir(
        "grok-shallow-tar",
        &cli.config,
        cli.outdir.as_deref(),
        cli.check.json,
    )
}
