//! The command line of grok-snapshot, defined once for `--help`, the man
//! page and shell completions.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Take consistent, hard-linked snapshots of mirrored repositories for
/// consumers that clone from the mirror, and remove old ones.
///
/// Each REPO (a manifest path such as /pub/scm/git/git.git, or its full path
/// under the toplevel) gets OUTDIR/<manifest path>@<UTC time>: a bare
/// repository whose refs are those of the mirror at that moment and whose
/// objects are hard links to the mirror's packs and loose objects (its
/// object storage's included), so no object is copied and no later fetch,
/// repack or prune of the mirror can take one away from it. It is taken
/// under the repository's lock (and its object storage's), so no fetch or
/// repack is half-seen, and appears complete or not at all. The path of
/// each snapshot is printed on standard output, one per line.
///
/// OUTDIR must be on the mirror's file system and outside its toplevel; run
/// grok-snapshot as the user the mirror runs as.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-snapshot", version = grokmirror_cli::VERSION, max_term_width = 100)]
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Config file (the [core] section is used: toplevel, objstore, log,
    /// loglevel).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,

    /// Where the snapshots go (created if missing).
    #[arg(
        short = 'o',
        long = "outdir",
        value_name = "OUTDIR",
        required_unless_present = "config_check"
    )]
    pub outdir: Option<PathBuf>,

    /// Remove the snapshots under OUTDIR older than this (seconds, or with
    /// a unit: 90s, 30m, 12h, 7d), after taking the new ones. Without it
    /// nothing is removed.
    #[arg(short = 'k', long = "keep", value_name = "MAXAGE", value_parser = grokmirror_cli::duration_flag)]
    pub keep: Option<Duration>,

    /// How long to wait for a repository's lock (a fetch or repack in
    /// progress) before giving up on it.
    #[arg(
        short = 'w',
        long = "wait",
        value_name = "DURATION",
        default_value = "10m",
        value_parser = grokmirror_cli::duration_flag
    )]
    pub wait: Duration,

    /// The repositories to snapshot; none to only remove old snapshots.
    #[arg(value_name = "REPO")]
    pub repos: Vec<String>,

    /// --config-check, --json, --no-network.
    #[command(flatten)]
    pub check: grokmirror_cli::config_check::ConfigCheckFlags,
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
    fn values_and_defaults() {
        let cli = Cli::try_parse_from(["grok-snapshot", "-c", "a.conf", "-o", "snaps"]).unwrap();
        assert_eq!(cli.wait, Duration::from_secs(600));
        assert_eq!(cli.keep, None);
        assert!(cli.repos.is_empty());
        let cli = Cli::try_parse_from([
            "grok-snapshot",
            "-c",
            "a.conf",
            "-o",
            "snaps",
            "-k",
            "2d",
            "-w",
            "30",
            "/a.git",
            "/b/c.git",
        ])
        .unwrap();
        assert_eq!(cli.keep, Some(Duration::from_secs(2 * 86400)));
        assert_eq!(cli.wait, Duration::from_secs(30));
        assert_eq!(cli.repos, ["/a.git", "/b/c.git"]);
        assert!(
            Cli::try_parse_from(["grok-snapshot", "-c", "a", "-o", "b", "-k", "soon"]).is_err()
        );
        assert!(Cli::try_parse_from(["grok-snapshot", "-c", "a"]).is_err());
    }
}
