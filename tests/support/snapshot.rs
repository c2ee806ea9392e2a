//! What a directory holds, to prove that nothing under it changed: every
//! path (not following symlinks) with its kind, and for files their size
//! and a hash of their contents, for symlinks their target.

use std::collections::BTreeMap;
use std::path::Path;

use sha1::{Digest, Sha1};

/// Path (relative to `dir`) -> what is there.
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p);
                "dir".to_string()
            } else {
                let data = std::fs::read(&p).unwrap_or_default();
                format!("file {} {}", data.len(), hex::encode(Sha1::digest(&data)))
            };
            out.insert(rel, what);
        }
    }
    out
}

/// The names directly in `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
