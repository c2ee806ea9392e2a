//! The replica's record of the last remote manifest it fetched (SPEC §1.6):
//! `.<local manifest name>.remote` beside the local manifest, JSON
//! `{"source", "last-fetched", "config-last-modified"}`, read and written by
//! grokmirror too.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::formats::json;
use crate::tree::fsutil;

/// What the last successful manifest fetch recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteState {
    /// The manifest URL (for `file://`, the path without the scheme, as
    /// grokmirror records it).
    pub source: Option<String>,
    /// The origin's `Last-Modified` (http) or the file's mtime, Unix
    /// seconds, never later than when it was recorded (see
    /// [`record_mtime`]: a time in the future is taken as now, and one
    /// second less is recorded when the manifest was read within the
    /// second it was modified); 0 when unknown.
    pub last_fetched: i64,
    /// The config file's mtime when it was recorded; a different value
    /// forces a full check.
    pub config_last_modified: i64,
}

/// The Unix time now, in seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The state file of a local manifest: `.<name>.remote` in its directory.
pub fn state_path(manifest: &Path) -> PathBuf {
    crate::tree::fsutil::companion_path(manifest, "remote")
}

/// What to record for a manifest modified at `mtime` (Unix seconds, 0 when
/// unknown), read when the origin's clock said `origin_now` and ours says
/// `now`: see [`record_mtime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The `last-fetched` to store.
    pub last_fetched: i64,
    /// The manifest may change again unnoticed within the second it was
    /// read (or its time could not be trusted), so it should be read once
    /// more without If-Modified-Since.
    pub racy: bool,
    /// `mtime` was later than our clock and was taken as `now`.
    pub future: bool,
}

/// Decide what to record for a manifest modified at `mtime`.
///
/// The origin's clock is not trusted: an mtime later than `now` (ours) is
/// taken as `now`, since recording it would make every later
/// If-Modified-Since (or mtime comparison) say "unchanged" until that
/// moment came, and the replica would silently stop following its origin.
/// A manifest read within the second it was modified (by `origin_now`, the
/// clock its mtime comes from) is recorded one second early, so that a
/// rewrite in that same second is not taken for "unchanged"; a time taken
/// as now is such a case too.
pub fn record_mtime(mtime: i64, origin_now: i64, now: i64) -> Recorded {
    let future = mtime > now;
    let mtime = mtime.min(now);
    let racy = mtime > 0 && (future || mtime >= origin_now - 1);
    Recorded {
        last_fetched: if racy { mtime - 1 } else { mtime },
        racy,
        future,
    }
}

/// A recorded `last-fetched` that can be compared with the origin's
/// manifest, given our clock `now`: `None` when nothing was recorded, or
/// when it lies in the future (written by a run that trusted an origin
/// whose clock was ahead, as grokmirror 2.0.12 does), which would hide
/// every change until then; the manifest is then read in full.
pub fn usable_last_fetched(last_fetched: i64, now: i64) -> Option<i64> {
    (last_fetched > 0 && last_fetched <= now).then_some(last_fetched)
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
    fn a_future_mtime_is_taken_as_now() {
        let now = 1_800_000_000;
        let y2100 = 4_102_444_800;
        // From the future: now, and a second early (it may change again now).
        assert_eq!(
            record_mtime(y2100, now, now),
            Recorded {
                last_fetched: now - 1,
                racy: true,
                future: true
            }
        );
        // An origin whose own clock is in the future too is no different.
        assert_eq!(record_mtime(y2100, y2100, now).last_fetched, now - 1);
        // One second ahead is the future as well.
        assert!(record_mtime(now + 1, now, now).future);
        // Within the second it was read: a second early, as before.
        let r = record_mtime(now, now, now);
        assert_eq!((r.last_fetched, r.racy, r.future), (now - 1, true, false));
        assert_eq!(record_mtime(now - 1, now, now).last_fetched, now - 2);
        // Old enough: as it is.
        assert_eq!(
            record_mtime(now - 2, now, now),
            Recorded {
                last_fetched: now - 2,
                racy: false,
                future: false
            }
        );
        // The origin's clock decides raciness for its own times.
        assert!(record_mtime(now - 100, now - 100, now).racy);
        // Unknown stays unknown.
        assert_eq!(
            record_mtime(0, now, now),
            Recorded {
                last_fetched: 0,
                racy: false,
                future: false
            }
        );
    }

    #[test]
    fn a_recorded_time_in_the_future_is_not_used() {
        let now = 1_800_000_000;
        assert_eq!(usable_last_fetched(0, now), None);
        assert_eq!(usable_last_fetched(-5, now), None);
        assert_eq!(usable_last_fetched(now - 10, now), Some(now - 10));
        assert_eq!(usable_last_fetched(now, now), Some(now));
        assert_eq!(usable_last_fetched(now + 1, now), None);
        assert_eq!(usable_last_fetched(4_102_444_800, now), None);
    }

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
