//! The replica's record of the last remote manifest it fetched (SPEC §1.6):
//! `.<local manifest name>.remote` beside the local manifest, JSON
//! `{"source", "last-fetched", "config-last-modified"}`, read and written by
//! grokmirror too.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::fsutil;
use crate::json;

/// What the last successful manifest fetch recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteState {
    /// The manifest URL (for `file://`, the path without the scheme, as
    /// grokmirror records it).
    pub source: Option<String>,
    /// The origin's `Last-Modified` (http) or the file's mtime, Unix
    /// seconds (grok-pull records one second less when it read the
    /// manifest within the second it was modified); 0 when unknown.
    pub last_fetched: i64,
    /// The config file's mtime when it was recorded; a different value
    /// forces a full check.
    pub config_last_modified: i64,
}

/// The state file of a local manifest: `.<name>.remote` in its directory.
pub fn state_path(manifest: &Path) -> PathBuf {
    let name = manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    manifest
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!(".{name}.remote"))
}

fn seconds(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

impl RemoteState {
    /// Read the state file; a missing or unreadable one reads as "never
    /// fetched", which only costs a full check.
    pub fn read(path: &Path) -> RemoteState {
        let Ok(raw) = std::fs::read(path) else {
            return RemoteState::default();
        };
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&raw) else {
            tracing::debug!("cannot parse {}, ignoring it", path.display());
            return RemoteState::default();
        };
        RemoteState {
            source: map
                .get("source")
                .and_then(Value::as_str)
                .map(str::to_string),
            last_fetched: seconds(map.get("last-fetched")),
            config_last_modified: seconds(map.get("config-last-modified")),
        }
    }

    /// Write the state file atomically.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut map = Map::new();
        map.insert(
            "source".into(),
            self.source
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        map.insert("last-fetched".into(), Value::from(self.last_fetched));
        map.insert(
            "config-last-modified".into(),
            Value::from(self.config_last_modified),
        );
        fsutil::write_atomic(
            path,
            json::to_python_compact(&Value::Object(map)).as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_roundtrip() {
        assert_eq!(
            state_path(Path::new("/t/manifest.js.gz")),
            PathBuf::from("/t/.manifest.js.gz.remote")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".m.remote");
        assert_eq!(RemoteState::read(&p), RemoteState::default());
        let s = RemoteState {
            source: Some("https://example.invalid/manifest.js.gz".into()),
            last_fetched: 1_700_000_000,
            config_last_modified: 1_600_000_000,
        };
        s.write(&p).unwrap();
        assert_eq!(RemoteState::read(&p), s);
        // What grokmirror's json.dump writes reads back too, floats included.
        std::fs::write(
            &p,
            r#"{"source": "/srv/m.js", "last-fetched": 17.0, "config-last-modified": 5}"#,
        )
        .unwrap();
        let r = RemoteState::read(&p);
        assert_eq!((r.last_fetched, r.config_last_modified), (17, 5));
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(RemoteState::read(&p), RemoteState::default());
    }
}
