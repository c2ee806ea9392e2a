//! The command line of grok-pull, defined once for `--help`, the man page
//! and shell completions.

use std::path::PathBuf;

use clap::Parser;

/// Create or update a mirror of a grokmirror origin's repository
/// collection.
///
/// Fetches the origin's manifest, clones repositories that are new, fetches
/// the ones whose refs changed, and (with purge) removes the ones the origin
/// no longer has. Exits 0 when everything succeeded, 1 when any repository
/// or the manifest failed (the next run retries it), 2 on usage or config
/// errors.
///
/// SIGTERM or SIGINT stops it cleanly: nothing new starts, running fetches
/// get `[pull] shutdown_grace` seconds to finish before they are killed,
/// the local manifest is written, and the exit status is 0 (1 if a
/// repository had already failed in a single run). A second signal stops
/// at once. SIGHUP reopens the log file.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-pull", version = grokmirror_cli::VERSION, max_term_width = 100)]
// A flag given twice takes its last value, as grokmirror's argparse does.
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
#[command(group(clap::ArgGroup::new("json_for").args(["status", "config_check"]).multiple(true)))]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Check every repository even if the remote manifest has not changed
    /// since the last run.
    #[arg(short = 'n', long = "no-mtime-check")]
    pub no_mtime_check: bool,

    /// Remove repositories that are no longer in the remote manifest (as
    /// `[pull] purge = yes` does).
    #[arg(short = 'p', long = "purge")]
    pub purge: bool,

    /// Purge even when more repositories would go than `[pull]
    /// purgeprotect` allows.
    #[arg(long = "force-purge")]
    pub force_purge: bool,

    /// Keep running: re-check the origin every `[pull] refresh` seconds,
    /// fetch what `[pull] socket` is told about at once, follow changes
    /// of a file:// manifest and of the config file (without `refresh` in
    /// the config, run once).
    #[arg(short = 'o', long = "continuous")]
    pub continuous: bool,

    /// Show how fresh the mirror is (last poll; repositories up to date,
    /// behind, stale, failing; what a running daemon does) and exit: 0 when
    /// all is fresh, 1 when something is stale or failing.
    #[arg(long = "status")]
    pub status: bool,

    /// With --status or --config-check: print it as JSON.
    #[arg(long = "json", requires = "json_for")]
    pub json: bool,

    /// Check the config file and exit, changing nothing.
    ///
    /// No lock is taken. Checked: every option's value, the paths it names, and
    /// (unless --no-network) that the origin's manifest answers within 5
    /// seconds. One line per problem on standard output; exits 0 when there is
    /// none, 1 for warnings only (an unknown option, an origin that does not
    /// answer), 2 for errors.
    #[arg(long = "config-check")]
    pub config_check: bool,

    /// With --config-check: do not contact the origin.
    #[arg(long = "no-network", requires = "config_check")]
    pub no_network: bool,

    /// The grokmirror config file.
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value() {
        let cli = Cli::try_parse_from([
            "grok-pull",
            "-c",
            "a.conf",
            "-v",
            "--config",
            "b.conf",
            "-v",
            "-p",
            "-p",
        ])
        .unwrap();
        assert_eq!(cli.config, PathBuf::from("b.conf"));
        assert!(cli.verbose && cli.purge);
    }
}
