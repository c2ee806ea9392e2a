//! The grokmirror config file (SPEC §1.7): Python configparser syntax with
//! extended interpolation. The `[core]` section is resolved here, the way
//! grokmirror resolves it on load (top level made real and checked,
//! defaults for `objstore` and `manifest` filled in); each program reads its
//! own sections through the typed accessors.

pub mod check;
pub mod glob;
pub mod ini;
pub mod options;

use std::path::{Path, PathBuf};

use crate::tree::toplevel::{self, Need, Refusal};
use glob::GlobList;
use ini::Ini;

/// What can be wrong with a config file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist.
    #[error("config file {0} does not exist")]
    NotFound(PathBuf),
    /// The file could not be read.
    #[error("cannot read config file {path}: {cause}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The file is not valid INI, or a value's interpolation is broken.
    #[error("config file {path}: {cause}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        cause: ini::Error,
    },
    /// There is no `[core]` section.
    #[error("config file {0} has no [core] section (is it a grokmirror 1.x config? see the README on migrating)")]
    NoCore(PathBuf),
    /// A required option is missing.
    #[error("config file {path}: [{section}] {key} must be set")]
    Missing {
        /// The config file.
        path: PathBuf,
        /// Section name.
        section: String,
        /// Option name.
        key: String,
    },
    /// An option has a value of the wrong kind.
    #[error("config file {path}: [{section}] {key} = {value:?} is not {expected}")]
    BadValue {
        /// The config file.
        path: PathBuf,
        /// Section name.
        section: String,
        /// Option name.
        key: String,
        /// The value as written (interpolated).
        value: String,
        /// What kind of value was expected.
        expected: &'static str,
    },
    /// The top level does not exist, is not a directory, or cannot be
    /// read or written by the user this runs as.
    #[error("config file {path}: [core] toplevel {toplevel} cannot be used: {why}")]
    Toplevel {
        /// The config file.
        path: PathBuf,
        /// The top level as configured.
        toplevel: String,
        /// Why it is unusable, and what to do.
        why: String,
    },
    /// The top level reaches far beyond a mirror (the root of the file
    /// system, a home directory) and `[core] allow_any_toplevel` is off.
    #[error("config file {path}: [core] toplevel {toplevel} is refused: {why}, so every git directory under it would be walked and written into; point it at the mirror's own directory, or set [core] allow_any_toplevel = yes if this is really meant")]
    WideToplevel {
        /// The config file.
        path: PathBuf,
        /// The top level, resolved.
        toplevel: PathBuf,
        /// What makes it too wide.
        why: String,
    },
    /// `[pull] shard`, `GROKMIRROR_SHARD` or `[pull] shard_peers` is
    /// refused.
    #[error("config file {path}: {what}: {cause}")]
    Shard {
        /// The config file.
        path: PathBuf,
        /// Where the value came from (`[pull] shard`, the environment).
        what: String,
        /// What is wrong with it.
        cause: crate::shard::Error,
    },
}

/// How much goes into the log file (`[core] loglevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Progress and problems.
    Info,
    /// Everything, including every git command.
    Debug,
}

/// The resolved `[core]` section.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Where the repositories live (real path, checked writable).
    pub toplevel: PathBuf,
    /// The local manifest (`${toplevel}/manifest.js.gz` by default).
    pub manifest: PathBuf,
    /// Where object-storage repos live (`${toplevel}/objstore` by default).
    pub objstore: PathBuf,
    /// Log file (`log`, or `logfile` as grok-manifest spells it).
    pub log: Option<PathBuf>,
    /// Log file verbosity.
    pub loglevel: LogLevel,
    /// Copy objects into object storage with plumbing instead of `git fetch`.
    pub objstore_uses_plumbing: bool,
    /// Repos (manifest paths or full paths) never fetched into object storage.
    pub private: GlobList,
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Its modification time (Unix seconds), recorded in `.remote` state so
    /// a changed config forces a full check.
    pub last_modified: i64,
    /// The raw document, with the resolved core values written back as
    /// grokmirror does (so `${core:toplevel}` elsewhere sees the real path).
    pub ini: Ini,
    /// The resolved `[core]` section.
    pub core: CoreConfig,
}

/// Expand a leading `~` or `~user` the way Python's `os.path.expanduser`
/// does.
pub fn expand_user(path: &str) -> PathBuf {
    let Some(rest) = path.strip_prefix('~') else {
        return PathBuf::from(path);
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        std::env::var_os("HOME").map(PathBuf::from).or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
    } else {
        nix::unistd::User::from_name(user)
            .ok()
            .flatten()
            .map(|u| u.dir)
    };
    match home {
        Some(h) => PathBuf::from(format!("{}{}", h.display(), tail)),
        None => PathBuf::from(path),
    }
}

impl Config {
    /// Read and resolve a config file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = match std::fs::read(path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(path.to_path_buf()))
            }
            Err(cause) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    cause,
                })
            }
        };
        let last_modified = std::fs::metadata(path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Config::from_text(&text, path, last_modified)
    }

    /// Resolve config text; `path` is used for messages only.
    pub fn from_text(text: &str, path: &Path, last_modified: i64) -> Result<Config, Error> {
        let syntax = |cause| Error::Syntax {
            path: path.to_path_buf(),
            cause,
        };
        let mut ini = Ini::parse(text).map_err(syntax)?;
        if !ini.sections().any(|s| s == "core") {
            return Err(Error::NoCore(path.to_path_buf()));
        }
        let raw_top = ini
            .get("core", "toplevel")
            .map_err(syntax)?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Missing {
                path: path.to_path_buf(),
                section: "core".into(),
                key: "toplevel".into(),
            })?;
        let toplevel_err = |why: String| Error::Toplevel {
            path: path.to_path_buf(),
            toplevel: raw_top.clone(),
            why,
        };
        let toplevel = std::fs::canonicalize(expand_user(&raw_top)).map_err(|e| {
            toplevel_err(format!(
                "{e}; create it for the user this runs as, or fix [core] toplevel"
            ))
        })?;
        let allow_any = match ini.get("core", "allow_any_toplevel").map_err(syntax)? {
            None => false,
            Some(v) => ini::parse_bool(&v).ok_or_else(|| Error::BadValue {
                path: path.to_path_buf(),
                section: "core".into(),
                key: "allow_any_toplevel".into(),
                value: v,
                expected: "a boolean (yes/no)",
            })?,
        };
        // grokmirror requires a top level it can write to in every program
        // reading a config; so do we, and a directory it can walk.
        match toplevel::check(&toplevel, Need::ReadWrite, allow_any) {
            Ok(()) => {}
            Err(Refusal::Unusable(why)) => {
                return Err(toplevel_err(format!(
                    "{why}; fix [core] toplevel, or its permissions for the user this runs as"
                )))
            }
            Err(Refusal::TooWide(why)) => {
                return Err(Error::WideToplevel {
                    path: path.to_path_buf(),
                    toplevel,
                    why,
                })
            }
        }
        // Write the resolved values back, escaped, so interpolation elsewhere
        // sees them, exactly as grokmirror mutates its config object.
        let escaped = |p: &Path| p.to_string_lossy().replace('$', "$$");
        ini.set("core", "toplevel", &escaped(&toplevel));

        let objstore = match ini.get("core", "objstore").map_err(syntax)? {
            Some(o) if !o.is_empty() => expand_user(&o),
            _ => toplevel.join("objstore"),
        };
        ini.set("core", "objstore", &escaped(&objstore));
        let manifest = match ini.get("core", "manifest").map_err(syntax)? {
            Some(m) if !m.is_empty() => expand_user(&m),
            _ => toplevel.join("manifest.js.gz"),
        };
        ini.set("core", "manifest", &escaped(&manifest));

        let mut config = Config {
            path: path.to_path_buf(),
            last_modified,
            ini,
            core: CoreConfig {
                toplevel,
                manifest,
                objstore,
                log: None,
                loglevel: LogLevel::Info,
                objstore_uses_plumbing: false,
                private: GlobList::default(),
            },
        };
        let log = match config.get("core", "log")? {
            Some(l) if !l.is_empty() => Some(l),
            _ => config.get("core", "logfile")?.filter(|l| !l.is_empty()),
        };
        config.core.log = log.map(|l| expand_user(&l));
        config.core.loglevel = match config.get("core", "loglevel")?.as_deref() {
            Some("debug") => LogLevel::Debug,
            _ => LogLevel::Info,
        };
        config.core.objstore_uses_plumbing =
            config.get_bool("core", "objstore_uses_plumbing", false)?;
        config.core.private = config.get_globs("core", "private", "")?;
        Ok(config)
    }

    fn syntax(&self, cause: ini::Error) -> Error {
        Error::Syntax {
            path: self.path.clone(),
            cause,
        }
    }

    fn bad(&self, section: &str, key: &str, value: String, expected: &'static str) -> Error {
        Error::BadValue {
            path: self.path.clone(),
            section: section.to_string(),
            key: key.to_string(),
            value,
            expected,
        }
    }

    /// Whether `[section]` exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.ini.sections().any(|s| s == section)
    }

    /// The interpolated value, `None` when unset (or the section is absent).
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, Error> {
        if section != ini::DEFAULT_SECTION && !self.has_section(section) {
            return Ok(None);
        }
        self.ini.get(section, key).map_err(|e| self.syntax(e))
    }

    /// The value, or `default` when unset.
    pub fn get_or(&self, section: &str, key: &str, default: &str) -> Result<String, Error> {
        Ok(self
            .get(section, key)?
            .unwrap_or_else(|| default.to_string()))
    }

    /// A boolean (`yes/no/true/false/on/off/1/0`, any case); `default` when
    /// unset.
    pub fn get_bool(&self, section: &str, key: &str, default: bool) -> Result<bool, Error> {
        match self.get(section, key)? {
            None => Ok(default),
            Some(v) => {
                ini::parse_bool(&v).ok_or_else(|| self.bad(section, key, v, "a boolean (yes/no)"))
            }
        }
    }

    /// An integer; `default` when unset.
    pub fn get_int(&self, section: &str, key: &str, default: i64) -> Result<i64, Error> {
        match self.get(section, key)? {
            None => Ok(default),
            Some(v) => ini::parse_int(&v).ok_or_else(|| self.bad(section, key, v, "an integer")),
        }
    }

    /// An optional integer: `None` when unset.
    pub fn get_opt_int(&self, section: &str, key: &str) -> Result<Option<i64>, Error> {
        match self.get(section, key)? {
            None => Ok(None),
            Some(v) => ini::parse_int(&v)
                .map(Some)
                .ok_or_else(|| self.bad(section, key, v, "an integer")),
        }
    }

    /// One glob per line; `default` (also one per line) when unset. An
    /// option that is set but empty yields no globs.
    pub fn get_globs(&self, section: &str, key: &str, default: &str) -> Result<GlobList, Error> {
        let value = self.get_or(section, key, default)?;
        Ok(GlobList::from_lines(&value))
    }

    /// The non-empty, trimmed lines of a multi-line value.
    pub fn get_lines(&self, section: &str, key: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .get_or(section, key, "")?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// A path value with `~` expanded; `None` when unset or empty.
    pub fn get_path(&self, section: &str, key: &str) -> Result<Option<PathBuf>, Error> {
        Ok(self
            .get(section, key)?
            .filter(|v| !v.is_empty())
            .map(|v| expand_user(&v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_defaults_and_interpolation_of_resolved_toplevel() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let text = format!(
            "[core]\ntoplevel = {}/./\nlog = ${{toplevel}}/log\n[pull]\nprojectslist = ${{core:toplevel}}/projects.list\npull_threads = 3\npurge = Yes\n",
            dir.path().display()
        );
        let c = Config::from_text(&text, Path::new("t.conf"), 0).unwrap();
        assert_eq!(c.core.toplevel, real);
        assert_eq!(c.core.manifest, real.join("manifest.js.gz"));
        assert_eq!(c.core.objstore, real.join("objstore"));
        assert_eq!(c.core.log, Some(real.join("log")));
        assert_eq!(
            c.get_path("pull", "projectslist").unwrap(),
            Some(real.join("projects.list"))
        );
        assert_eq!(c.get_int("pull", "pull_threads", 0).unwrap(), 3);
        assert!(c.get_bool("pull", "purge", false).unwrap());
        assert!(!c.get_bool("fsck", "anything", false).unwrap());
    }

    #[test]
    fn errors_name_file_section_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[core]\ntoplevel = {}\n[pull]\npurge = maybe\n",
            dir.path().display()
        );
        let c = Config::from_text(&text, Path::new("/etc/g.conf"), 0).unwrap();
        let err = c.get_bool("pull", "purge", false).unwrap_err().to_string();
        assert!(
            err.contains("/etc/g.conf") && err.contains("[pull] purge") && err.contains("maybe"),
            "{err}"
        );

        let err = Config::from_text("[pull]\nx=1\n", Path::new("/etc/g.conf"), 0).unwrap_err();
        assert!(matches!(err, Error::NoCore(_)));
        let err = Config::from_text("[core]\ntoplevel = /nonexistent/x\n", Path::new("g"), 0)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }

    #[test]
    fn unusable_or_wide_top_levels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let text = format!("[core]\ntoplevel = {}\n", file.display());
        let err = Config::from_text(&text, Path::new("/etc/g.conf"), 0).unwrap_err();
        assert!(
            matches!(&err, Error::Toplevel { why, .. } if why.starts_with("it is not a directory")),
            "{err}"
        );
        let err =
            Config::from_text("[core]\ntoplevel = /\n", Path::new("/etc/g.conf"), 0).unwrap_err();
        assert!(matches!(err, Error::WideToplevel { .. }), "{err}");
        let text = "[core]\ntoplevel = /\nallow_any_toplevel = maybe\n";
        let err = Config::from_text(text, Path::new("/etc/g.conf"), 0).unwrap_err();
        assert!(err.to_string().contains("allow_any_toplevel"), "{err}");
        let text = "[core]\ntoplevel = /\nallow_any_toplevel = yes\n";
        if !toplevel::probe(Path::new("/")).writable {
            return; // "/" is refused anyway for someone who cannot write to it
        }
        assert_eq!(
            Config::from_text(text, Path::new("/etc/g.conf"), 0)
                .unwrap()
                .core
                .toplevel,
            PathBuf::from("/")
        );
    }

    #[test]
    fn expands_home() {
        if let Some(h) = std::env::var_os("HOME") {
            assert_eq!(
                expand_user("~/x"),
                PathBuf::from(format!("{}/x", PathBuf::from(h).display()))
            );
        }
        assert_eq!(expand_user("/abs"), PathBuf::from("/abs"));
    }
}
