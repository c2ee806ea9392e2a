//! grok-bundle's output published under `PREFIX/bundles/`: in each
//! directory the bundles before the bundle list that names them, each file
//! only when its size or time changed; a bundle that left the directory
//! (an increment folded into a rebuilt full bundle) is removed from the
//! bucket after the new list is up. A clone still holding the old list
//! then fails to get that bundle and git fetches the rest instead, which
//! is what bundle-uri is specified to do.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use grokmirror::tree::{Dir, Kind};
use tracing::info;

use crate::bucket::{Bucket, Caching};
use crate::plan;

/// The bundle list file grok-bundle writes in each directory.
const LIST: &str = "bundle-list";
/// The deepest directory looked into.
const MAX_DEPTH: usize = 32;
/// The most files published.
const MAX_FILES: usize = 1_000_000;

/// A bundle output file found: path below the output directory, size and
/// modification time as `size:mtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path below the output directory.
    pub rel: String,
    /// `size:mtime`, what tells a changed file.
    pub stamp: String,
    /// Its size.
    pub size: u64,
}

/// Whether a file name is one grok-bundle writes for readers.
fn is_published(name: &str) -> bool {
    name == LIST || name.ends_with(".bundle")
}

/// The files to upload, in order: in each directory, the bundles before
/// the list. `found` is every file, `known` what was uploaded (key to
/// stamp).
pub fn uploads<'a>(found: &'a [Found], known: &BTreeMap<String, String>) -> Vec<&'a Found> {
    let mut out: Vec<&Found> = found
        .iter()
        .filter(|f| known.get(&f.rel) != Some(&f.stamp))
        .collect();
    out.sort_by_key(|f| {
        let (dir, name) = f.rel.rsplit_once('/').unwrap_or(("", &f.rel));
        (dir.to_string(), name == LIST, name.to_string())
    });
    out
}

/// Walk `dir` for published files.
fn walk(dir: &Dir, rel: &Path, depth: usize, out: &mut Vec<Found>) -> anyhow::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for name in dir.names()? {
        let Ok(name) = String::from_utf8(name) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match dir.kind_of(&name)? {
            Some(Kind::Dir) => walk(&dir.open_dir(&name)?, &rel.join(&name), depth + 1, out)?,
            Some(Kind::File) if is_published(&name) => {
                let meta = dir
                    .open_file(&name)?
                    .metadata()
                    .with_context(|| format!("cannot stat {}", dir.shown_join(&name).display()))?;
                let Some(rel) = rel.join(&name).to_str().map(String::from) else {
                    continue;
                };
                out.push(Found {
                    rel,
                    stamp: format!("{}:{}", meta.len(), meta.mtime()),
                    size: meta.len(),
                });
                if out.len() > MAX_FILES {
                    anyhow::bail!(
                        "more than {MAX_FILES} bundle files under {}",
                        dir.shown().display()
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Publish `outdir` to `prefix/bundles/`; `known` (the status) is updated
/// with what went up and what was removed. Files and bytes uploaded.
pub fn publish(
    bucket: &Bucket,
    prefix: &str,
    outdir: &Path,
    known: &mut BTreeMap<String, String>,
) -> anyhow::Result<(usize, u64)> {
    let root = Dir::open_root(outdir)
        .with_context(|| format!("cannot open [publish] bundles = {}", outdir.display()))?;
    let mut found = Vec::new();
    walk(&root, &PathBuf::new(), 0, &mut found)?;
    let base = plan::bucket_path(prefix, "bundles");
    let (mut files, mut bytes) = (0, 0);
    for f in uploads(&found, known) {
        let (parent, name) = match f.rel.rsplit_once('/') {
            Some((p, n)) => (root.open_dir(p)?, n.to_string()),
            None => (root.clone(), f.rel.clone()),
        };
        let mut file = parent.open_file(&name)?;
        let key = format!("{base}/{}", f.rel);
        if name == LIST {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut data)?;
            bucket.put_bytes(&key, data, Caching::Revalidate, "text/plain; charset=utf-8")?;
        } else {
            bucket.put_reader(
                &key,
                &mut file,
                f.size,
                &parent.shown_join(&name).display().to_string(),
            )?;
        }
        known.insert(f.rel.clone(), f.stamp.clone());
        files += 1;
        bytes += f.size;
    }
    let present: std::collections::BTreeSet<&str> = found.iter().map(|f| f.rel.as_str()).collect();
    let gone: Vec<String> = known
        .keys()
        .filter(|k| !present.contains(k.as_str()))
        .cloned()
        .collect();
    for rel in gone {
        bucket.delete(&format!("{base}/{rel}"))?;
        known.remove(&rel);
    }
    if files > 0 {
        info!(
            "bundles: {files} files, {:.1} MiB published to {base}/",
            bytes as f64 / 1048576.0
        );
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_go_before_their_list_and_unchanged_ones_stay() {
        let f = |rel: &str, stamp: &str| Found {
            rel: rel.into(),
            stamp: stamp.into(),
            size: 1,
        };
        let found = [
            f("a/bundle-list", "1:1"),
            f("a/incremental.bundle", "1:1"),
            f("a/clone.bundle", "1:1"),
            f("b/bundle-list", "1:2"),
            f("b/clone.bundle", "9:9"),
        ];
        let mut known = BTreeMap::new();
        known.insert("b/clone.bundle".to_string(), "9:9".to_string());
        let order: Vec<&str> = uploads(&found, &known)
            .iter()
            .map(|f| f.rel.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "a/clone.bundle",
                "a/incremental.bundle",
                "a/bundle-list",
                "b/bundle-list"
            ]
        );
        assert!(is_published("clone.bundle") && is_published("bundle-list"));
        assert!(!is_published(".fingerprint") && !is_published("clone.bundle.tmp"));
    }
}
