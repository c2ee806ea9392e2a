//! The command line of grok-dumb-pull, defined once for `--help`, the man
//! page and shell completions.

use std::path::PathBuf;

use clap::Parser;

/// Fetch the remotes of bare git repositories that no manifest manages.
///
/// Each path ending in `.git` is one repository; any other path is searched
/// for bare repositories (object-storage repositories are skipped, found
/// repositories are not descended into). In each repository every remote
/// matching a `-r` pattern (all of them by default) is updated with
/// `git remote update NAME --prune`. When refs changed, the repository's
/// `grokmirror.fingerprint` is rewritten, its new objects are fetched into
/// its object-storage repository if it uses one, and the post-update hook
/// runs with the repository's path as its only argument. A repository whose
/// grokmirror lock is held is skipped.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-dumb-pull", version = grokmirror_cli::VERSION, max_term_width = 100)]
// A flag given twice takes its last value, as grokmirror's argparse does.
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// The remotes are Subversion repositories: run `git svn fetch` instead
    /// of `git remote update` (needs git-svn for the git in use).
    #[arg(short = 's', long = "svn")]
    pub svn: bool,

    /// Only fetch remotes whose name matches this shell-style pattern; may
    /// be given several times (default: every remote).
    #[arg(short = 'r', long = "remote-names", value_name = "REMOTES")]
    pub remote_names: Vec<String>,

    /// Run this executable after each repository whose refs changed, with
    /// the repository's full path as its argument.
    #[arg(short = 'u', long = "post-update-hook", value_name = "POSTHOOK")]
    pub post_update_hook: Option<PathBuf>,

    /// Also write a log to this file (it survives logrotate).
    #[arg(short = 'l', long = "logfile", value_name = "LOGFILE")]
    pub logfile: Option<PathBuf>,

    /// Repositories (paths ending in .git) or directories to search for them.
    #[arg(value_name = "PATHS", required = true)]
    pub paths: Vec<PathBuf>,

    /// Check the arguments and exit, changing nothing.
    ///
    /// grok-dumb-pull reads no config file, so its arguments are checked: each
    /// path is a repository or a directory of them, the hook is an executable
    /// program, the log file can be written. One line per problem on standard
    /// output; exits 0 when there is none, 1 for warnings only, 2 for errors.
    #[arg(long = "config-check")]
    pub config_check: bool,

    /// With --config-check: print the problems as one JSON document.
    #[arg(long = "json", requires = "config_check")]
    pub json: bool,

    /// With --config-check: contact nothing over the network (accepted
    /// by every program; this one has nothing to contact).
    #[arg(long = "no-network", requires = "config_check")]
    pub no_network: bool,
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
    fn remote_patterns_add_up_and_paths_are_required() {
        let cli = Cli::try_parse_from([
            "grok-dumb-pull",
            "-r",
            "origin",
            "--remote-names",
            "up*",
            "-u",
            "/bin/a",
            "-u",
            "/bin/b",
            "/srv/a.git",
            "/srv/tree",
        ])
        .unwrap();
        assert_eq!(cli.remote_names, ["origin", "up*"]);
        assert_eq!(cli.post_update_hook, Some(PathBuf::from("/bin/b")));
        assert_eq!(cli.paths.len(), 2);
        assert!(Cli::try_parse_from(["grok-dumb-pull", "-v"]).is_err());
    }
}
