//! The command line of grok-shallow-tar, defined once for `--help`, the man
//! page and shell completions.

use std::path::PathBuf;

use clap::Parser;

use crate::plan::BranchSpec;

/// Publish shallow, single-branch clones of chosen branches as tarballs,
/// for CI fleets to fetch from a CDN instead of asking git for a pack.
///
/// For every branch a --branches pattern names, OUTDIR/<manifest directory>/
/// gets <repo>.<branch>.shallow.<YYYYMMDD>.<tip>.tar (a shallow, tagless,
/// single-branch clone with nothing checked out), its .tar.json sidecar
/// (repository, branch, tip, creation time, depth, size, SHA-256), and the
/// links <repo>.<branch>.shallow.latest.tar and .latest.tar.json to them.
/// A tarball is made only when no tarball of the branch's current tip is on
/// disk; the previous one is kept for one more run, older ones are removed
/// once the links moved. Every file reaches its name by a rename.
///
/// Repositories come from the manifest named by [core] manifest and live
/// under [core] toplevel. A run that finds another one publishing into
/// OUTDIR leaves it the work and exits 0.
#[derive(Debug, Clone, Parser)]
#[command(name = "grok-shallow-tar", version = grokmirror_cli::VERSION, max_term_width = 100)]
#[command(args_override_self = false, help_template = grokmirror_cli::HELP_TEMPLATE)]
pub struct Cli {
    /// Tell what is being done.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Config file (the [core] section is used: toplevel, manifest, log,
    /// loglevel).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", required = true)]
    pub config: PathBuf,

    /// Where the tarballs are published (created if missing); keep it on
    /// one file system and outside the toplevel.
    #[arg(
        short = 'o',
        long = "outdir",
        value_name = "OUTDIR",
        required_unless_present = "config_check"
    )]
    pub outdir: Option<PathBuf>,

    /// Publish the branches matching BRANCHGLOB of the repositories whose
    /// manifest path (with or without its leading slash) matches REPOGLOB;
    /// shell patterns, split at the last colon. Repeat for more.
    #[arg(
        long = "branches",
        value_name = "REPOGLOB:BRANCHGLOB",
        value_parser = parse_spec,
        required_unless_present = "config_check"
    )]
    pub branches: Vec<BranchSpec>,

    /// The public site the unpacked clones fetch from (their origin is this
    /// plus the manifest path), e.g. https://git.kernel.org.
    #[arg(
        long = "clone-url-base",
        value_name = "URL",
        value_parser = parse_url_base,
        required_unless_present = "config_check"
    )]
    pub clone_url_base: Option<String>,

    /// How many commits of history each tarball holds.
    #[arg(
        long = "depth",
        value_name = "DEPTH",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub depth: u32,

    /// Publish only the branches whose tip was committed within this many
    /// days (0: any age).
    #[arg(
        long = "max-ref-age",
        value_name = "DAYS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=100_000)
    )]
    pub max_ref_age: u32,

    /// Publish at most this many branches per repository, those with the
    /// newest tips (0: no limit).
    #[arg(
        long = "max-branches",
        value_name = "NUM",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=100_000)
    )]
    pub max_branches: u32,

    /// --config-check, --json, --no-network.
    #[command(flatten)]
    pub check: grokmirror_cli::config_check::ConfigCheckFlags,
}

fn parse_spec(text: &str) -> Result<BranchSpec, String> {
    BranchSpec::parse(text)
}

/// A clone URL base: http(s) or git, at most 1024 bytes, no whitespace;
/// its trailing slashes are dropped.
fn parse_url_base(text: &str) -> Result<String, String> {
    let ok_scheme = ["https://", "http://", "git://"]
        .iter()
        .any(|s| text.starts_with(s) && text.len() > s.len());
    if !ok_scheme || text.len() > 1024 || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{text:?} is not a public URL; give one such as https://git.example.org"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
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
        let cli = Cli::try_parse_from([
            "grok-shallow-tar",
            "-c",
            "a.conf",
            "-o",
            "out",
            "--clone-url-base",
            "https://git.example.org/",
            "--branches",
            "/a.git:main",
            "--branches",
            "b/*:v*.y",
        ])
        .unwrap();
        assert_eq!(cli.depth, 1);
        assert_eq!(cli.max_ref_age, 0);
        assert_eq!(cli.max_branches, 0);
        assert_eq!(cli.branches.len(), 2);
        assert_eq!(
            cli.clone_url_base.as_deref(),
            Some("https://git.example.org")
        );
        let base = ["grok-shallow-tar", "-c", "a", "-o", "b"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let ok = ["--clone-url-base", "https://x", "--branches", "a:b"];
        assert!(with(&ok).is_ok());
        assert!(with(&["--branches", "a:b"]).is_err());
        assert!(with(&["--clone-url-base", "https://x"]).is_err());
        assert!(with(&["--clone-url-base", "/srv/git", "--branches", "a:b"]).is_err());
        assert!(with(&[&ok[..], &["--depth", "0"]].concat()).is_err());
        assert!(with(&[&ok[..], &["--max-branches", "many"]].concat()).is_err());
        assert!(with(&["--clone-url-base", "https://x", "--branches", "nocolon"]).is_err());
        assert!(Cli::try_parse_from(["grok-shallow-tar", "-c", "a", "--config-check"]).is_ok());
    }
}
