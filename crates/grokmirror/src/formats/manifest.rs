//! The manifest (SPEC §1.1): a JSON object keyed by repository path, plain or
//! gzip, written atomically, guarded by a lock file shared with grokmirror.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
#[cfg(test)]
use flate2::{write::GzEncoder, Compression};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::formats::json::{Emitter, PyJson};
use crate::lock::{self, file_lock_path, FileLock};
use crate::tree::fsutil;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One repository's record in a manifest.
///
/// Fields are declared in key order; `extra` keeps keys we don't know so a
/// newer writer's additions survive a rewrite by us.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepoEntry {
    /// `description` file contents, unless empty or git's placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SHA-1 of the repo's `git show-ref` output (SPEC §1.2).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Name of the object-storage repo this one uses, without `.git`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forkgroup: Option<String>,
    /// `HEAD` contents, e.g. `ref: refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Newest committer date among the refs, Unix seconds.
    pub modified: i64,
    /// `gitweb.owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Manifest key of the repo whose objects this one borrows; always
    /// written (as `null` when none) because grokmirror 1.x clients need it.
    #[serde(default)]
    pub reference: Option<String>,
    /// Manifest-style paths of symlinks that point at this repo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<String>,
    /// Keys this version does not know about, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// `modified` is an integer, but accept a float (or null) from other
/// writers rather than throwing the whole manifest away.
pub(crate) fn lenient_seconds<E: serde::de::Error>(v: Value) -> Result<i64, E> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| E::custom("modified is out of range")),
        other => Err(E::custom(format!("modified must be a number, not {other}"))),
    }
}

// Written by hand rather than derived: `#[serde(flatten)]` buffers every
// entry before decoding it, which doubled the time a hook spends reading a
// large manifest. Later keys win over earlier duplicates, as in Python.
impl<'de> Deserialize<'de> for RepoEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> serde::de::Visitor<'de> for EntryVisitor {
            type Value = RepoEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a repository entry (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RepoEntry, A::Error> {
                let mut e = RepoEntry::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "description" => e.description = map.next_value()?,
                        "fingerprint" => e.fingerprint = map.next_value()?,
                        "forkgroup" => e.forkgroup = map.next_value()?,
                        "head" => e.head = map.next_value()?,
                        "modified" => e.modified = lenient_seconds(map.next_value()?)?,
                        "owner" => e.owner = map.next_value()?,
                        "reference" => e.reference = map.next_value()?,
                        "symlinks" => {
                            e.symlinks =
                                map.next_value::<Option<Vec<String>>>()?.unwrap_or_default()
                        }
                        _ => {
                            let v: Value = map.next_value()?;
                            e.extra.insert(key, v);
                        }
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_map(EntryVisitor)
    }
}

impl PyJson for RepoEntry {
    fn emit(&self, e: &mut Emitter, level: usize) {
        let mut fields: Vec<(&str, &dyn PyJson)> = Vec::with_capacity(8 + self.extra.len());
        if let Some(v) = &self.description {
            fields.push(("description", v));
        }
        fields.push(("fingerprint", &self.fingerprint));
        if let Some(v) = &self.forkgroup {
            fields.push(("forkgroup", v));
        }
        if let Some(v) = &self.head {
            fields.push(("head", v));
        }
        fields.push(("modified", &self.modified));
        if let Some(v) = &self.owner {
            fields.push(("owner", v));
        }
        fields.push(("reference", &self.reference));
        if !self.symlinks.is_empty() {
            fields.push(("symlinks", &self.symlinks));
        }
        for (k, v) in &self.extra {
            if !fields.iter().any(|(known, _)| known == k) {
                fields.push((k.as_str(), v));
            }
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        e.object(level, fields.into_iter());
    }
}

impl PyJson for Manifest {
    fn emit(&self, e: &mut Emitter, level: usize) {
        e.object(
            level,
            self.repos
                .iter()
                .map(|(k, v)| (k.as_str(), v as &dyn PyJson)),
        );
    }
}

/// A whole manifest: manifest key -> entry, in key order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The entries.
    pub repos: BTreeMap<String, RepoEntry>,
}

/// What can go wrong reading or writing a manifest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {cause}")]
    Read {
        /// Path or URL.
        path: String,
        /// The underlying error.
        cause: io::Error,
    },
    /// The data looked like gzip but did not decompress.
    #[error("manifest {path} is not a valid gzip stream: {cause}")]
    Decompress {
        /// Path or URL.
        path: String,
        /// The underlying error.
        cause: io::Error,
    },
    /// The (decompressed) data is larger than the configured cap.
    #[error("manifest {path} is larger than the {limit}-byte limit; refusing to read it (raise the limit if it is genuine)")]
    TooLarge {
        /// Path or URL.
        path: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The data is not a JSON object of the expected shape.
    #[error("cannot parse manifest {path}: {cause}")]
    Parse {
        /// Path or URL.
        path: String,
        /// The underlying error.
        cause: serde_json::Error,
    },
    /// The new manifest could not be written; the old one is untouched.
    #[error("cannot write manifest {path} (the previous manifest is unchanged): {cause}")]
    Write {
        /// The manifest path.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// The manifest lock could not be taken.
    #[error(transparent)]
    Lock(#[from] lock::Error),
}

/// Decompress `raw` if it starts with the gzip magic, refusing to produce
/// more than `limit` bytes. `what` names the source in errors.
pub fn decode_bytes(raw: Vec<u8>, limit: Option<u64>, what: &str) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        path: what.to_string(),
        limit: limit.unwrap_or(u64::MAX),
    };
    if let Some(limit) = limit {
        if raw.len() as u64 > limit {
            return Err(too_large());
        }
    }
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    // JSON deflates about eightfold: one allocation, not a dozen doublings.
    let guess = raw
        .len()
        .saturating_mul(8)
        .min(limit.unwrap_or(1 << 30) as usize);
    let mut out = Vec::with_capacity(guess);
    // Several members (ours, when large) read as one stream.
    let decoder = MultiGzDecoder::new(raw.as_slice());
    let cap = limit.map(|l| l.saturating_add(1)).unwrap_or(u64::MAX);
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|cause| Error::Decompress {
            path: what.to_string(),
            cause,
        })?;
    if let Some(limit) = limit {
        if out.len() as u64 > limit {
            return Err(too_large());
        }
    }
    Ok(out)
}

/// Why a stream of manifest bytes stopped, carried inside an
/// [`io::Error`] so that it passes through the gzip decoder unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StreamFault {
    /// More bytes than the limit (compressed or decompressed).
    #[error("more than {0} bytes")]
    TooLarge(u64),
    /// The source itself failed (a read error, a dropped connection).
    #[error("{0}")]
    Source(io::Error),
}

impl StreamFault {
    /// The [`Error`] for an error from a [`decoding_reader`]
    /// stream: over the limit, a failed source, or (anything else) bad
    /// gzip data.
    pub fn into_manifest_error(e: io::Error, what: &str) -> Error {
        let path = what.to_string();
        if !e.get_ref().is_some_and(|i| i.is::<StreamFault>()) {
            return Error::Decompress { path, cause: e };
        }
        let inner = e.into_inner().expect("checked above");
        match *inner.downcast::<StreamFault>().expect("checked above") {
            StreamFault::TooLarge(limit) => Error::TooLarge { path, limit },
            StreamFault::Source(cause) => Error::Read { path, cause },
        }
    }
}

/// A reader that fails with [`StreamFault::TooLarge`] past `left` bytes.
/// With `mark`, the inner reader's own errors are wrapped as
/// [`StreamFault::Source`] (so they can be told from gzip errors).
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
    mark: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mark = |e: io::Error, mark: bool| {
            if !mark || e.get_ref().is_some_and(|i| i.is::<StreamFault>()) {
                e
            } else {
                io::Error::other(StreamFault::Source(e))
            }
        };
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Exactly at the limit is fine; one byte more is not.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => Err(io::Error::other(StreamFault::TooLarge(self.limit))),
                Err(e) => Err(mark(e, self.mark)),
            };
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let got = self
            .inner
            .read(&mut buf[..n])
            .map_err(|e| mark(e, self.mark))?;
        self.left -= got as u64;
        Ok(got)
    }
}

/// A stream of manifest JSON from `raw`: decompressed if it starts with
/// the gzip magic, and failing (see [`StreamFault::into_manifest_error`])
/// when either the raw or the decompressed bytes exceed `limit`, so that
/// a gzip bomb costs at most `limit` bytes read, never held.
pub fn decoding_reader<'a, R: Read + 'a>(
    raw: R,
    limit: Option<u64>,
    what: &str,
) -> Result<Box<dyn Read + 'a>, Error> {
    let limit = limit.unwrap_or(u64::MAX);
    let mut raw = Capped {
        inner: raw,
        left: limit,
        limit,
        mark: true,
    };
    let mut head = Vec::with_capacity(2);
    while head.len() < 2 {
        let mut b = [0u8; 1];
        match raw.read(&mut b) {
            Ok(0) => break,
            Ok(_) => head.push(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamFault::into_manifest_error(e, what)),
        }
    }
    let gzip = head == GZIP_MAGIC;
    let stream = io::Cursor::new(head).chain(raw);
    if !gzip {
        return Ok(Box::new(stream));
    }
    Ok(Box::new(Capped {
        inner: MultiGzDecoder::new(stream),
        left: limit,
        limit,
        mark: false,
    }))
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Manifest {
        Manifest::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.repos.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
    }

    /// Parse JSON text (already decompressed) with every entry well-formed.
    pub fn from_json_slice(data: &[u8], what: &str) -> Result<Manifest, Error> {
        Manifest::from_json_vec(data.to_vec(), what)
    }

    /// [`Manifest::from_json_slice`] of text it may take apart: large
    /// ones are parsed on two threads ([`super::manifest_parallel`]).
    pub fn from_json_vec(data: Vec<u8>, what: &str) -> Result<Manifest, Error> {
        let repos = super::manifest_parallel::parse(data, what)?;
        Ok(Manifest { repos })
    }

    /// The manifest as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(&self.repos).expect("manifest entries always serialize")
    }

    /// JSON text as grokmirror writes it (`pretty`: indented, sorted).
    pub fn to_json(&self, pretty: bool) -> String {
        // About 180 bytes an entry; reserve once.
        let mut e = Emitter::new(pretty.then_some(2), 64 + self.repos.len() * 200);
        self.emit(&mut e, 0);
        e.finish()
    }

    /// Read a manifest file (plain or gzip, detected by content). `Ok(None)`
    /// when the file does not exist.
    pub fn read(path: &Path) -> Result<Option<Manifest>, Error> {
        let what = path.display().to_string();
        let raw = match std::fs::read(path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => return Err(Error::Read { path: what, cause }),
        };
        if let Some(repos) = super::manifest_members::read_all(&raw) {
            return Ok(Some(Manifest { repos }));
        }
        let data = decode_bytes(raw, None, &what)?;
        Manifest::from_json_vec(data, &what).map(Some)
    }

    /// Read our own local manifest the way grokmirror does: missing means
    /// empty, and one that is not valid JSON is logged loudly and treated as
    /// empty so that it gets regenerated. A file we cannot read or
    /// decompress (a truncated gzip, say) is an error instead: rewriting it
    /// would hide whatever damaged it, so it is left for the operator.
    pub fn read_local(path: &Path) -> Result<Manifest, Error> {
        match Manifest::read(path) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Ok(Manifest::new()),
            Err(e @ Error::Parse { .. }) => {
                tracing::error!("{e}; treating it as empty, it will be regenerated");
                Ok(Manifest::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Write atomically: gzip when the name ends in `.gz` (as indexed
    /// members, [`super::manifest_members`]), plain otherwise.
    pub fn write(&self, path: &Path, pretty: bool) -> Result<(), Error> {
        let gzip = path.to_string_lossy().ends_with(".gz");
        fsutil::write_atomic_with(path, |file| {
            let mut out = io::BufWriter::new(file);
            if gzip {
                super::manifest_members::write_all(self, pretty, &mut out)?;
            } else {
                out.write_all(self.to_json(pretty).as_bytes())?;
            }
            out.flush()
        })
        .map_err(|cause| Error::Write {
            path: path.to_path_buf(),
            cause,
        })
    }
}

/// Take the manifest's lock file (`.<name>.lock` beside it), waiting for any
/// other writer, ours or grokmirror's.
pub fn lock(path: &Path) -> Result<FileLock, Error> {
    let held = crate::lock::acquire(&file_lock_path(path), crate::lock::Wait::Forever)?;
    Ok(held.expect("Wait::Forever returns the lock or an error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new();
        m.repos.insert(
            "/a.git".into(),
            RepoEntry {
                fingerprint: Some("f".repeat(40)),
                modified: 1_700_000_000,
                head: Some("ref: refs/heads/main".into()),
                description: Some("Caf\u{e9}".into()),
                ..Default::default()
            },
        );
        m
    }

    #[test]
    fn roundtrip_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["m.js", "m.js.gz"] {
            let p = dir.path().join(name);
            sample().write(&p, false).unwrap();
            assert_eq!(Manifest::read(&p).unwrap().unwrap(), sample());
        }
        let raw = std::fs::read(dir.path().join("m.js.gz")).unwrap();
        assert!(raw.starts_with(&GZIP_MAGIC));
    }

    #[test]
    fn reference_is_always_written_and_unknown_keys_survive() {
        let text = r#"{"/x.git": {"fingerprint": "ab", "modified": 5.0, "head": "ref: refs/heads/m", "reference": null, "new_field": [1]}}"#;
        let m = Manifest::from_json_slice(text.as_bytes(), "t").unwrap();
        assert_eq!(m.repos["/x.git"].modified, 5);
        let out = m.to_json(false);
        assert!(out.contains(r#""reference": null"#), "{out}");
        assert!(out.contains(r#""new_field": [1]"#), "{out}");
    }

    #[test]
    fn unparseable_local_manifest_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.js");
        std::fs::write(&p, b"{not json").unwrap();
        assert!(Manifest::read_local(&p).unwrap().is_empty());
        assert!(Manifest::read(&p).is_err());
    }

    #[test]
    fn gzip_bomb_is_capped() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&vec![b' '; 10_000_000]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 100_000);
        let err = decode_bytes(bomb, Some(1_000_000), "bomb").unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }));
    }
}
