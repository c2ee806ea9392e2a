//! `grok-bundle --config-check`: the `[core]` options grok-bundle reads,
//! the paths they name, the config as a run loads it, and `-o` when given.
//! No lock, nothing written.

use grokmirror::config::options::PathUse;
use grokmirror::config::Config;
use grokmirror_cli::config_check;

use crate::cli::Cli;

/// Check the config (and `-o`), print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    let (_, mut problems) = config_check::config_problems("grok-bundle", &cli.config, || {
        Config::load(&cli.config)?;
        Ok(())
    });
    if let Some(outdir) = &cli.outdir {
        problems.extend(config_check::flag_problem(
            "--outdir",
            outdir,
            PathUse::DirOrCreatable,
        ));
    }
    config_check::report("grok-bundle", &cli.config, &problems, cli.json)
}
