//! `grok-publish --config-check`: the options grok-publish reads, the
//! paths they name, and the settings as a run resolves them (the bucket
//! URL, the endpoint, the grace, credentials found). Nothing is sent to
//! the bucket and nothing is written.

use grokmirror::config::Config;

use crate::cli::Cli;
use crate::settings::{self, Settings};

/// Check the config, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    let (_, problems) =
        grokmirror_cli::config_check::config_problems("grok-publish", &cli.config, || {
            let config = Config::load(&cli.config)?;
            let s = Settings::from_config(&config)?;
            settings::credentials(&s.profile, &settings::credentials_file())?;
            Ok(())
        });
    grokmirror_cli::config_check::report("grok-publish", &cli.config, &problems, cli.check.json)
}
