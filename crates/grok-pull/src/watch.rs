//! Watching files for changes (inotify, through the `notify` crate): the
//! config file, and a `file://` manifest.
//!
//! The directory holding the file is watched rather than the file itself:
//! both are usually replaced by a rename (grok-manifest writes atomically,
//! editors save that way), which a watch on the old file would never see.
//! Events for other names in that directory are ignored. Several events
//! for one change (create, write, rename) reach the engine as several
//! [`Changed`] messages; it waits for them to settle.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

/// Which watched file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// The config file.
    Config,
    /// The `file://` manifest.
    Manifest,
}

/// A watch on one file; stops when dropped.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    path: PathBuf,
}

impl FileWatch {
    /// Watch `path`, sending `what` to `tx` on every change. `None` (with
    /// a warning) when the directory can't be watched: polling still works.
    pub fn new(path: &Path, what: Changed, tx: UnboundedSender<Changed>) -> Option<FileWatch> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name: OsString = path.file_name()?.to_os_string();
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            if event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
            {
                let _ = tx.send(what);
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                warn!(
                    "cannot watch {} for changes ({e}); relying on polling",
                    path.display()
                );
                return None;
            }
        };
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            warn!(
                "cannot watch {} for changes ({e}); relying on polling",
                dir.display()
            );
            return None;
        }
        Some(FileWatch {
            _watcher: watcher,
            path: path.to_path_buf(),
        })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_a_file_replaced_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.js");
        std::fs::write(&file, "1").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = FileWatch::new(&file, Changed::Manifest, tx).unwrap();
        let tmp = dir.path().join(".m.js.tmp");
        std::fs::write(&tmp, "2").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30s");
        assert_eq!(got, Some(Changed::Manifest));
    }
}
