//! The command line of grok-pi-piper, defined once for `--help`, the man
//! page and shell completions.

use std::path::PathBuf;

use clap::Parser;

/// Pipe new messages of a mirrored public-inbox repository to a command.
///
/// Meant as grok-pull's post_update_hook (`post_update_hook =
/// /usr/bin/grok-pi-piper -c ~/.config/pi-piper.conf`; grok-pull adds the
/// repository path). Each new commit on `master` of a public-inbox epoch
/// (`<inbox>/git/<N>.git`) holds one message in its file `m`; each is piped,
/// oldest first, to the config's `pipe` command. The last piped commit is
/// kept in the repository's `pi-piper.latest`, the file grokmirror uses, so
/// nothing is piped twice. The first run only records where the archive
/// stands and pipes nothing.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-pi-piper", version = grokmirror_cli::VERSION, max_term_width = 100)]
// A flag given twice takes its last value, as grokmirror's argparse does.
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Only show what would be piped; pipe nothing, change nothing.
    #[arg(short = 'd', long = "dry-run")]
    pub dry_run: bool,

    /// The pi-piper config file: a section per inbox name (or DEFAULT) with
    /// `pipe`, and optionally `log`, `loglevel` and `shallow`.
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,

    /// Pipe the last NN messages on master whatever was piped before, then
    /// carry on tracking from the newest.
    #[arg(short = 'l', long = "pipe-last", value_name = "PIPELAST")]
    pub pipe_last: Option<u64>,

    /// Full path of the public-inbox repository (`.../<inbox>/git/<N>.git`).
    /// With --config-check, optional: the section that applies to it is
    /// also read as a run would read it.
    #[arg(value_name = "REPO", required_unless_present = "config_check")]
    pub repo: Option<PathBuf>,

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
    fn config_is_required_and_pipe_last_is_a_number() {
        assert!(Cli::try_parse_from(["grok-pi-piper", "/x/git/0.git"]).is_err());
        assert!(Cli::try_parse_from(["grok-pi-piper", "-c", "c", "-l", "x", "/r"]).is_err());
        let cli =
            Cli::try_parse_from(["grok-pi-piper", "-c", "a", "-c", "b", "-l", "3", "/r"]).unwrap();
        assert_eq!(cli.config, PathBuf::from("b"));
        assert_eq!(cli.pipe_last, Some(3));
    }
}
