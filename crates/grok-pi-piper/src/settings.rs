//! The pi-piper config file: which section applies to a repository and
//! what it says.
//!
//! The file is read like grokmirror's (configparser with extended
//! interpolation). The section used is the last one, in file order, whose
//! name `NAME` makes `*/NAME/git/*.git` match the repository path as given;
//! without one, `[DEFAULT]`. Every key falls back to `[DEFAULT]`.

use std::path::{Path, PathBuf};

use grokmirror::config::{expand_user, LogLevel};
use grokmirror::config::glob::Glob;
use grokmirror::config::ini::{self, Ini};

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {cause}; pass an existing pi-piper config with -c")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file does not parse, or a value does not interpolate.
    #[error("config file {path}: {cause}; fix the file")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: ini::Error,
    },
    /// No `pipe` for this repository.
    #[error(
        "config file {path} has no pipe for {repo} (section [{section}]); \
         set pipe = COMMAND there or in [DEFAULT] (pipe = None turns piping off)"
    )]
    NoPipe {
        /// The file.
        path: PathBuf,
        /// The repository.
        repo: PathBuf,
        /// The section that applied.
        section: String,
    },
    /// `pipe` does not split into words.
    #[error("config file {path}: pipe = {pipe:?} in [{section}] is not a valid command line; fix its quoting")]
    BadPipe {
        /// The file.
        path: PathBuf,
        /// The value.
        pipe: String,
        /// The section.
        section: String,
    },
    /// `shallow` is not a boolean.
    #[error(
        "config file {path}: shallow = {value:?} in [{section}] is not a boolean; use yes or no"
    )]
    BadShallow {
        /// The file.
        path: PathBuf,
        /// The value.
        value: String,
        /// The section.
        section: String,
    },
}

/// What the config says for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiperSettings {
    /// The section that applied (`DEFAULT` when none matched).
    pub section: String,
    /// The command and its arguments; `None` when `pipe = None`.
    pub pipe: Option<Vec<String>>,
    /// Log file (`log`).
    pub log: Option<PathBuf>,
    /// `loglevel = debug` or not.
    pub loglevel: LogLevel,
    /// `shallow`: keep only the newest piped commit (and newer) on disk.
    pub shallow: bool,
}

/// The section of `ini` that applies to `repo`.
pub fn section_for(ini: &Ini, repo: &Path) -> String {
    let repo = repo.to_string_lossy();
    let mut chosen = ini::DEFAULT_SECTION.to_string();
    for name in ini.sections() {
        if Glob::new(&format!("*/{name}/git/*.git")).is_match(&repo) {
            chosen = name.to_string();
        }
    }
    chosen
}

impl PiperSettings {
    /// Read `config` (a leading `~` is expanded) and pick what applies to
    /// `repo`.
    pub fn load(config: &Path, repo: &Path) -> Result<PiperSettings, Error> {
        let path = expand_user(&config.to_string_lossy());
        let text = std::fs::read_to_string(&path).map_err(|cause| Error::Read {
            path: path.clone(),
            cause,
        })?;
        Self::from_text(&text, &path, repo)
    }

    /// [`PiperSettings::load`] from the file's text.
    pub fn from_text(text: &str, path: &Path, repo: &Path) -> Result<PiperSettings, Error> {
        let parse = |cause| Error::Parse {
            path: path.to_path_buf(),
            cause,
        };
        let ini = Ini::parse(text).map_err(parse)?;
        let section = section_for(&ini, repo);
        let get = |key: &str| ini.get(&section, key).map_err(parse);
        let pipe = match get("pipe")? {
            None => {
                return Err(Error::NoPipe {
                    path: path.to_path_buf(),
                    repo: repo.to_path_buf(),
                    section,
                })
            }
            Some(p) if p == "None" => None,
            Some(p) => match shlex::split(&p) {
                Some(words) if !words.is_empty() => Some(words),
                _ => {
                    return Err(Error::BadPipe {
                        path: path.to_path_buf(),
                        pipe: p,
                        section,
                    })
                }
            },
        };
        let log = get("log")?
            .filter(|l| !l.is_empty())
            .map(|l| expand_user(&l));
        let loglevel = match get("loglevel")?.as_deref() {
            Some("debug") => LogLevel::Debug,
            _ => LogLevel::Info,
        };
        let shallow = match get("shallow")? {
            None => false,
            Some(v) => ini::parse_bool(&v).ok_or_else(|| Error::BadShallow {
                path: path.to_path_buf(),
                value: v.clone(),
                section: section.clone(),
            })?,
        };
        Ok(PiperSettings {
            section,
            pipe,
            log,
            loglevel,
            shallow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, repo: &str) -> Result<PiperSettings, Error> {
        PiperSettings::from_text(text, Path::new("/c.conf"), Path::new(repo))
    }

    #[test]
    fn the_last_matching_section_wins_and_defaults_fill_in() {
        let text = "[DEFAULT]\npipe = /bin/cat -n\nshallow = yes\n\
                    [lkml]\nlog = /tmp/${pipe}.log\n\
                    [l*]\nloglevel = debug\n\
                    [git]\npipe = None\n";
        let s = load(text, "/srv/lkml/git/0.git").unwrap();
        assert_eq!(s.section, "l*");
        assert_eq!(s.pipe, Some(vec!["/bin/cat".to_string(), "-n".to_string()]));
        assert!(s.shallow);
        assert_eq!(s.loglevel, LogLevel::Debug);
        assert_eq!(s.log, None);
        let s = load(text, "/srv/lkml/git/0.git/").unwrap();
        assert_eq!(s.section, "DEFAULT");
        let s = load(text, "/srv/git/git/3.git").unwrap();
        assert_eq!(s.pipe, None);
        let s = load(
            "[DEFAULT]\npipe = x\n[lkml]\nlog = ~/p.log\n",
            "/a/lkml/git/1.git",
        )
        .unwrap();
        assert!(s.log.unwrap().is_absolute());
    }

    #[test]
    fn unusable_values_are_errors() {
        assert!(matches!(
            load("[a]\npipe = x\n", "/srv/b/git/0.git"),
            Err(Error::NoPipe { .. })
        ));
        assert!(matches!(
            load("[DEFAULT]\npipe = 'x\n", "/r"),
            Err(Error::BadPipe { .. })
        ));
        assert!(matches!(
            load("[DEFAULT]\npipe = x\nshallow = maybe\n", "/r"),
            Err(Error::BadShallow { .. })
        ));
    }
}
