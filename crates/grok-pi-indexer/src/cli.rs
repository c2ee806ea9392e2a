//! The command line of grok-pi-indexer, defined once for `--help`, the man
//! page and shell completions. Flags and sub-commands are those of
//! grokmirror's next release; the options before the sub-command, as
//! there.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Initialise and index mirrored public-inbox archives, as grok-pull's
/// hooks.
///
/// A public-inbox v2 archive is mirrored as its epochs, `<inbox>/git/<N>.git`.
/// `init` (post_clone_complete_hook: the new clones' paths on standard
/// input) runs public-inbox-init for each inbox not initialised yet, with the
/// addresses, list id, newsgroup and description the origin publishes (its
/// `refs/meta/origins` file `i`, or `<origin>/<inbox>/_/text/config/raw`),
/// then public-inbox-index. `update` (post_update_hook: the epoch's path as
/// the last argument) indexes what a fetch brought. `extindex`
/// (post_work_complete_hook) updates the external indexes of every
/// `[extindex]` section. public-inbox 1.6 or later must be on PATH.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-pi-indexer", version = grokmirror_cli::VERSION, max_term_width = 100)]
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
#[command(subcommand_required = false)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// The public-inbox config file (PI_CONFIG of every public-inbox
    /// command run).
    #[arg(
        short = 'c',
        long = "pi-config",
        value_name = "PICONFIG",
        required = true
    )]
    pub pi_config: PathBuf,

    /// The mirror's top level: the repositories given must be below it.
    #[arg(
        short = 't',
        long = "toplevel",
        value_name = "TOPLEVEL",
        required = true
    )]
    pub toplevel: PathBuf,

    /// Where the public-inbox databases go when not beside the git
    /// repositories: `<PITOPLEVEL>/<inbox path>`, its `git` a symlink to
    /// the mirrored epochs.
    #[arg(short = 'p', long = "pi-toplevel", value_name = "PITOPLEVEL")]
    pub pi_toplevel: Option<PathBuf>,

    /// Also log into this file.
    #[arg(short = 'l', long = "logfile", value_name = "LOGFILE")]
    pub logfile: Option<PathBuf>,

    /// The index level of newly initialised inboxes and of extindex.
    #[arg(
        short = 'L',
        long = "indexlevel",
        value_name = "INDEXLEVEL",
        default_value = "full"
    )]
    pub indexlevel: IndexLevel,

    /// The --jobs given to public-inbox (0: no parallel indexing).
    #[arg(
        short = 'j',
        long = "jobs",
        value_name = "JOBS",
        value_parser = clap::value_parser!(u32).range(0..=4096)
    )]
    pub jobs: Option<u32>,

    /// Give --no-fsync to public-inbox (faster, but an index may need a
    /// rebuild after a power cut).
    #[arg(long = "no-fsync")]
    pub no_fsync: bool,

    /// --config-check, --json, --no-network.
    #[command(flatten)]
    pub check: grokmirror_cli::config_check::ConfigCheckFlags,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// public-inbox's index levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IndexLevel {
    /// Everything, positional queries included.
    Full,
    /// Search without positional data.
    Medium,
    /// No search index, only what HTTP, NNTP and IMAP need.
    Basic,
}

impl IndexLevel {
    /// The word public-inbox takes.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexLevel::Full => "full",
            IndexLevel::Medium => "medium",
            IndexLevel::Basic => "basic",
        }
    }
}

/// The sub-commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Initialise and index the inboxes of the repositories listed on
    /// standard input (post_clone_complete_hook), or INBOXDIR.
    Init(InitArgs),
    /// Index the inbox of REPO (post_update_hook).
    Update {
        /// The full path of an epoch, `.../<inbox>/git/<N>.git`.
        #[arg(value_name = "REPO")]
        repo: PathBuf,
    },
    /// Run public-inbox-extindex on every configured inbox
    /// (post_work_complete_hook).
    Extindex,
}

/// The flags of `init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The URL of the local mirror's top level, prefixed to each inbox's
    /// name in its `url` (leave empty when served from /).
    #[arg(long = "local-toplevel", value_name = "URL", default_value = "")]
    pub local_toplevel: String,

    /// Where an inbox whose epochs carry no `refs/meta/origins` has its
    /// config: `<URL>/<inbox>/_/text/config/raw` (empty: ask nobody and
    /// use defaults).
    #[arg(
        long = "origin-hostname",
        value_name = "URL",
        default_value = "https://lore.kernel.org/"
    )]
    pub origin_hostname: String,

    /// List-Id patterns, highest search boost first (comma-separated
    /// shell patterns).
    #[arg(
        long = "listid-priority",
        value_name = "PATTERNS",
        default_value = "*.linux.dev,*.kernel.org"
    )]
    pub listid_priority: String,

    /// Further config options taken from the origin's config
    /// (comma-separated; listid always is).
    #[arg(
        long = "extra-cfgopts",
        value_name = "OPTIONS",
        default_value = "indexheader,replyto"
    )]
    pub extra_cfgopts: String,

    /// Drop INBOXDIR's msgmap.sqlite3 and xap15 and initialise it again.
    #[arg(long = "force-reinit", requires = "inboxdir")]
    pub force_reinit: bool,

    /// An inbox (`.../<inbox>`, or one of its epochs) to initialise instead
    /// of those on standard input.
    #[arg(value_name = "INBOXDIR")]
    pub inboxdir: Option<PathBuf>,
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
    fn hook_lines_as_upstream_documents_them_parse() {
        let cli = Cli::try_parse_from([
            "grok-pi-indexer",
            "-c",
            "/etc/public-inbox/config",
            "-t",
            "/srv/lore",
            "update",
            "/srv/lore/lkml/git/0.git",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Update { .. })));
        assert_eq!(cli.indexlevel, IndexLevel::Full);
        let cli = Cli::try_parse_from([
            "grok-pi-indexer",
            "-c",
            "c",
            "-t",
            "t",
            "-L",
            "medium",
            "-j",
            "4",
            "--no-fsync",
            "init",
        ])
        .unwrap();
        let Some(Command::Init(init)) = cli.command else {
            panic!("init expected")
        };
        assert_eq!(init.origin_hostname, "https://lore.kernel.org/");
        assert_eq!(init.listid_priority, "*.linux.dev,*.kernel.org");
        assert_eq!(cli.jobs, Some(4));
        assert!(cli.no_fsync);
    }

    #[test]
    fn bad_values_are_refused() {
        let base = ["grok-pi-indexer", "-c", "c", "-t", "t"];
        for extra in [
            &["-L", "huge", "extindex"][..],
            &["-j", "-1", "extindex"],
            &["-j", "many", "extindex"],
            &["init", "--force-reinit"],
            &["update"],
        ] {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            assert!(Cli::try_parse_from(&args).is_err(), "{extra:?}");
        }
        assert!(Cli::try_parse_from(["grok-pi-indexer", "-t", "t", "extindex"]).is_err());
    }
}
