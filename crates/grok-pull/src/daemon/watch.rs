//! Watching files for changes (inotify, through the `notify` crate): the
//! config file, and a `file://` manifest.
//!
//! The directory holding the file is watched rather than the file itself:
//! both are usually replaced by a rename (grok-manifest writes atomically,
//! editors save that way), which a watch on the old file would never see.
//! Events for other names in that directory are ignored, except that a
//! file that is a relative symlink is also watched through the first
//! component of its target: a Kubernetes ConfigMap volume updates
//! `NAME.conf -> ..data/NAME.conf` by swapping the `..data` symlink, and
//! nothing happens to `NAME.conf` itself. Several events for one change
//! (create, write, rename) reach the engine as several [`Changed`]
//! messages; it waits a moment before reading the file.

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
        let mut names: Vec<OsString> = vec![path.file_name()?.to_os_string()];
        if let Ok(target) = std::fs::read_link(path) {
            if let Some(std::path::Component::Normal(first)) = target.components().next() {
                if target.is_relative() {
                    names.push(first.to_os_string());
                }
            }
        }
        let handler = move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            if event
                .paths
                .iter()
                .any(|p| p.file_name().is_some_and(|n| names.iter().any(|w| w == n)))
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
    async fn sees_a_configmap_style_symlink_swap() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("v1")).unwrap();
        std::fs::write(d.join("v1/m.conf"), "1").unwrap();
        std::os::unix::fs::symlink("v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/m.conf", d.join("m.conf")).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _w = FileWatch::new(&d.join("m.conf"), Changed::Config, tx).unwrap();
        std::fs::create_dir(d.join("v2")).unwrap();
        std::fs::write(d.join("v2/m.conf"), "2").unwrap();
        std::os::unix::fs::symlink("v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("an event within 30s");
        assert_eq!(got, Some(Changed::Config));
    }

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
