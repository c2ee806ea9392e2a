//! `grok-manifest --config-check`: the options of `--cfgfile` grok-manifest
//! reads, the paths they name, and grok-manifest's own settings (flags
//! and config combined, as a run combines them). No lock, nothing written.

use grokmirror_cli::config_check;

use crate::cli::Cli;
use crate::settings::Settings;

/// Check the config, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    // clap makes --config-check require --cfgfile.
    let file = cli.cfgfile.clone().unwrap_or_default();
    let (_, problems) = config_check::config_problems("grok-manifest", &file, || {
        Settings::from_cli(cli)?;
        Ok(())
    });
    config_check::report("grok-manifest", &file, &problems, cli.json)
}
