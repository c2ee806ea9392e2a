//! `grok-fsck --config-check`: the options grok-fsck reads, the paths they
//! name, and grok-fsck's own settings parser on the file (so what passes
//! is what a run accepts). No lock (not even the tree's), nothing written.

use grokmirror::config::Config;
use grokmirror_cli::config_check;

use crate::cli::Cli;
use crate::settings::Settings;

/// Check the config, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    let (_, problems) = config_check::config_problems("grok-fsck", &cli.config, || {
        Settings::from_config(&Config::load(&cli.config)?, &cli.config)?;
        Ok(())
    });
    config_check::report("grok-fsck", &cli.config, &problems, cli.json)
}
