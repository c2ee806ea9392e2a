//! The command line of grok-manifest, defined once for `--help`, the man
//! page and shell completions.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The form of `--shard-map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShardMapFormat {
    /// Lines of an nginx `map` block (`"/path.git" K;`), for `include`.
    Nginx,
    /// An HAProxy map file (`/path.git K`), for an exact `map` lookup.
    Haproxy,
}

/// Create or update the manifest of a tree of bare git repositories.
///
/// With repository paths (as a post-receive hook does), only those
/// repositories are updated; without paths, or when the manifest is empty or
/// unreadable, the whole tree is walked and repositories that are gone are
/// dropped.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-manifest", version = grokmirror_cli::VERSION, max_term_width = 100)]
// A flag given twice takes its last value, as grokmirror's argparse does.
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Config file with at least a [core] section; flags given on the
    /// command line win over its values.
    #[arg(long = "cfgfile", value_name = "CFGFILE")]
    pub cfgfile: Option<PathBuf>,

    /// Manifest file to write (gzip-compressed when it ends in .gz).
    #[arg(short = 'm', long = "manifest", value_name = "MANIFILE")]
    pub manifest: Option<PathBuf>,

    /// Top directory under which all repositories live.
    #[arg(short = 't', long = "toplevel", value_name = "TOPLEVEL")]
    pub toplevel: Option<PathBuf>,

    /// Also write a log to this file (it survives logrotate).
    #[arg(short = 'l', long = "logfile", value_name = "LOGFILE")]
    pub logfile: Option<PathBuf>,

    /// Record the current time as "modified" instead of reading commit
    /// dates (faster in hooks; ignored while the manifest is empty).
    #[arg(short = 'n', long = "use-now")]
    pub use_now: bool,

    /// Only list repositories that contain a git-daemon-export-ok file.
    #[arg(short = 'c', long = "check-export-ok")]
    pub check_export_ok: bool,

    /// Walk the whole tree and drop repositories that no longer exist.
    #[arg(short = 'p', long = "purge")]
    pub purge: bool,

    /// Remove the given repositories (or symlinks) from the manifest.
    #[arg(short = 'x', long = "remove")]
    pub remove: bool,

    /// Write indented JSON with sorted keys (larger, easier to read).
    #[arg(short = 'y', long = "pretty")]
    pub pretty: bool,

    /// Skip paths matching this shell-style pattern while walking; may be
    /// given several times.
    #[arg(short = 'i', long = "ignore-paths", value_name = "IGNORE")]
    pub ignore_paths: Vec<String>,

    /// Leave refs matching this pattern (e.g. 'refs/meta/*') out of the
    /// fingerprint; may be given several times.
    #[arg(short = 'r', long = "ignore-refs", value_name = "IGNORE_REFS")]
    pub ignore_refs: Vec<String>,

    /// With paths: wait until the manifest exists (for several writers
    /// sharing one manifest).
    #[arg(short = 'w', long = "wait-for-manifest")]
    pub wait_for_manifest: bool,

    /// After updating the manifest, fetch new objects of the updated
    /// repositories into their object-storage repo.
    #[arg(short = 'o', long = "fetch-objstore")]
    pub fetch_objstore: bool,

    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Print the routing map of a mirror split into N shards ([pull]
    /// shard = K/N) and change nothing: for each repository of the
    /// manifest (-m, or [core] manifest), the shard K that holds it.
    #[arg(long = "shard-map", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=grokmirror::shard::MAX_SHARDS as i64),
          conflicts_with_all = ["paths", "remove", "purge"])]
    pub shard_map: Option<u32>,

    /// The form of --shard-map's output.
    #[arg(long = "shard-map-format", value_name = "FORMAT", value_enum,
          default_value_t = ShardMapFormat::Nginx, requires = "shard_map")]
    pub shard_map_format: ShardMapFormat,

    /// Repositories to update (full paths); none means the whole tree.
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,

    /// Check the config file and exit, changing nothing.
    ///
    /// No lock is taken. Checked: every option's value and the paths it names.
    /// One line per problem on standard output; exits 0 when there is none, 1
    /// for warnings only (an unknown option, say), 2 for errors.
    #[arg(long = "config-check", requires = "cfgfile")]
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
    fn a_repeated_flag_takes_its_last_value_and_lists_add_up() {
        let cli = Cli::try_parse_from([
            "grok-manifest",
            "-m",
            "a.js",
            "-t",
            "/a",
            "--cfgfile",
            "a.conf",
            "-l",
            "a.log",
            "-m",
            "b.js",
            "--toplevel",
            "/b",
            "--cfgfile",
            "b.conf",
            "-l",
            "b.log",
            "-n",
            "-n",
            "-i",
            "*/x/*",
            "-i",
            "*/y/*",
            "-r",
            "refs/meta/*",
            "-r",
            "refs/tmp/*",
            "/b/r.git",
        ])
        .unwrap();
        assert_eq!(cli.manifest, Some(PathBuf::from("b.js")));
        assert_eq!(cli.toplevel, Some(PathBuf::from("/b")));
        assert_eq!(cli.cfgfile, Some(PathBuf::from("b.conf")));
        assert_eq!(cli.logfile, Some(PathBuf::from("b.log")));
        assert!(cli.use_now);
        // -i and -r are lists in grokmirror too (argparse "append").
        assert_eq!(cli.ignore_paths, ["*/x/*", "*/y/*"]);
        assert_eq!(cli.ignore_refs, ["refs/meta/*", "refs/tmp/*"]);
        assert_eq!(cli.paths, [PathBuf::from("/b/r.git")]);
    }
}
