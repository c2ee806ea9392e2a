//! grok-fsck's status file (SPEC §1.6): JSON keyed by the full path of each
//! repository, recording when it was last checked and repacked, when it is
//! due next, and the fingerprint it had then.
//!
//! grokmirror reads and writes the same file, so every entry keeps the
//! fields we do not know about, dates are `YYYY-MM-DD` (`lastcheck` may be
//! `never`), and a missing or unparseable field is read as "unknown" rather
//! than throwing the file away.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::formats::json;
use crate::lock::{self, file_lock_path, FileLock};
use crate::tree::fsutil;

/// The `lastcheck` value of a repository that was never checked.
pub const NEVER: &str = "never";

/// Field names, as grokmirror spells them.
const LASTCHECK: &str = "lastcheck";
const NEXTCHECK: &str = "nextcheck";
const LASTREPACK: &str = "lastrepack";
const LASTFULLREPACK: &str = "lastfullrepack";
const FINGERPRINT: &str = "fingerprint";
const ELAPSED: &str = "s_elapsed";

/// What can go wrong with the status file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read status file {path}: {source}")]
    Read {
        /// The status file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not a JSON object.
    #[error("cannot parse status file {path} ({why}); fix or remove it (removing it reschedules every repository)")]
    Parse {
        /// The status file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The file could not be written; the previous one is untouched.
    #[error("cannot write status file {path} (the previous one is unchanged): {source}")]
    Write {
        /// The status file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The lock could not be taken.
    #[error(transparent)]
    Lock(#[from] lock::Error),
}

/// Format a date the way the status file stores it (`%Y-%m-%d`).
pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Parse a status-file date the way Python's `strptime('%Y-%m-%d')` does
/// (it also accepts unpadded months and days).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// One repository's record. All fields are kept as read; the accessors
/// interpret them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoStatus {
    fields: Map<String, Value>,
}

impl RepoStatus {
    /// The record grokmirror creates for a repository it has just found:
    /// never checked, due on `nextcheck`, with the fingerprint it has now.
    pub fn new_repo(nextcheck: NaiveDate, fingerprint: Option<&str>) -> RepoStatus {
        let mut s = RepoStatus::default();
        s.fields
            .insert(LASTCHECK.into(), Value::String(NEVER.into()));
        s.set_nextcheck(nextcheck);
        s.set_fingerprint(fingerprint);
        s
    }

    fn date(&self, key: &str) -> Option<NaiveDate> {
        self.fields.get(key)?.as_str().and_then(parse_date)
    }

    fn set_date(&mut self, key: &str, date: NaiveDate) {
        self.fields
            .insert(key.into(), Value::String(format_date(date)));
    }

    /// When it was last checked; `None` for `never` or an unreadable value.
    pub fn lastcheck(&self) -> Option<NaiveDate> {
        self.date(LASTCHECK)
    }

    /// When it is due next; `None` when missing or unreadable (the caller
    /// decides, grokmirror would crash).
    pub fn nextcheck(&self) -> Option<NaiveDate> {
        self.date(NEXTCHECK)
    }

    /// When it was last repacked.
    pub fn lastrepack(&self) -> Option<NaiveDate> {
        self.date(LASTREPACK)
    }

    /// When it was last fully repacked.
    pub fn lastfullrepack(&self) -> Option<NaiveDate> {
        self.date(LASTFULLREPACK)
    }

    /// The fingerprint recorded after the last check or repack (`null` for
    /// object-storage repos in grokmirror's files).
    pub fn fingerprint(&self) -> Option<&str> {
        self.fields.get(FINGERPRINT)?.as_str()
    }

    /// Seconds the last check or repack took.
    pub fn elapsed(&self) -> Option<u64> {
        let v = self.fields.get(ELAPSED)?;
        v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
    }

    /// Record a check.
    pub fn set_lastcheck(&mut self, date: NaiveDate) {
        self.set_date(LASTCHECK, date);
    }

    /// Schedule the next check.
    pub fn set_nextcheck(&mut self, date: NaiveDate) {
        self.set_date(NEXTCHECK, date);
    }

    /// Record a repack.
    pub fn set_lastrepack(&mut self, date: NaiveDate) {
        self.set_date(LASTREPACK, date);
    }

    /// Record a full repack.
    pub fn set_lastfullrepack(&mut self, date: NaiveDate) {
        self.set_date(LASTFULLREPACK, date);
    }

    /// Record the fingerprint (`null` when there is none).
    pub fn set_fingerprint(&mut self, fingerprint: Option<&str>) {
        let v = fingerprint.map_or(Value::Null, |f| Value::String(f.into()));
        self.fields.insert(FINGERPRINT.into(), v);
    }

    /// Record how long the work took.
    pub fn set_elapsed(&mut self, seconds: u64) {
        self.fields.insert(ELAPSED.into(), Value::from(seconds));
    }

    /// The record as JSON.
    pub fn to_value(&self) -> Value {
        Value::Object(self.fields.clone())
    }
}

/// The whole status file: full repository path -> record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// The records, by full path as written in the file.
    pub repos: BTreeMap<String, RepoStatus>,
}

impl Status {
    /// Parse the file's text. Entries that are not objects are dropped with
    /// a warning (grokmirror would crash on them later).
    pub fn from_json_slice(data: &[u8], path: &Path) -> Result<Status, Error> {
        let parse_err = |why: String| Error::Parse {
            path: path.to_path_buf(),
            why,
        };
        let value: Value = serde_json::from_slice(data).map_err(|e| parse_err(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(parse_err("it is not a JSON object".into()));
        };
        let mut repos = BTreeMap::new();
        for (key, entry) in map {
            match entry {
                Value::Object(fields) => {
                    repos.insert(key, RepoStatus { fields });
                }
                other => {
                    tracing::warn!(
                        "status file {}: entry {key} is {other}, not an object; dropped",
                        path.display()
                    );
                }
            }
        }
        Ok(Status { repos })
    }

    /// Read the status file; a missing file is an empty status.
    pub fn read(path: &Path) -> Result<Status, Error> {
        match std::fs::read(path) {
            Ok(data) => Status::from_json_slice(&data, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Status::default()),
            Err(source) => Err(Error::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The file's text: two-space indented JSON as grokmirror writes it
    /// (with keys sorted, which grokmirror's reader does not mind).
    pub fn to_json(&self) -> String {
        let map: Map<String, Value> = self
            .repos
            .iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect();
        json::to_python_pretty(&Value::Object(map))
    }

    /// Replace the file atomically, so a crash leaves the old or the new
    /// file, never a torn one, and wait until it is on disk.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        fsutil::write_atomic(path, self.to_json().as_bytes()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Replace the file atomically without waiting for the disk: after each
    /// repository, so that a killed run loses no record (the kernel keeps
    /// the renamed file) without an fsync per repository; a run ends with
    /// [`Status::write`].
    pub fn write_quickly(&self, path: &Path) -> Result<(), Error> {
        fsutil::replace_quickly(path, self.to_json().as_bytes()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Take the status file's lock (`.<name>.lock` beside it) if nobody holds
/// it: one grok-fsck per tree, ours or grokmirror's. `Ok(None)` when another
/// run holds it.
pub fn try_lock(path: &Path) -> Result<Option<FileLock>, Error> {
    Ok(crate::lock::acquire(
        &file_lock_path(path),
        crate::lock::Wait::No,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn reads_grokmirror_file_and_keeps_unknown_fields() {
        let text = r#"{
  "/srv/a.git": {
    "lastcheck": "never",
    "nextcheck": "2026-12-07",
    "fingerprint": "1ad1791ad72d10c307874906dc8ca9f48efdc47d"
  },
  "/srv/objstore/x.git": {
    "lastcheck": "2026-11-21",
    "nextcheck": "2026-12-19",
    "fingerprint": null,
    "lastrepack": "2026-11-21",
    "lastfullrepack": "2026-11-21",
    "s_elapsed": 3,
    "quick_repack_count": 2
  },
  "/srv/bad.git": 5
}"#;
        let s = Status::from_json_slice(text.as_bytes(), Path::new("st")).unwrap();
        assert_eq!(s.repos.len(), 2);
        let a = &s.repos["/srv/a.git"];
        assert_eq!(a.lastcheck(), None);
        assert_eq!(a.nextcheck(), Some(d("2026-12-07")));
        assert_eq!(
            a.fingerprint(),
            Some("1ad1791ad72d10c307874906dc8ca9f48efdc47d")
        );
        let o = &s.repos["/srv/objstore/x.git"];
        assert_eq!(o.fingerprint(), None);
        assert_eq!(o.lastfullrepack(), Some(d("2026-11-21")));
        assert_eq!(o.elapsed(), Some(3));
        let out = s.to_json();
        assert!(out.contains("\"quick_repack_count\": 2"), "{out}");
        assert!(out.contains("\"fingerprint\": null"), "{out}");
        let again = Status::from_json_slice(out.as_bytes(), Path::new("st")).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn new_repo_record_matches_grokmirror() {
        let r = RepoStatus::new_repo(d("2026-01-05"), Some("ab"));
        assert_eq!(
            r.to_value(),
            serde_json::json!({"lastcheck": "never", "nextcheck": "2026-01-05", "fingerprint": "ab"})
        );
        assert_eq!(parse_date("2026-1-5"), Some(d("2026-01-05")));
        assert_eq!(format_date(d("2026-1-5")), "2026-01-05");
    }

    #[test]
    fn broken_file_is_an_error_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("st.js");
        assert!(Status::read(&p).unwrap().repos.is_empty());
        std::fs::write(&p, "[1, 2]").unwrap();
        assert!(matches!(Status::read(&p), Err(Error::Parse { .. })));
        std::fs::write(&p, "{trunc").unwrap();
        let err = Status::read(&p).unwrap_err().to_string();
        assert!(err.contains("st.js"), "{err}");
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("st.js");
        let mut s = Status::default();
        let mut r = RepoStatus::new_repo(d("2026-02-01"), None);
        r.set_lastcheck(d("2026-01-01"));
        r.set_elapsed(7);
        s.repos.insert("/x/\u{e9}.git".into(), r);
        s.write(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\\u00e9"), "ensure_ascii like Python: {text}");
        assert_eq!(Status::read(&p).unwrap(), s);
    }
}
