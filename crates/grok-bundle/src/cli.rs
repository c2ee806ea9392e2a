//! The command line of grok-bundle, defined once for `--help`, the man page
//! and shell completions.

use std::path::PathBuf;

use clap::Parser;

/// Write clone.bundle files (for Android's `repo`, and for
/// `git clone --bundle-uri`) for the repositories of a grokmirror tree.
///
/// Repositories are taken from the manifest named in the config's [core]
/// section and found under its toplevel. Each gets
/// OUTDIR/<path without .git>/clone.bundle, rebuilt only when the
/// repository's refs changed since the last bundle (their fingerprint is
/// kept beside it, in .fingerprint), and a bundle list (bundle-list) that
/// `git clone --bundle-uri=<URL of bundle-list>` reads.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-bundle", version = grokmirror_cli::VERSION, max_term_width = 100)]
// A flag given twice takes its last value, as grokmirror's argparse does.
#[command(args_override_self = true, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Config file (the [core] section is used: toplevel, manifest, log,
    /// loglevel).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,

    /// Where to write the bundles (created if missing).
    #[arg(
        short = 'o',
        long = "outdir",
        value_name = "OUTDIR",
        required_unless_present = "config_check"
    )]
    pub outdir: Option<PathBuf>,

    /// Extra arguments for git, split at white space.
    #[arg(
        short = 'g',
        long = "gitargs",
        value_name = "GITARGS",
        default_value = "-c core.compression=9",
        allow_hyphen_values = true
    )]
    pub gitargs: String,

    /// Arguments for `git rev-list` choosing what goes into each bundle,
    /// split at white space.
    #[arg(
        short = 'r',
        long = "revlistargs",
        value_name = "REVLISTARGS",
        default_value = "--branches HEAD",
        allow_hyphen_values = true
    )]
    pub revlistargs: String,

    /// Largest repository to bundle, in GiB (objects on disk, those it
    /// borrows through alternates included); bigger ones are skipped.
    #[arg(
        short = 's',
        long = "maxsize",
        value_name = "MAXSIZE",
        default_value_t = 2
    )]
    pub maxsize: i64,

    /// Only bundle repositories whose manifest path matches one of these
    /// shell-style patterns (with or without the leading /).
    #[arg(
        short = 'i',
        long = "include",
        value_name = "INCLUDE",
        num_args = 0..,
        default_values_t = ["*".to_string()]
    )]
    pub include: Vec<String>,

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
    fn defaults_are_the_references() {
        let cli = Cli::try_parse_from(["grok-bundle", "-c", "a.conf", "-o", "out"]).unwrap();
        assert_eq!(cli.gitargs, "-c core.compression=9");
        assert_eq!(cli.revlistargs, "--branches HEAD");
        assert_eq!(cli.maxsize, 2);
        assert_eq!(cli.include, ["*"]);
        assert!(!cli.verbose);
    }

    #[test]
    fn values_and_repeats() {
        let cli = Cli::try_parse_from([
            "grok-bundle",
            "--config",
            "a.conf",
            "--outdir",
            "out",
            "-g",
            "-c pack.threads=1",
            "-r",
            "--all",
            "-s",
            "0",
            "-i",
            "/pub/*",
            "*.git",
            "-o",
            "out2",
        ])
        .unwrap();
        assert_eq!(cli.gitargs, "-c pack.threads=1");
        assert_eq!(cli.revlistargs, "--all");
        assert_eq!(cli.maxsize, 0);
        assert_eq!(cli.include, ["/pub/*", "*.git"]);
        assert_eq!(cli.outdir, Some(PathBuf::from("out2")));
        // `-i` with nothing after it matches nothing, as in grokmirror.
        let cli = Cli::try_parse_from(["grok-bundle", "-c", "a", "-o", "b", "-i"]).unwrap();
        assert!(cli.include.is_empty());
        assert!(Cli::try_parse_from(["grok-bundle", "-c", "a"]).is_err());
        assert!(Cli::try_parse_from(["grok-bundle", "-o", "b"]).is_err());
        assert!(Cli::try_parse_from(["grok-bundle", "-c", "a", "-o", "b", "-s", "1.5"]).is_err());
    }
}
