//! Everything grok-pull reads from the config file, resolved once, with
//! grokmirror's defaults.

use std::path::PathBuf;

use grokmirror::config::glob::GlobList;
use grokmirror::config::{self, Config, LogLevel};
use grokmirror::shard::Shard;

mod shard;

/// Default cap on the size of a remote manifest, decompressed:
/// kernel.org's is a few MiB, so this only stops gzip bombs and runaway
/// responses.
pub const DEFAULT_MANIFEST_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Default `[remote] manifest_timeout`, in seconds: how long the origin may
/// send nothing while grok-pull waits for its manifest. The same 300
/// seconds grokmirror 2.x waits for a read.
pub const DEFAULT_MANIFEST_TIMEOUT: i64 = 300;

/// Default `[pull] hook_timeout`, in seconds: an hour. Hooks index,
/// mirror further or rebuild caches for a repository that just changed;
/// on a big repository (linux.git) that takes minutes, so the limit only
/// catches a hook that hangs, without killing a slow honest one.
pub const DEFAULT_HOOK_TIMEOUT: i64 = 3600;

/// Default `[pull] shutdown_grace`: how long running fetches may take to
/// finish after SIGTERM, in seconds. Well inside the contrib unit's
/// TimeoutStopSec=5min, so systemd never has to kill us.
pub const DEFAULT_SHUTDOWN_GRACE: i64 = 60;

/// Where the remote manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// `http://` or `https://`, with If-Modified-Since.
    Http(String),
    /// `file://` followed by an absolute path (the file's mtime is its
    /// Last-Modified).
    File(PathBuf),
    /// `[remote] manifest_command`.
    Command(PathBuf),
}

/// The resolved settings of one grok-pull run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The loaded config (for `[core]` and its mtime).
    pub config: Config,
    /// `[remote] site`: repository URLs are this joined with the path.
    pub site: String,
    /// The manifest source.
    pub source: ManifestSource,
    /// `[remote] manifest_max_bytes`.
    pub manifest_max_bytes: u64,
    /// `[remote] manifest_timeout`: the longest silence from the origin
    /// (connecting, waiting for the answer, or between two pieces of its
    /// body) before fetching the manifest is given up.
    pub manifest_timeout: std::time::Duration,
    /// `[pull] include`.
    pub include: GlobList,
    /// `[pull] exclude`.
    pub exclude: GlobList,
    /// `[pull] shard` (or `GROKMIRROR_SHARD`): the share of the mirror
    /// this replica holds; `None` for all of it.
    pub shard: Option<Shard>,
    /// `[pull] shard_peers`, expanded: the manifest URL of each shard, in
    /// shard order (empty when not configured).
    pub shard_peers: Vec<String>,
    /// `[pull] nopurge`.
    pub nopurge: GlobList,
    /// `[pull] ffonly`.
    pub ffonly: GlobList,
    /// `[pull] purge` (or `-p`).
    pub purge: bool,
    /// `[pull] purgeprotect`, percent.
    pub purgeprotect: i64,
    /// `[pull] default_owner`.
    pub default_owner: String,
    /// `[pull] remotename`.
    pub remotename: String,
    /// `[pull] pull_threads` (default: half the CPUs, at least 1).
    pub pull_threads: usize,
    /// `[pull] retries`: fetch attempts per repository.
    pub retries: u32,
    /// `[pull] fetch_timeout`: how long one fetch attempt may run before
    /// it is killed (`None`: no limit).
    pub fetch_timeout: Option<std::time::Duration>,
    /// `[pull] projectslist`.
    pub projectslist: Option<PathBuf>,
    /// `[pull] projectslist_trimtop`.
    pub projectslist_trimtop: String,
    /// `[pull] projectslist_symlinks`.
    pub projectslist_symlinks: bool,
    /// `[pull] post_update_hook` lines.
    pub post_update_hook: Vec<String>,
    /// `[pull] post_clone_complete_hook` lines.
    pub post_clone_complete_hook: Vec<String>,
    /// `[pull] post_work_complete_hook` lines.
    pub post_work_complete_hook: Vec<String>,
    /// `[pull] refresh` (seconds; unset means one-shot).
    pub refresh: Option<i64>,
    /// `[pull] socket`: the push-notification socket of the daemon.
    pub socket: Option<PathBuf>,
    /// `[pull] metrics_file`: Prometheus text-format statistics.
    pub metrics_file: Option<PathBuf>,
    /// `[pull] metrics_listen`: where the daemon serves `/metrics`.
    pub metrics_listen: Option<String>,
    /// `[pull] notify_listen`: where the daemon takes signed HTTP
    /// notifications.
    pub notify_listen: Option<String>,
    /// `[pull] notify_secret_file`: the shared secret that signs them,
    /// received and sent.
    pub notify_secret_file: Option<PathBuf>,
    /// `[pull] notify_peers`: the replicas told of what we fetched.
    pub notify_peers: Vec<String>,
    /// `[pull] stale_after`: a repository behind its origin for longer
    /// than this is stale.
    pub stale_after: std::time::Duration,
    /// `[pull] hook_timeout`: how long one hook command may run before it
    /// is killed with its process group.
    pub hook_timeout: std::time::Duration,
    /// `[pull] shutdown_grace`: how long running fetches may go on after
    /// SIGTERM/SIGINT before they are killed.
    pub shutdown_grace: std::time::Duration,
    /// `[pull] housekeeping_max_load`: the daemon's housekeeping waits
    /// while the load average is above it (`None`: the number of CPUs; 0:
    /// never waits).
    pub housekeeping_max_load: Option<f64>,
    /// `[manifest] pretty`, for writing the local manifest.
    pub pretty: bool,
    /// `[fsck] extra_repack_flags`, added to quick repacks.
    pub extra_repack_flags: Vec<String>,
    /// `[remote] preload_bundle_url`: where new object storage is seeded
    /// from.
    pub preload_bundle_url: Option<String>,
    /// Log file and its level.
    pub log: Option<PathBuf>,
    /// Log file verbosity.
    pub loglevel: LogLevel,
}

fn bad(
    config: &Config,
    section: &str,
    key: &str,
    value: String,
    expected: &'static str,
) -> config::Error {
    config::Error::BadValue {
        path: config.path.clone(),
        section: section.into(),
        key: key.into(),
        value,
        expected,
    }
}

/// Join `site` and a manifest path the way Python's `os.path.join(site,
/// path.lstrip('/'))` does.
pub fn repo_url(site: &str, key: &str) -> String {
    let rel = key.trim_start_matches('/');
    if site.is_empty() || site.ends_with('/') {
        format!("{site}{rel}")
    } else {
        format!("{site}/{rel}")
    }
}

impl Settings {
    /// Resolve the settings; `purge_flag` is `-p`.
    pub fn from_config(config: Config, purge_flag: bool) -> Result<Settings, config::Error> {
        let missing = |section: &str, key: &str| config::Error::Missing {
            path: config.path.clone(),
            section: section.into(),
            key: key.into(),
        };
        let site = config
            .get("remote", "site")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("remote", "site"))?;
        let command = config.get_path("remote", "manifest_command")?;
        let source = match command {
            Some(cmd) => ManifestSource::Command(cmd),
            None => {
                let url = config
                    .get("remote", "manifest")?
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| missing("remote", "manifest"))?;
                if let Some(path) = url.strip_prefix("file://") {
                    if !path.starts_with('/') {
                        return Err(bad(
                            &config,
                            "remote",
                            "manifest",
                            url.clone(),
                            "a file:// URL with an absolute path (file:///...)",
                        ));
                    }
                    ManifestSource::File(PathBuf::from(path))
                } else if url.starts_with("http://") || url.starts_with("https://") {
                    ManifestSource::Http(url)
                } else {
                    return Err(bad(
                        &config,
                        "remote",
                        "manifest",
                        url,
                        "an http://, https:// or file:// URL",
                    ));
                }
            }
        };
        let max = config.get_int(
            "remote",
            "manifest_max_bytes",
            DEFAULT_MANIFEST_MAX_BYTES as i64,
        )?;
        if max < 1 {
            return Err(bad(
                &config,
                "remote",
                "manifest_max_bytes",
                max.to_string(),
                "a positive number of bytes",
            ));
        }
        let manifest_timeout =
            config.get_int("remote", "manifest_timeout", DEFAULT_MANIFEST_TIMEOUT)?;
        if manifest_timeout < 1 {
            return Err(bad(
                &config,
                "remote",
                "manifest_timeout",
                manifest_timeout.to_string(),
                "a positive number of seconds",
            ));
        }
        let threads = config.get_int("pull", "pull_threads", 0)?;
        let pull_threads = if threads >= 1 {
            threads as usize
        } else {
            (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
        };
        let retries = config.get_int("pull", "retries", 3)?.max(1) as u32;
        // Empty (as the example config has it) means unset.
        let fetch_timeout_set = config
            .get("pull", "fetch_timeout")?
            .is_some_and(|v| !v.trim().is_empty());
        let fetch_timeout = match fetch_timeout_set
            .then(|| config.get_opt_int("pull", "fetch_timeout"))
            .transpose()?
            .flatten()
        {
            None | Some(0) => None,
            Some(secs) if secs > 0 => Some(std::time::Duration::from_secs(secs as u64)),
            Some(secs) => {
                return Err(bad(
                    &config,
                    "pull",
                    "fetch_timeout",
                    secs.to_string(),
                    "a number of seconds (0 or unset: no limit)",
                ))
            }
        };
        let refresh = config.get_opt_int("pull", "refresh")?;
        let mut extra_repack_flags = Vec::new();
        if let Some(flags) = config.get("fsck", "extra_repack_flags")? {
            extra_repack_flags = flags.split_whitespace().map(str::to_string).collect();
        }
        let pretty = config.get_bool("manifest", "pretty", false)?;
        let grace = config.get_int("pull", "shutdown_grace", DEFAULT_SHUTDOWN_GRACE)?;
        if grace < 0 {
            return Err(bad(
                &config,
                "pull",
                "shutdown_grace",
                grace.to_string(),
                "a number of seconds, 0 or more",
            ));
        }
        let hook_timeout = config.get_int("pull", "hook_timeout", DEFAULT_HOOK_TIMEOUT)?;
        if hook_timeout < 1 {
            return Err(bad(
                &config,
                "pull",
                "hook_timeout",
                hook_timeout.to_string(),
                "a positive number of seconds",
            ));
        }
        let housekeeping_max_load = match config.get("pull", "housekeeping_max_load")? {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(l) if l >= 0.0 && l.is_finite() => Some(l),
                _ => {
                    return Err(bad(
                        &config,
                        "pull",
                        "housekeeping_max_load",
                        v,
                        "a load average (a number, 0 or more)",
                    ))
                }
            },
        };
        // The range grokmirror honours (it falls back to 5 outside it, with
        // a warning a cron job never shows): refused instead, so the
        // operator learns the protection is not what was written.
        let purgeprotect = config.get_int("pull", "purgeprotect", 5)?;
        if !(1..=99).contains(&purgeprotect) {
            return Err(bad(
                &config,
                "pull",
                "purgeprotect",
                config.get_or("pull", "purgeprotect", "")?,
                "a percentage from 1 to 99",
            ));
        }
        let socket = config
            .get_path("pull", "socket")?
            .filter(|p| !p.as_os_str().is_empty());
        let metrics_file = config
            .get_path("pull", "metrics_file")?
            .filter(|p| !p.as_os_str().is_empty());
        let (shard, shard_peers) = shard::from_config(
            &config,
            std::env::var(grokmirror::shard::ENV_SHARD).ok(),
            shard::hostname,
        )?;
        Ok(Settings {
            site,
            source,
            manifest_max_bytes: max as u64,
            manifest_timeout: std::time::Duration::from_secs(manifest_timeout as u64),
            include: config.get_globs("pull", "include", "*")?,
            exclude: config.get_globs("pull", "exclude", "")?,
            shard,
            shard_peers,
            nopurge: config.get_globs("pull", "nopurge", "")?,
            ffonly: config.get_globs("pull", "ffonly", "")?,
            purge: purge_flag || config.get_bool("pull", "purge", false)?,
            purgeprotect,
            default_owner: config.get_or("pull", "default_owner", "Grokmirror")?,
            remotename: config.get_or("pull", "remotename", "_grokmirror")?,
            pull_threads,
            retries,
            fetch_timeout,
            projectslist: config.get_path("pull", "projectslist")?,
            projectslist_trimtop: config.get_or("pull", "projectslist_trimtop", "")?,
            projectslist_symlinks: config.get_bool("pull", "projectslist_symlinks", false)?,
            post_update_hook: config.get_lines("pull", "post_update_hook")?,
            post_clone_complete_hook: config.get_lines("pull", "post_clone_complete_hook")?,
            post_work_complete_hook: config.get_lines("pull", "post_work_complete_hook")?,
            refresh,
            socket,
            metrics_file,
            stale_after: grokmirror::formats::freshness::stale_after(&config)?,
            metrics_listen: config
                .get("pull", "metrics_listen")?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            notify_listen: config
                .get("pull", "notify_listen")?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            notify_secret_file: config
                .get_path("pull", "notify_secret_file")?
                .filter(|p| !p.as_os_str().is_empty()),
            notify_peers: grokmirror_notify::downstream::parse_urls(&config.get_or(
                "pull",
                "notify_peers",
                "",
            )?),
            hook_timeout: std::time::Duration::from_secs(hook_timeout as u64),
            shutdown_grace: std::time::Duration::from_secs(grace as u64),
            housekeeping_max_load,
            pretty,
            extra_repack_flags,
            preload_bundle_url: config
                .get("remote", "preload_bundle_url")?
                .filter(|u| !u.trim().is_empty()),
            log: config.core.log.clone(),
            loglevel: config.core.loglevel,
            config,
        })
    }

    /// The top level (real path).
    pub fn toplevel(&self) -> &std::path::Path {
        &self.config.core.toplevel
    }

    /// The local manifest.
    pub fn manifest(&self) -> &std::path::Path {
        &self.config.core.manifest
    }

    /// The URL of a repository at the origin.
    pub fn url_of(&self, key: &str) -> String {
        repo_url(&self.site, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<Settings, config::Error> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[core]\ntoplevel = {}\n{text}", dir.path().display());
        let config = Config::from_text(&text, Path::new("t.conf"), 0)?;
        Settings::from_config(config, false)
    }

    #[test]
    fn defaults_and_sources() {
        let s = load("[remote]\nsite = https://o.example\nmanifest = ${site}/manifest.js.gz\n")
            .unwrap();
        assert_eq!(
            s.source,
            ManifestSource::Http("https://o.example/manifest.js.gz".into())
        );
        assert_eq!(s.default_owner, "Grokmirror");
        assert_eq!(s.remotename, "_grokmirror");
        assert_eq!(s.retries, 3);
        assert_eq!(s.purgeprotect, 5);
        assert!(!s.purge);
        assert!(s.pull_threads >= 1);
        assert!(s.include.is_match("/anything.git"));
        assert_eq!(s.manifest_max_bytes, DEFAULT_MANIFEST_MAX_BYTES);
        assert_eq!(
            s.manifest_timeout.as_secs(),
            DEFAULT_MANIFEST_TIMEOUT as u64
        );
        assert_eq!(s.url_of("/a/b.git"), "https://o.example/a/b.git");
        assert_eq!(s.shutdown_grace.as_secs(), DEFAULT_SHUTDOWN_GRACE as u64);
        assert_eq!(s.socket, None);
        assert_eq!(s.metrics_file, None);
        assert_eq!(s.fetch_timeout, None);

        let s = load("[remote]\nsite = /srv/origin/\nmanifest = file:///srv/m.js\n").unwrap();
        assert_eq!(s.source, ManifestSource::File("/srv/m.js".into()));
        assert_eq!(s.url_of("/a.git"), "/srv/origin/a.git");

        let s = load("[remote]\nsite = x\nmanifest_command = /bin/true\n[pull]\npurge = yes\n")
            .unwrap();
        assert_eq!(s.source, ManifestSource::Command("/bin/true".into()));
        assert!(s.purge);
    }

    #[test]
    fn purgeprotect_is_a_percentage_from_1_to_99() {
        let with = |v: &str| {
            load(&format!(
                "[remote]\nsite = x\nmanifest = file:///m\n[pull]\npurgeprotect = {v}\n"
            ))
        };
        assert_eq!(with("1").unwrap().purgeprotect, 1);
        assert_eq!(with("99").unwrap().purgeprotect, 99);
        for v in ["0", "100", "-3", "250", "five", "5.5"] {
            let e = with(v).unwrap_err().to_string();
            assert!(
                e.contains("t.conf") && e.contains("[pull] purgeprotect") && e.contains(v),
                "{v}: {e}"
            );
        }
    }

    #[test]
    fn errors_name_the_option() {
        let e = load("[remote]\nmanifest = file:///m.js\n").unwrap_err();
        assert!(e.to_string().contains("[remote] site"), "{e}");
        let e = load("[remote]\nsite = x\nmanifest = ftp://x/m\n").unwrap_err();
        assert!(e.to_string().contains("[remote] manifest"), "{e}");
        let e = load("[remote]\nsite = x\nmanifest = file://relative/m\n").unwrap_err();
        assert!(e.to_string().contains("file:///"), "{e}");
        let e = load("[remote]\nsite = x\nmanifest = file:///m\n[pull]\nshutdown_grace = -1\n")
            .unwrap_err();
        assert!(e.to_string().contains("[pull] shutdown_grace"), "{e}");
        let e =
            load("[remote]\nsite = x\nmanifest = file:///m\nmanifest_timeout = 0\n").unwrap_err();
        assert!(e.to_string().contains("[remote] manifest_timeout"), "{e}");
        let s = load("[remote]\nsite = x\nmanifest = file:///m\nmanifest_timeout = 7\n").unwrap();
        assert_eq!(s.manifest_timeout.as_secs(), 7);
        let e = load("[remote]\nsite = x\nmanifest = file:///m\n[pull]\nfetch_timeout = -5\n")
            .unwrap_err();
        assert!(e.to_string().contains("[pull] fetch_timeout"), "{e}");
        let s =
            load("[remote]\nsite = x\nmanifest = file:///m\n[pull]\nfetch_timeout = 0\n").unwrap();
        assert_eq!(s.fetch_timeout, None);
        let s =
            load("[remote]\nsite = x\nmanifest = file:///m\n[pull]\nfetch_timeout =\n").unwrap();
        assert_eq!(s.fetch_timeout, None);
        let s = load("[remote]\nsite = x\nmanifest = file:///m\n[pull]\nfetch_timeout = 600\n")
            .unwrap();
        assert_eq!(s.fetch_timeout, Some(std::time::Duration::from_secs(600)));
        let e = load(
            "[remote]\nsite = x\nmanifest = file:///m\n[pull]\nhousekeeping_max_load = lots\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("[pull] housekeeping_max_load"),
            "{e}"
        );
        let s =
            load("[remote]\nsite = x\nmanifest = file:///m\n[pull]\nhousekeeping_max_load = 3.5\n")
                .unwrap();
        assert_eq!(s.housekeeping_max_load, Some(3.5));
    }
}
