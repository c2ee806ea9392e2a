//! The routing map for the front of a sharded mirror: which shard holds
//! each repository, as a file an nginx `map` block `include`s or an
//! HAProxy map file.
//!
//! nginx (the file is the body of a `map`; the value is the shard index):
//!
//! ```text
//! "/pub/scm/git/git.git" 2;
//! ```
//!
//! HAProxy (looked up exactly, with `map`, on the repository cut from the
//! path: `map_dir` would match `/x.git` inside `/pub/x.git/info/refs`, and
//! `map_beg` `/x.git` at the start of `/x.gitfoo.git`):
//!
//! ```text
//! /pub/scm/git/git.git 2
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The form of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines of an nginx `map` block: `"key" shard;`.
    Nginx,
    /// An HAProxy map file: `key shard`, for `map` (an exact match).
    Haproxy,
}

/// The map text for `owners` (key to shard), one line per repository in
/// key order. Keys a map file cannot carry (not starting with `/`, which
/// nginx could take for a regex or a keyword; with a control character;
/// with a space or `#` for HAProxy) are left out and returned apart, for
/// the caller to report.
pub fn render(owners: &BTreeMap<String, u32>, format: Format) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut skipped = Vec::new();
    for (key, shard) in owners {
        if !key.starts_with('/') || key.chars().any(char::is_control) {
            skipped.push(key.clone());
            continue;
        }
        match format {
            Format::Nginx => {
                let quoted = key.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(out, "\"{quoted}\" {shard};");
            }
            Format::Haproxy => {
                if key.contains([' ', '\t', '#']) {
                    skipped.push(key.clone());
                    continue;
                }
                let _ = writeln!(out, "{key} {shard}");
            }
        }
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats() {
        let owners: BTreeMap<String, u32> = [
            ("/a.git".to_string(), 0),
            ("/b \"q\".git".to_string(), 2),
            ("/c\n.git".to_string(), 1),
            ("~^/.*".to_string(), 1),
        ]
        .into();
        let (nginx, skipped) = render(&owners, Format::Nginx);
        assert_eq!(nginx, "\"/a.git\" 0;\n\"/b \\\"q\\\".git\" 2;\n");
        assert_eq!(skipped, vec!["/c\n.git".to_string(), "~^/.*".to_string()]);
        let (haproxy, skipped) = render(&owners, Format::Haproxy);
        assert_eq!(haproxy, "/a.git 0\n");
        assert_eq!(skipped.len(), 3);
    }
}
