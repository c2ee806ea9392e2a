//! The command line of grok-fsck, defined once for `--help`, the man page
//! and shell completions.

use std::path::PathBuf;

use clap::Parser;

/// Repack, verify and repair the repositories of a grokmirror tree.
///
/// Each repository is checked every `[fsck] frequency` days (new ones on a
/// random day within that period), repacked when loose objects or packs
/// pile up, and verified with `git fsck`. Errors are logged, kept in the
/// repository's grokmirror.fsck.err, mailed to `[fsck] report_to`, and
/// errors listed in `reclone_on_errors` ask grok-pull to re-clone the
/// repository. Only one grok-fsck runs per tree at a time.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-fsck", version = grokmirror_cli::VERSION, max_term_width = 100)]
// A flag given twice takes its last value, as grokmirror's argparse does.
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Check every repository now, whatever its schedule.
    #[arg(short = 'f', long = "force")]
    pub force: bool,

    /// Config file (the [core] and [fsck] sections are used).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,

    /// Only repack repositories that need it; run no `git fsck`.
    #[arg(long = "repack-only")]
    pub repack_only: bool,

    /// Run `git fsck --connectivity-only` (much faster: checks that all
    /// objects are there and linked, not their contents).
    #[arg(long = "connectivity-only")]
    pub connectivity_only: bool,

    /// Quick-repack every repository that has loose objects (implies -f).
    #[arg(long = "repack-all-quick", conflicts_with = "repack_all_full")]
    pub repack_all_quick: bool,

    /// Fully repack every repository that has loose objects or more than
    /// one pack (implies -f).
    #[arg(long = "repack-all-full")]
    pub repack_all_full: bool,

    /// --config-check, --json, --no-network.
    #[command(flatten)]
    pub check: grokmirror_cli::config_check::ConfigCheckFlags,
}

impl Cli {
    /// Whether every repository is to be looked at now.
    pub fn forced(&self) -> bool {
        self.force || self.repack_all_quick || self.repack_all_full
    }
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
            "grok-fsck",
            "-c",
            "a.conf",
            "-f",
            "--config",
            "b.conf",
            "-f",
            "--repack-only",
            "--repack-only",
        ])
        .unwrap();
        assert_eq!(cli.config, PathBuf::from("b.conf"));
        assert!(cli.force && cli.repack_only);
    }

    #[test]
    fn config_is_required_and_repack_all_modes_conflict() {
        assert!(Cli::try_parse_from(["grok-fsck"]).is_err());
        let err = Cli::try_parse_from([
            "grok-fsck",
            "-c",
            "x.conf",
            "--repack-all-quick",
            "--repack-all-full",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli = Cli::try_parse_from(["grok-fsck", "-c", "x.conf", "--repack-all-full"]).unwrap();
        assert!(cli.forced());
    }
}
