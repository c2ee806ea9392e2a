//! Manifest keys, in one place: the rules a key must follow
//! ([`normalize_path`]), how a key and a path turn into each other
//! ([`manifest_key`], [`key_path`], [`manifest_style`]), [`RepoKey`]: a key
//! checked once, and [`Reserved`]: the replica's own files and folders,
//! which no key may name.

use std::borrow::Borrow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::tree::fsutil::{normalize_lexically, relpath};
use crate::tree::staging;

/// The longest manifest path we accept, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// The longest single path component we accept, in bytes (`NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Check a manifest path and return it normalized to one leading `/`.
/// grokmirror 1.x wrote keys without the slash; those are accepted and
/// normalized. Rejected: empty paths and components, `.` and `..`, NUL and
/// other control characters, over-long paths or components.
pub fn normalize_path(raw: &str) -> Result<String, String> {
    let body = raw.strip_prefix('/').unwrap_or(raw);
    if body.is_empty() {
        return Err("empty path".into());
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    for comp in body.split('/') {
        if comp.is_empty() {
            return Err("path has an empty component (// or a trailing /)".into());
        }
        if comp == "." || comp == ".." {
            return Err(format!("path has a {comp:?} component"));
        }
        if comp.contains('\0') {
            return Err("path contains a NUL byte".into());
        }
        if comp.chars().any(char::is_control) {
            return Err("path contains a control character".into());
        }
        if comp.len() > MAX_COMPONENT_BYTES {
            return Err(format!(
                "path has a component longer than {MAX_COMPONENT_BYTES} bytes"
            ));
        }
    }
    Ok(format!("/{body}"))
}

/// Whether `path` equals `base` or lies under it (both normalized).
pub fn is_at_or_under(path: &str, base: &str) -> bool {
    path == base
        || (path.starts_with(base)
            && (base.ends_with('/') || path.as_bytes().get(base.len()) == Some(&b'/')))
}

/// `key` with exactly one leading `/` (grokmirror 1.x wrote keys without
/// it), unchecked: for keys already known to follow the rules.
pub fn with_leading_slash(key: &str) -> String {
    format!("/{}", key.trim_start_matches('/'))
}

/// The manifest key of `fullpath` under `toplevel`: its path relative to the
/// top level with one leading `/`. `None` when it is not inside `toplevel`.
/// Both paths are compared lexically (`.` and `..` resolved without touching
/// the disk).
pub fn manifest_key(toplevel: &Path, fullpath: &Path) -> Option<String> {
    let top = normalize_lexically(toplevel);
    let full = normalize_lexically(fullpath);
    let rel = full.strip_prefix(&top).ok()?;
    if rel.as_os_str().is_empty() {
        return None;
    }
    Some(format!("/{}", rel.to_string_lossy()))
}

/// The manifest key a command-line argument names: a key
/// (`/pub/a.git`) as given, or a full path below `toplevel` turned into
/// its key. Checking it is [`crate::tree::Tree::key`]'s job.
pub fn key_of_argument(toplevel: &Path, raw: &str) -> String {
    let as_path = Path::new(raw);
    if as_path.is_absolute() {
        if let Some(key) = manifest_key(toplevel, as_path) {
            return key;
        }
    }
    raw.to_string()
}

/// `'/' + relpath(path, toplevel)`: the manifest-style name grokmirror gives
/// any path, even one outside the top level.
pub fn manifest_style(toplevel: &Path, path: &Path) -> String {
    format!("/{}", relpath(path, toplevel).to_string_lossy())
}

/// The full path of a manifest key under `toplevel`. The key is trusted
/// here; untrusted keys are validated before they get this far.
pub fn key_path(toplevel: &Path, key: &str) -> PathBuf {
    toplevel.join(key.trim_start_matches('/'))
}

/// A manifest key (`/pub/scm/git/git.git`) that is safe to use under the
/// top level: one leading `/`, plain components only (no `.`, `..`, empty,
/// NUL or control characters, none too long), and naming none of the
/// replica's own files or folders. Only [`RepoKey::new`] makes one, so code
/// that takes a `RepoKey` needs no checks of its own.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoKey(Arc<str>);

impl RepoKey {
    /// Check `raw` (with or without its leading `/`) against the path rules
    /// and the reserved set.
    pub fn new(raw: &str, reserved: &Reserved) -> Result<RepoKey, String> {
        let key = normalize_path(raw)?;
        reserved.check(&key)?;
        Ok(RepoKey(key.into()))
    }

    /// The key as text (`/a/b.git`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key relative to the top level (`a/b.git`).
    pub fn relative(&self) -> &Path {
        Path::new(&self.0[1..])
    }

    /// The directory the repository sits in, relative to the top level
    /// (empty for a repository at the top).
    pub fn parent(&self) -> &Path {
        self.relative().parent().unwrap_or(Path::new(""))
    }

    /// The repository's own directory name (`b.git`).
    pub fn name(&self) -> &std::ffi::OsStr {
        self.relative()
            .file_name()
            .expect("a checked key has a last component")
    }
}

impl std::ops::Deref for RepoKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for RepoKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RepoKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One thing of ours inside the top level, as a manifest-style path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Own {
    key: String,
    /// A directory (object storage, staging): nothing may lie below it.
    dir: bool,
    /// What it is, for the rejection message.
    what: &'static str,
}

/// The replica's own files and folders inside the top level (local
/// manifest, its state and lock files, the fsck status file, projects.list,
/// logs, the push socket, metrics, the object storage, the staging area),
/// compared by their real location however the config spells them.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    own: Vec<Own>,
}

/// The real location of `path`, even when its last components do not
/// exist yet: the longest existing ancestor canonicalized, the rest
/// appended.
pub fn real_location(path: &Path) -> PathBuf {
    let path = crate::tree::fsutil::absolute(path);
    let mut missing = Vec::new();
    let mut probe = path.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(probe) {
            let mut out = real;
            for part in missing.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (probe.parent(), probe.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                probe = parent;
            }
            _ => return path,
        }
    }
}

impl Reserved {
    /// Nothing reserved (tests, and trees without a replica's files).
    pub fn none() -> Reserved {
        Reserved::default()
    }

    /// The reserved set of a replica configured by `config`.
    pub fn from_config(config: &Config) -> Reserved {
        let top = real_location(&config.core.toplevel);
        let mut r = Reserved::default();
        let manifest = &config.core.manifest;
        r.add_file(&top, manifest, "the local manifest");
        r.add_file(
            &top,
            &crate::formats::last_remote::state_path(manifest),
            "the manifest state file",
        );
        r.add_file(
            &top,
            &crate::formats::freshness::freshness_path(manifest),
            "the freshness file",
        );
        r.add_dir(&top, &config.core.objstore, "the object storage");
        r.add_dir(
            &top,
            &staging::staging_root(&config.core.toplevel),
            "the staging area",
        );
        if let Some(log) = &config.core.log {
            r.add_file(&top, log, "the log file");
        }
        for (section, key, what) in [
            ("fsck", "statusfile", "the fsck status file"),
            ("publish", "statusfile", "the publish status file"),
            ("pull", "projectslist", "projects.list"),
            ("pull", "socket", "the push socket"),
            ("pull", "metrics_file", "the metrics file"),
            ("core", "logfile", "the log file"),
        ] {
            if let Ok(Some(p)) = config.get_path(section, key) {
                r.add_file(&top, &p, what);
            }
        }
        r
    }

    fn add(&mut self, top: &Path, path: &Path, dir: bool, what: &'static str) {
        let real = real_location(path);
        if let Some(key) = crate::tree::key::manifest_key(top, &real) {
            self.own.push(Own { key, dir, what });
        }
    }

    /// Reserve a file and its companions: its lock file and the temporary
    /// files of its atomic rewrites (`.<name>.lock`, `.<name>.*`).
    fn add_file(&mut self, top: &Path, path: &Path, what: &'static str) {
        self.add(top, path, false, what);
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            let name = name.to_string_lossy();
            self.add(top, &parent.join(format!(".{name}.")), false, what);
        }
    }

    /// Reserve a directory and everything below it.
    pub fn add_dir(&mut self, top: &Path, path: &Path, what: &'static str) {
        self.add(top, path, true, what);
    }

    /// Why `key` (normalized) may not be used, if it may not: it names one
    /// of our files or folders, lies below a reserved folder, or would hold
    /// one of our files inside it.
    pub fn check(&self, key: &str) -> Result<(), String> {
        for own in &self.own {
            let companion = own.key.ends_with('.');
            let hit = if companion {
                // `.<name>.` stands for the lock and temp files beside it.
                key.starts_with(&own.key) && !key[own.key.len()..].contains('/')
            } else {
                key == own.key
                    || (own.dir && is_at_or_under(key, &own.key))
                    || is_at_or_under(&own.key, key)
            };
            if hit {
                return Err(format!(
                    "{} would name or contain {} ({}), which belongs to this replica",
                    crate::formats::remote_manifest::printable(key),
                    own.what,
                    own.key.trim_end_matches('.')
                ));
            }
        }
        Ok(())
    }

    /// Folders given directly as manifest-style keys (`/objstore`), for a
    /// tree without a config to read them from.
    pub fn dirs_at<'a>(keys: impl IntoIterator<Item = &'a str>) -> Reserved {
        Reserved {
            own: keys
                .into_iter()
                .map(|k| Own {
                    key: k.to_string(),
                    dir: true,
                    what: "a reserved folder",
                })
                .collect(),
        }
    }

    /// The reserved folders, as manifest-style keys.
    pub fn dirs(&self) -> Vec<String> {
        self.own
            .iter()
            .filter(|o| o.dir)
            .map(|o| o.key.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_repositories_by_key_or_full_path() {
        let top = Path::new("/srv/mirror");
        assert_eq!(key_of_argument(top, "/pub/a.git"), "/pub/a.git");
        assert_eq!(key_of_argument(top, "/srv/mirror/pub/a.git"), "/pub/a.git");
        assert_eq!(key_of_argument(top, "pub/a.git"), "pub/a.git");
    }

    #[test]
    fn keys_from_a_local_manifest() {
        // grok-fsck's cases, from when it had rules of its own.
        assert!(normalize_path("/a/b.git").is_ok());
        assert!(normalize_path("a.git").is_ok());
        assert!(normalize_path("/a/../b.git").is_err());
        assert!(normalize_path("/").is_err());
        assert!(normalize_path("/a//b.git").is_err());
        assert_eq!(with_leading_slash("a.git"), "/a.git");
        assert_eq!(with_leading_slash("/a.git"), "/a.git");
    }

    #[test]
    fn keys() {
        let t = Path::new("/srv/git");
        assert_eq!(
            manifest_key(t, Path::new("/srv/git/a/b.git")).as_deref(),
            Some("/a/b.git")
        );
        assert_eq!(
            manifest_key(t, Path::new("/srv/git/./a/../b.git")).as_deref(),
            Some("/b.git")
        );
        assert_eq!(manifest_key(t, Path::new("/srv/other/b.git")), None);
        assert_eq!(manifest_key(t, Path::new("/srv/git")), None);
        assert_eq!(key_path(t, "/a/b.git"), PathBuf::from("/srv/git/a/b.git"));
        assert_eq!(manifest_style(t, Path::new("/srv/git/a.git")), "/a.git");
        assert_eq!(
            crate::tree::fsutil::companion_path(Path::new("/t/m.js.gz"), "remote"),
            PathBuf::from("/t/.m.js.gz.remote")
        );
        assert_eq!(manifest_style(t, Path::new("/srv/x/a.git")), "/../x/a.git");
        assert_eq!(
            relpath(Path::new("/a"), Path::new("/a")),
            PathBuf::from(".")
        );
    }

    fn config(text: &str, dir: &Path) -> Config {
        let text = text.replace("TOP", &dir.display().to_string());
        Config::from_text(&text, &dir.join("c.conf"), 0).unwrap()
    }

    #[test]
    fn keys_are_checked_once() {
        let r = Reserved::none();
        let k = RepoKey::new("a/b.git", &r).unwrap();
        assert_eq!(k.as_str(), "/a/b.git");
        assert_eq!(k.relative(), Path::new("a/b.git"));
        assert_eq!(k.parent(), Path::new("a"));
        assert_eq!(k.name(), "b.git");
        let top = RepoKey::new("/x.git", &r).unwrap();
        assert_eq!(top.parent(), Path::new(""));
        for bad in ["", "/", "/a/../b", "/a//b", "/a/./b", "/a\0b", "/a/"] {
            assert!(RepoKey::new(bad, &r).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_replicas_own_files_are_reserved_however_spelled() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("top");
        std::fs::create_dir_all(top.join("state")).unwrap();
        // The objstore reached through a symlink outside the top level that
        // leads back in.
        std::os::unix::fs::symlink(&top, t.path().join("alias")).unwrap();
        let c = config(
            &format!(
                "[core]\ntoplevel = TOP/top\nmanifest = TOP/top/state/m.js.gz\n\
                 objstore = {}/alias/objs\nlog = TOP/top/grok.log\n\
                 [fsck]\nstatusfile = TOP/top/./state/fsck.json\n\
                 [pull]\nprojectslist = TOP/top/projects.list\n",
                t.path().display()
            ),
            t.path(),
        );
        let r = Reserved::from_config(&c);
        for bad in [
            "/state/m.js.gz",
            "/state/.m.js.gz.remote",
            "/state/.m.js.gz.lock",
            "/state/.m.js.gz.x1y2.tmp",
            "/state/fsck.json",
            "/state/.fsck.json.lock",
            "/state",
            "/objs",
            "/objs/abc.git",
            "/grok.log",
            "/projects.list",
            "/.grok-pull.staging/x.git",
        ] {
            assert!(RepoKey::new(bad, &r).is_err(), "{bad} accepted");
        }
        for good in ["/statex.git", "/objs.git", "/state2/m.js.gz", "/a/grok.log"] {
            assert!(RepoKey::new(good, &r).is_ok(), "{good} refused");
        }
    }
}
