//! The `[fsck]` section, read once and checked before anything changes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use grokmirror::config::glob::GlobList;
use grokmirror::config::{self, Config};
use grokmirror::objstore::FetchMethod;
use grokmirror::repo::grace::Unreachable;
use grokmirror::repo::repack::{Precious, RepackPolicy};
use grokmirror_cli::usage;

/// Where and how the report of critical errors is mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// `report_to` (default `root`); several addresses separated by commas.
    pub to: String,
    /// `report_from` (default `root`).
    pub from: String,
    /// `report_subject`; default `grok-fsck errors on <host> (<config>)`.
    pub subject: Option<String>,
    /// `report_mailhost` (default `localhost`), `host` or `host:port`.
    pub mailhost: String,
}

/// `[fsck] obstrepo_merge_strategy`: how alike two object-storage
/// repositories must be to be merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeStrategy {
    /// The very same root commits.
    #[default]
    Exact,
    /// Shared roots, one set containing the other or differing by two at
    /// most.
    Loose,
    /// Most blob bytes in common.
    Blobs,
}

/// What object storage needs from the config.
#[derive(Debug, Clone, Default)]
pub struct ObjstoreSettings {
    /// `[core] private`.
    pub private: GlobList,
    /// `[core] objstore_uses_plumbing`.
    pub fetch_method: FetchMethod,
    /// `[fsck] obstrepo_merge_strategy`.
    pub merge_strategy: MergeStrategy,
    /// `[fsck] baselines`.
    pub baselines: GlobList,
    /// `[fsck] islandcores`.
    pub islandcores: GlobList,
    /// `[fsck] preload_bundle_outdir`.
    pub preload_bundle_outdir: Option<PathBuf>,
}

/// Everything grok-fsck takes from the config file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file as given on the command line (for the mail subject).
    pub config_path: PathBuf,
    /// `[core] toplevel` (real path).
    pub toplevel: PathBuf,
    /// `[core] manifest`.
    pub manifest: PathBuf,
    /// `[core] objstore`.
    pub objstore: PathBuf,
    /// `[manifest] pretty`: how to rewrite the manifest when repos are gone.
    pub pretty: bool,
    /// `[fsck] statusfile`.
    pub statusfile: PathBuf,
    /// `[fsck] frequency`, days between checks of one repository.
    pub frequency: u32,
    /// `[fsck] ignore_errors`: substrings of benign messages.
    pub ignore_errors: Vec<String>,
    /// `[fsck] reclone_on_errors`: substrings of messages that ask for a
    /// re-clone.
    pub reclone_on_errors: Vec<String>,
    /// `[fsck] repack`.
    pub repack: bool,
    /// Repack flags and what goes around the repack.
    pub policy: RepackPolicy,
    /// The mailed report.
    pub report: ReportSettings,
    /// `[fsck] threads`: repositories worked on at once (ours; default 1).
    pub threads: usize,
    /// Object storage.
    pub objstore_settings: ObjstoreSettings,
}

fn bad(config: &Config, key: &str, value: String, expected: &'static str) -> config::Error {
    config::Error::BadValue {
        path: config.path.clone(),
        section: "fsck".into(),
        key: key.into(),
        value,
        expected,
    }
}

/// `[fsck] key` as a number within `range`.
fn int_in(
    config: &Config,
    key: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    expected: &'static str,
) -> Result<i64, config::Error> {
    let value = config.get_int("fsck", key, default)?;
    if !range.contains(&value) {
        return Err(bad(config, key, value.to_string(), expected));
    }
    Ok(value)
}

/// `[fsck] key` as whitespace-separated words.
fn words(config: &Config, key: &str) -> Result<Vec<String>, config::Error> {
    Ok(config
        .get_or("fsck", key, "")?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// The repack flags and what goes around the repack.
fn repack_policy(config: &Config) -> Result<RepackPolicy, config::Error> {
    let precious_raw = config.get_or("fsck", "precious", "yes")?;
    let precious = Precious::parse(&precious_raw).ok_or_else(|| {
        bad(
            config,
            "precious",
            precious_raw.clone(),
            "yes, no or always",
        )
    })?;
    // 1.x documented "never" for commitgraph; take it as "no".
    let commit_graph = match config.get("fsck", "commitgraph")? {
        None => true,
        Some(v) if v.trim().eq_ignore_ascii_case("never") => false,
        Some(_) => config.get_bool("fsck", "commitgraph", true)?,
    };
    Ok(RepackPolicy {
        prune: config.get_bool("fsck", "prune", true)?,
        precious,
        commit_graph,
        extra_flags: words(config, "extra_repack_flags")?,
        extra_full_flags: words(config, "extra_repack_flags_full")?,
        unreachable: Unreachable::for_grace(consumer_grace(config)?, SystemTime::now(), true),
        // What the git can do is learnt at start-up (RepackPolicy::fit_to_git).
        geometric: false,
        commit_graph_split: false,
    })
}

/// `[fsck] consumer_grace`.
fn consumer_grace(config: &Config) -> Result<Duration, config::Error> {
    let raw = config.get_or("fsck", "consumer_grace", "14d")?;
    grokmirror::formats::freshness::parse_duration(&raw).ok_or_else(|| {
        bad(
            config,
            "consumer_grace",
            raw.clone(),
            "a number of seconds, or a number with s, m, h, d or w (14d)",
        )
    })
}

/// What object storage needs from `[core]` and `[fsck]`.
fn objstore_settings(config: &Config) -> Result<ObjstoreSettings, config::Error> {
    let strategy = config.get_or("fsck", "obstrepo_merge_strategy", "exact")?;
    let merge_strategy = match strategy.trim().to_ascii_lowercase().as_str() {
        "" | "exact" => MergeStrategy::Exact,
        "loose" => MergeStrategy::Loose,
        "blobs" => MergeStrategy::Blobs,
        _ => {
            return Err(bad(
                config,
                "obstrepo_merge_strategy",
                strategy.clone(),
                "exact, loose or blobs",
            ))
        }
    };
    Ok(ObjstoreSettings {
        private: config.core.private.clone(),
        fetch_method: FetchMethod::from_config(config.core.objstore_uses_plumbing),
        merge_strategy,
        baselines: config.get_globs("fsck", "baselines", "")?,
        islandcores: config.get_globs("fsck", "islandcores", "")?,
        preload_bundle_outdir: config
            .get_path("fsck", "preload_bundle_outdir")?
            .filter(|p| !p.as_os_str().is_empty()),
    })
}

/// Where and how the report is mailed.
fn report_settings(config: &Config) -> Result<ReportSettings, config::Error> {
    Ok(ReportSettings {
        to: config.get_or("fsck", "report_to", "root")?,
        from: config.get_or("fsck", "report_from", "root")?,
        subject: config
            .get("fsck", "report_subject")?
            .filter(|s| !s.trim().is_empty()),
        mailhost: config.get_or("fsck", "report_mailhost", "localhost")?,
    })
}

impl Settings {
    /// Read the settings; `config_path` is the path as given by the user.
    pub fn from_config(config: &Config, config_path: &Path) -> anyhow::Result<Settings> {
        let statusfile = config.get_path("fsck", "statusfile")?.ok_or_else(|| {
            usage(format!(
                "config file {}: [fsck] statusfile must be set (e.g. statusfile = ${{core:toplevel}}/fsck.status.js)",
                config.path.display()
            ))
        })?;
        let frequency = int_in(
            config,
            "frequency",
            30,
            1..=36_500,
            "a number of days from 1 to 36500",
        )?;
        let threads = int_in(config, "threads", 1, 1..=1024, "a number from 1 to 1024")?;
        let policy = repack_policy(config)?;
        let objstore_settings = objstore_settings(config)?;
        let report = report_settings(config)?;
        Ok(Settings {
            config_path: config_path.to_path_buf(),
            toplevel: config.core.toplevel.clone(),
            manifest: config.core.manifest.clone(),
            objstore: config.core.objstore.clone(),
            pretty: config.get_bool("manifest", "pretty", false)?,
            statusfile,
            frequency: frequency as u32,
            ignore_errors: config.get_lines("fsck", "ignore_errors")?,
            reclone_on_errors: config.get_lines("fsck", "reclone_on_errors")?,
            repack: config.get_bool("fsck", "repack", true)?,
            policy,
            report,
            threads: threads as usize,
            objstore_settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path, fsck: &str) -> anyhow::Result<Settings> {
        let text = format!("[core]\ntoplevel = {}\n[fsck]\n{fsck}", dir.display());
        let config = Config::from_text(&text, Path::new("/etc/grok.conf"), 0)?;
        Settings::from_config(&config, Path::new("grok.conf"))
    }

    #[test]
    fn defaults_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let s = load(
            dir.path(),
            "statusfile = ${core:toplevel}/st.js\nignore_errors = notice:\n   warning: disabling bitmap writing\n\nextra_repack_flags_full = --window=250 --depth=50\nprecious = always\ncommitgraph = never\n",
        )
        .unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(s.statusfile, top.join("st.js"));
        assert_eq!(s.frequency, 30);
        assert_eq!(s.threads, 1);
        assert_eq!(
            s.ignore_errors,
            vec!["notice:", "warning: disabling bitmap writing"]
        );
        assert!(s.reclone_on_errors.is_empty());
        assert_eq!(s.policy.precious, Precious::Always);
        assert!(!s.policy.commit_graph);
        assert!(s.policy.prune);
        assert_eq!(
            s.policy.extra_full_flags,
            vec!["--window=250", "--depth=50"]
        );
        assert_eq!(s.report.to, "root");
        assert_eq!(s.report.mailhost, "localhost");
        assert_eq!(s.report.subject, None);
    }

    #[test]
    fn bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), "").unwrap_err().to_string();
        assert!(err.contains("[fsck] statusfile"), "{err}");
        let err = load(dir.path(), "statusfile = /x\nfrequency = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[fsck] frequency"), "{err}");
        let err = load(dir.path(), "statusfile = /x\nprecious = maybe\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[fsck] precious") && err.contains("maybe"),
            "{err}"
        );
    }
}
