//! A repository's git config, read and written in process (libgit2): the
//! one place that opens it, so every writer reports a failure the same way
//! and writes a remote the same way (grok-pull's origin remote, the
//! members' remotes of an object storage).

use std::path::{Path, PathBuf};

use crate::git::{self, Git};

/// A config file that could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {message}", path.display())]
pub struct Error {
    /// What we were doing ("open", "write").
    pub action: &'static str,
    /// The config file.
    pub path: PathBuf,
    /// What libgit2 said.
    pub message: String,
}

fn error<'a>(action: &'static str, repo: &'a Path) -> impl FnOnce(git2::Error) -> Error + 'a {
    move |e| Error {
        action,
        path: repo.join("config"),
        message: e.message().to_string(),
    }
}

/// Open `repo`'s own config file (`<repo>/config`, nothing inherited).
pub fn open(repo: &Path) -> Result<git2::Config, Error> {
    crate::repo::refs::init_libgit2();
    git2::Config::open(&repo.join("config")).map_err(error("open", repo))
}

/// Every value of a multi-valued `key`, in file order.
pub fn values(cfg: &git2::Config, key: &str) -> Vec<String> {
    let mut values = Vec::new();
    if let Ok(mut entries) = cfg.multivar(key, None) {
        while let Some(Ok(e)) = entries.next() {
            values.push(e.value().unwrap_or_default().to_string());
        }
    }
    values
}

/// Set single-valued `key` to `value` unless it holds exactly that.
/// Returns whether it changed.
pub fn set(cfg: &mut git2::Config, repo: &Path, key: &str, value: &str) -> Result<bool, Error> {
    if values(cfg, key) == [value] {
        return Ok(false);
    }
    cfg.set_str(key, value).map_err(error("write", repo))?;
    Ok(true)
}

/// Remove every key under `remote.<name>.` (as `git remote remove` would,
/// without touching refs).
pub fn remove_remote(cfg: &mut git2::Config, repo: &Path, name: &str) -> Result<(), Error> {
    let prefix = format!("remote.{name}.").to_ascii_lowercase();
    let mut old_keys = std::collections::BTreeSet::new();
    if let Ok(mut entries) = cfg.entries(None) {
        while let Some(Ok(e)) = entries.next() {
            if let Some(n) = e.name() {
                if n.to_ascii_lowercase().starts_with(&prefix) {
                    old_keys.insert(n.to_string());
                }
            }
        }
    }
    for k in old_keys {
        cfg.remove_multivar(&k, ".*")
            .map_err(error("write", repo))?;
    }
    Ok(())
}

/// The URLs of every remote the repository's own config defines
/// (`remote.<name>.url`, non-empty, in file order). An origin's
/// repositories usually have none; a replica's have grok-pull's.
pub fn remote_urls(repo: &Path) -> Result<Vec<String>, Error> {
    let cfg = open(repo)?;
    let mut urls = Vec::new();
    let mut entries = cfg.entries(None).map_err(error("read", repo))?;
    while let Some(entry) = entries.next() {
        let e = entry.map_err(error("read", repo))?;
        let Some(name) = e.name() else { continue };
        let name = name.to_ascii_lowercase();
        if name.starts_with("remote.") && name.ends_with(".url") && name.len() > 11 {
            if let Some(v) = e.value().filter(|v| !v.is_empty()) {
                urls.push(v.to_string());
            }
        }
    }
    Ok(urls)
}

/// A remote as we define it: one URL, one fetch refspec, and optionally a
/// `tagopt`.
#[derive(Debug, Clone, Copy)]
pub struct Remote<'a> {
    /// The remote's name.
    pub name: &'a str,
    /// Its URL.
    pub url: &'a str,
    /// Its one fetch refspec.
    pub fetch: &'a str,
    /// Its `tagopt` (`--no-tags`); `None`: not ours to check or set.
    pub tagopt: Option<&'a str>,
}

impl Remote<'_> {
    fn key(&self, k: &str) -> String {
        format!("remote.{}.{k}", self.name)
    }

    /// Whether `cfg` defines this remote exactly so.
    pub fn is_in(&self, cfg: &git2::Config) -> bool {
        values(cfg, &self.key("url")) == [self.url]
            && values(cfg, &self.key("fetch")) == [self.fetch]
            && self
                .tagopt
                .is_none_or(|t| values(cfg, &self.key("tagopt")) == [t])
    }

    /// Replace whatever `cfg` has under `remote.<name>.` (as `git remote
    /// remove` would, without touching refs) by this remote. The URL is
    /// written last: a crash half-way leaves a remote without a URL, which
    /// nobody fetches from.
    pub fn write(&self, cfg: &mut git2::Config, repo: &Path) -> Result<(), Error> {
        remove_remote(cfg, repo, self.name)?;
        if let Some(tagopt) = self.tagopt {
            cfg.set_str(&self.key("tagopt"), tagopt)
                .map_err(error("write", repo))?;
        }
        cfg.set_str(&self.key("fetch"), self.fetch)
            .map_err(error("write", repo))?;
        cfg.set_str(&self.key("url"), self.url)
            .map_err(error("write", repo))
    }
}

/// A boolean from the repository's own config file, read the way git
/// reads booleans; `None` when unset or unreadable.
pub fn config_bool(repo: &Path, key: &str) -> Option<bool> {
    let cfg = open(repo).ok()?;
    let entry = cfg.get_entry(key).ok()?;
    let value = entry.value()?;
    crate::config::ini::parse_bool(value).or(match value {
        "" => Some(false),
        _ => None,
    })
}

/// Whether `extensions.preciousObjects` is on: git then refuses to delete
/// any object or pack in the repository (no prune, no `repack -d`).
pub fn is_precious(repo: &Path) -> bool {
    config_bool(repo, "extensions.preciousObjects").unwrap_or(false)
}

/// Turn `extensions.preciousObjects` on or off (through git, which takes the
/// config lock).
pub fn set_precious(git: &Git, repo: &Path, on: bool) -> Result<(), git::Error> {
    let value = if on { "true" } else { "false" };
    git.run_ok(
        Some(repo),
        [
            "config",
            "--replace-all",
            "extensions.preciousObjects",
            value,
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_is_replaced_whole_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        std::fs::write(
            repo.join("config"),
            "[remote \"origin\"]\n\turl = old\n\tfetch = a\n\tfetch = b\n\tmirror = true\n",
        )
        .unwrap();
        let remote = Remote {
            name: "origin",
            url: "https://new/",
            fetch: "+refs/*:refs/*",
            tagopt: Some("--no-tags"),
        };
        let mut cfg = open(repo).unwrap();
        assert!(!remote.is_in(&cfg));
        remote.write(&mut cfg, repo).unwrap();
        let cfg = open(repo).unwrap();
        assert!(remote.is_in(&cfg));
        assert_eq!(values(&cfg, "remote.origin.fetch"), ["+refs/*:refs/*"]);
        assert!(
            values(&cfg, "remote.origin.mirror").is_empty(),
            "old keys go"
        );
        // Without a tagopt of ours, whatever is there is not checked.
        let loose = Remote {
            tagopt: None,
            ..remote
        };
        assert!(loose.is_in(&cfg));
    }

    #[test]
    fn set_reports_change_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), "").unwrap();
        let mut cfg = open(dir.path()).unwrap();
        assert!(set(&mut cfg, dir.path(), "gitweb.owner", "me").unwrap());
        assert!(!set(&mut cfg, dir.path(), "gitweb.owner", "me").unwrap());
        let missing = dir.path().join("nowhere");
        std::fs::create_dir(&missing).unwrap();
        std::fs::create_dir(missing.join("config")).unwrap();
        let err = open(&missing)
            .err()
            .expect("a directory is no config file")
            .to_string();
        assert!(err.starts_with("cannot open "), "{err}");
        assert!(err.contains("nowhere/config"), "{err}");
    }

    #[test]
    fn remote_urls_lists_every_remote_with_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        std::fs::write(repo.join("config"), "[core]\n\tbare = true\n").unwrap();
        assert!(remote_urls(repo).unwrap().is_empty(), "an origin's config");
        std::fs::write(
            repo.join("config"),
            "[remote \"_grokmirror\"]\n\tfetch = +refs/*:refs/*\n\tURL = git://o/a.git\n\
             [remote \"empty\"]\n\turl =\n[remote \"x\"]\n\tpushurl = p\n[remote]\n\turl = odd\n",
        )
        .unwrap();
        assert_eq!(remote_urls(repo).unwrap(), ["git://o/a.git"]);
        std::fs::write(repo.join("config"), "[remote \"broken\"\n").unwrap();
        assert!(
            remote_urls(repo).is_err(),
            "an unreadable config is no answer"
        );
    }

    #[test]
    fn precious_switch() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("p.git");
        assert!(std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo)
            .status()
            .unwrap()
            .success());
        let g = Git::from_env();
        assert!(!is_precious(&repo));
        set_precious(&g, &repo, true).unwrap();
        assert!(is_precious(&repo));
        set_precious(&g, &repo, false).unwrap();
        assert!(!is_precious(&repo));
    }
}
