//! Decisions free of I/O: what a dumb-HTTP reader of a repository needs,
//! in which order it goes up so that no reader ever sees a ref whose
//! objects are not there yet, and which files the bucket may drop.
//!
//! The order of a publish is: object files (loose objects, then each pack
//! before its index, since a reader only looks for a pack it found an
//! index of), then `objects/info/packs` and `objects/info/http-alternates`,
//! then `info/refs`, then `HEAD`. A reader that got the new `info/refs`
//! therefore finds every object it names, in this repository or in the
//! object storage published before it.

use std::collections::{BTreeMap, BTreeSet};

/// The dumb-HTTP list of refs.
pub const INFO_REFS: &str = "info/refs";
/// The dumb-HTTP list of packs.
pub const INFO_PACKS: &str = "objects/info/packs";
/// Where a dumb-HTTP reader looks for the repositories lending objects.
pub const HTTP_ALTERNATES: &str = "objects/info/http-alternates";
/// The repository's HEAD.
pub const HEAD: &str = "HEAD";

/// One ref as `git for-each-ref` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// The full name (`refs/heads/master`).
    pub name: String,
    /// The object it points at.
    pub oid: String,
    /// For an annotated tag, the object it peels to.
    pub peeled: Option<String>,
}

/// The refs in `for-each-ref --format='%(objectname) %(refname) %(*objectname)'`
/// output; a line that does not have that shape is skipped.
pub fn parse_refs(text: &str) -> Vec<Ref> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let oid = parts.next()?;
            let name = parts.next()?;
            let peeled = parts.next().unwrap_or("").trim();
            if !is_oid(oid) || !name.starts_with("refs/") {
                return None;
            }
            Some(Ref {
                name: name.to_string(),
                oid: oid.to_string(),
                peeled: is_oid(peeled).then(|| peeled.to_string()),
            })
        })
        .collect()
}

/// A full object id, SHA-1 or SHA-256, in lower-case hex.
fn is_oid(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64)
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `info/refs` as `git update-server-info` writes it: each ref by name,
/// an annotated tag followed by what it peels to.
pub fn info_refs(refs: &[Ref]) -> String {
    let mut sorted: Vec<&Ref> = refs.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut out = String::new();
    for r in sorted {
        out.push_str(&format!("{}\t{}\n", r.oid, r.name));
        if let Some(peeled) = &r.peeled {
            out.push_str(&format!("{peeled}\t{}^{{}}\n", r.name));
        }
    }
    out
}

/// The text grokmirror's fingerprint is taken of (`git show-ref`'s
/// output) for these refs.
pub fn show_ref_text(refs: &[Ref]) -> Vec<u8> {
    let mut sorted: Vec<&Ref> = refs.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut out = Vec::new();
    for r in sorted {
        out.extend_from_slice(format!("{} {}\n", r.oid, r.name).as_bytes());
    }
    out
}

/// `objects/info/packs` for these packs (base names, `pack-<hash>`).
pub fn info_packs(packs: &[String]) -> String {
    let mut out = String::new();
    for p in packs {
        out.push_str(&format!("P {p}.pack\n"));
    }
    out.push('\n');
    out
}

/// `objects/info/http-alternates` of the repository at bucket path
/// `repo` borrowing from the one at `lender`: a path relative to the
/// borrower's `objects/` URL, which git resolves by taking the first
/// `../` as leaving `objects/` and each further one as leaving a
/// directory of the repository's own path.
pub fn http_alternates(repo: &str, lender: &str) -> String {
    let depth = repo.split('/').filter(|c| !c.is_empty()).count();
    format!(
        "{}{}/objects\n",
        "../".repeat(depth + 1),
        lender.trim_matches('/')
    )
}

/// Whether `rel` (a path inside a repository) is one of the object
/// files published: a loose object or a pack with its index.
pub fn is_object_file(rel: &str) -> bool {
    if let Some(name) = rel.strip_prefix("objects/pack/") {
        return name.starts_with("pack-")
            && !name.contains('/')
            && (name.ends_with(".pack") || name.ends_with(".idx"));
    }
    match rel.strip_prefix("objects/").and_then(|r| r.split_once('/')) {
        Some((dir, name)) => {
            dir.len() == 2
                && u8::from_str_radix(dir, 16).is_ok()
                && !name.contains('/')
                && (name.len() == 38 || name.len() == 62)
                && name.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// An object file of the repository on disk: its path inside the
/// repository and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFile {
    /// `objects/pack/pack-<hash>.pack`, `objects/ab/cdef…`.
    pub rel: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Which of `local` the bucket (`remote`: path inside the repository to
/// size) lacks, in upload order: loose objects first, then each pack
/// followed by its index. A file of the same name and size is taken as
/// there: object files are named by their content.
pub fn missing_object_files<'a>(
    local: &'a [ObjectFile],
    remote: &BTreeMap<String, u64>,
) -> Vec<&'a ObjectFile> {
    let mut missing: Vec<&ObjectFile> = local
        .iter()
        .filter(|f| remote.get(&f.rel) != Some(&f.size))
        .collect();
    missing.sort_by_key(|f| (upload_rank(&f.rel), f.rel.clone()));
    missing
}

/// Loose objects (0), then packs (1) before indexes (2); a pack and its
/// index sort together by their shared base name within the ranks, which
/// keeps every pack before every index: enough for the rule.
fn upload_rank(rel: &str) -> u8 {
    if rel.ends_with(".idx") {
        2
    } else if rel.ends_with(".pack") {
        1
    } else {
        0
    }
}

/// What to do about the object files the bucket holds that the
/// repository no longer lists (repacked away, pruned).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Remove these now: unlisted for longer than the grace.
    pub delete: Vec<String>,
    /// Unlisted, with the time they were first seen so: the new record.
    pub pending: BTreeMap<String, i64>,
}

/// Which of the bucket's object files (`remote`) to remove now, given
/// those of the repository (`local`), when each unlisted one was first
/// seen unlisted (`pending`, bucket-wide keys of this repository), the
/// time and the grace in seconds. A file listed again is forgotten.
pub fn expire(
    remote: &BTreeMap<String, u64>,
    local: &BTreeSet<&str>,
    pending: &BTreeMap<String, i64>,
    now: i64,
    grace: i64,
) -> Expiry {
    let mut out = Expiry::default();
    for rel in remote.keys().filter(|r| is_object_file(r)) {
        if local.contains(rel.as_str()) {
            continue;
        }
        let since = pending.get(rel).copied().unwrap_or(now);
        if now - since >= grace {
            out.delete.push(rel.clone());
        } else {
            out.pending.insert(rel.clone(), since);
        }
    }
    out
}

/// The bucket path of a repository: `prefix` and the repository's path
/// below the top level, without leading or trailing slashes.
pub fn bucket_path(prefix: &str, rel: &str) -> String {
    let rel = rel.trim_matches('/');
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn refs_parse_and_list_like_update_server_info() {
        let refs = parse_refs(&format!(
            "{A} refs/tags/v1 {B}\n{B} refs/heads/master \nnot a ref\n{A} HEAD \n"
        ));
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].peeled.as_deref(), Some(B));
        assert_eq!(refs[1].peeled, None);
        assert_eq!(
            info_refs(&refs),
            format!("{B}\trefs/heads/master\n{A}\trefs/tags/v1\n{B}\trefs/tags/v1^{{}}\n")
        );
        assert_eq!(
            show_ref_text(&refs),
            format!("{B} refs/heads/master\n{A} refs/tags/v1\n").into_bytes()
        );
    }

    #[test]
    fn packs_list_ends_with_a_blank_line() {
        assert_eq!(info_packs(&[]), "\n");
        assert_eq!(
            info_packs(&["pack-a".into(), "pack-b".into()]),
            "P pack-a.pack\nP pack-b.pack\n\n"
        );
    }

    #[test]
    fn alternates_climb_out_of_objects_and_the_path() {
        // Checked against git 2.39 and 2.47 over loopback HTTP.
        assert_eq!(
            http_alternates("pub/a/b/fork.git", "pub/objstore/g.git"),
            "../../../../../pub/objstore/g.git/objects\n"
        );
        assert_eq!(
            http_alternates("f.git", "o/g.git"),
            "../../o/g.git/objects\n"
        );
    }

    #[test]
    fn object_files_are_recognised() {
        assert!(is_object_file("objects/pack/pack-ab.pack"));
        assert!(is_object_file("objects/pack/pack-ab.idx"));
        assert!(!is_object_file("objects/pack/pack-ab.bitmap"));
        assert!(!is_object_file("objects/pack/tmp_pack_x"));
        assert!(is_object_file(&format!("objects/ab/{}", &A[2..])));
        assert!(!is_object_file("objects/info/packs"));
        assert!(!is_object_file(
            "objects/zz/1111111111111111111111111111111111111111"
        ));
        assert!(!is_object_file("info/refs"));
    }

    #[test]
    fn missing_files_go_loose_then_packs_then_indexes() {
        let f = |rel: &str, size| ObjectFile {
            rel: rel.into(),
            size,
        };
        let local = [
            f("objects/pack/pack-b.idx", 10),
            f("objects/pack/pack-b.pack", 100),
            f("objects/pack/pack-a.pack", 100),
            f("objects/pack/pack-a.idx", 10),
            f("objects/11/22", 5),
        ];
        let mut remote = BTreeMap::new();
        remote.insert("objects/pack/pack-a.pack".to_string(), 100);
        remote.insert("objects/pack/pack-a.idx".to_string(), 9); // partial: again
        let order: Vec<&str> = missing_object_files(&local, &remote)
            .iter()
            .map(|f| f.rel.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "objects/11/22",
                "objects/pack/pack-b.pack",
                "objects/pack/pack-a.idx",
                "objects/pack/pack-b.idx"
            ]
        );
    }

    #[test]
    fn unlisted_files_wait_out_the_grace() {
        let mut remote = BTreeMap::new();
        for r in [
            "objects/pack/pack-old.pack",
            "objects/pack/pack-old.idx",
            "objects/pack/pack-new.pack",
            "objects/info/packs",
        ] {
            remote.insert(r.to_string(), 1);
        }
        let local: BTreeSet<&str> = ["objects/pack/pack-new.pack"].into();
        // First seen unlisted: kept, remembered.
        let first = expire(&remote, &local, &BTreeMap::new(), 1000, 100);
        assert!(first.delete.is_empty());
        assert_eq!(first.pending.len(), 2);
        assert_eq!(first.pending["objects/pack/pack-old.idx"], 1000);
        // Within the grace: still kept, the first time kept.
        let again = expire(&remote, &local, &first.pending, 1050, 100);
        assert!(again.delete.is_empty());
        assert_eq!(again.pending, first.pending);
        // Past it: removed.
        let late = expire(&remote, &local, &first.pending, 1100, 100);
        assert_eq!(late.delete.len(), 2);
        assert!(late.pending.is_empty());
        // Listed again: forgotten.
        let back: BTreeSet<&str> = [
            "objects/pack/pack-new.pack",
            "objects/pack/pack-old.pack",
            "objects/pack/pack-old.idx",
        ]
        .into();
        assert_eq!(
            expire(&remote, &back, &first.pending, 1100, 100),
            Expiry::default()
        );
        // No grace: at once.
        assert_eq!(
            expire(&remote, &local, &BTreeMap::new(), 5, 0).delete.len(),
            2
        );
    }

    #[test]
    fn bucket_paths_join_without_doubled_slashes() {
        assert_eq!(bucket_path("", "/a/b.git"), "a/b.git");
        assert_eq!(bucket_path("pub/", "/a/b.git"), "pub/a/b.git");
        assert_eq!(bucket_path("/x/y", "objstore/g.git"), "x/y/objstore/g.git");
    }
}
