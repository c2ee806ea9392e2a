//! The command line of grok-publish, defined once for `--help`, the man
//! page and shell completions.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Publish a grokmirror tree to an S3-compatible bucket that git's dumb
/// HTTP protocol, CDNs and other replicas read.
///
/// Each REPO (a manifest path such as /pub/scm/git/git.git, or its full
/// path under the toplevel) is published to the bucket named by [publish]
/// bucket: the object files the bucket lacks first (and those of the
/// object storage it borrows from, with objects/info/http-alternates
/// pointing there), then objects/info/packs, then info/refs and HEAD, so a
/// reader never sees a ref whose objects are not there yet. Then the
/// manifest is uploaded, holding the repositories published so far, and,
/// with [publish] bundles, grok-bundle's files. Without REPO (and without
/// --stdin), the repositories of the local manifest that changed since they
/// were published go up; with --full every one is compared with the bucket
/// and what is missing goes up: the first upload, and repair.
///
/// Run it as grok-pull's post_work_complete_hook: it then publishes what
/// each batch of fetches changed, with no repository locked by grok-pull.
/// (Not as post_update_hook: grok-pull holds the repository's lock while
/// that hook runs, and grok-publish waits for it.)
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-publish", version = grokmirror_cli::VERSION, max_term_width = 100)]
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Config file ([core] and [publish]; [fsck] consumer_grace).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,

    /// Compare every repository of the manifest with the bucket and
    /// upload what is missing (the first upload, and repair). Without it,
    /// a run without REPO publishes the repositories whose recorded
    /// fingerprint differs from the one published, and sends nothing for
    /// the others.
    #[arg(long = "full", conflicts_with_all = ["repos", "stdin"])]
    pub full: bool,

    /// Also publish the repositories whose paths come on standard input,
    /// one per line (grok-pull's post_clone_complete_hook writes them so).
    #[arg(long = "stdin")]
    pub stdin: bool,

    /// How long to wait for a repository's lock (a fetch or repack in
    /// progress), and for another grok-publish to finish.
    #[arg(
        short = 'w',
        long = "wait",
        value_name = "DURATION",
        default_value = "10m",
        value_parser = grokmirror_cli::duration_flag
    )]
    pub wait: Duration,

    /// The repositories to publish; none (without --stdin) for all of them.
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
        let cli = Cli::try_parse_from(["grok-publish", "-c", "a.conf"]).unwrap();
        assert_eq!(cli.wait, Duration::from_secs(600));
        assert!(cli.repos.is_empty() && !cli.stdin && !cli.full);
        assert!(
            Cli::try_parse_from(["grok-publish", "-c", "a", "--full"])
                .unwrap()
                .full
        );
        assert!(Cli::try_parse_from(["grok-publish", "-c", "a", "--full", "/a.git"]).is_err());
        let cli = Cli::try_parse_from(["grok-publish", "-c", "a", "-w", "30", "--stdin", "/a.git"])
            .unwrap();
        assert_eq!(cli.wait, Duration::from_secs(30));
        assert_eq!(cli.repos, ["/a.git"]);
        assert!(cli.stdin);
        assert!(Cli::try_parse_from(["grok-publish"]).is_err());
        assert!(Cli::try_parse_from(["grok-publish", "-c", "a", "-w", "soon"]).is_err());
    }
}
