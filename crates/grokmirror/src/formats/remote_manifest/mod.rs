//! Remote manifests are untrusted input (SPEC §2). Every entry is checked
//! before anything derived from it touches the disk: its path must stay
//! inside the top level, its `head` must be a ref under `refs/` or an object
//! id, its forkgroup a single safe path component, its symlinks and
//! reference paths as safe as its own path, and every field of the right
//! JSON type. A bad entry is rejected on its own, with the reason; the good
//! ones are kept.
//!
//! The manifest is read as a stream ([`parse_untrusted_reader`]), entry by
//! entry, each field against a limit ([`limits`]), so a hostile origin can
//! make us read many bytes but never hold them.

use std::collections::BTreeMap;
use std::io::Read;

use serde::de::Error as _;

use crate::formats::manifest::{self, RepoEntry, StreamFault};
use crate::tree::key::{is_at_or_under, normalize_path, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};

mod entry;
mod tokens;

/// How large each field of a remote entry may be. An entry with a field
/// over its limit is rejected with the field's name, the start of its
/// value and its length; the other entries are not affected.
pub mod limits {
    /// `description`, in bytes: far more than any description file a
    /// repository has (kernel.org's longest is under 200 bytes).
    pub const DESCRIPTION_MAX_BYTES: u64 = 64 * 1024;
    /// `owner` (`gitweb.owner`), in bytes.
    pub const OWNER_MAX_BYTES: u64 = 64 * 1024;
    /// `fingerprint`: a valid one has 40 bytes; this only decides whether
    /// a wrong one is reported as wrong or as too long.
    pub const FINGERPRINT_MAX_BYTES: u64 = 128;
    /// `head`: `ref: ` and a ref name of at most a path's length.
    pub const HEAD_MAX_BYTES: u64 = super::MAX_PATH_BYTES as u64 + 16;
    /// `forkgroup`: one path component.
    pub const FORKGROUP_MAX_BYTES: u64 = super::MAX_COMPONENT_BYTES as u64;
    /// `modified`: a number literal.
    pub const MODIFIED_MAX_BYTES: u64 = 1024;
    /// `symlinks` per entry: a repository reached through more than a
    /// thousand symlinks is not something an origin has by accident, and
    /// each one costs a filesystem operation on every run.
    pub const MAX_SYMLINKS: usize = 1000;
    /// All unknown fields of one entry together (kept so that a newer
    /// writer's additions survive), in bytes of JSON.
    pub const EXTRA_MAX_BYTES: u64 = 64 * 1024;
    /// How much of a value a log line or reason shows.
    pub const SHOWN_BYTES: usize = 200;
}

/// An entry that was not accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The key as it appeared in the manifest (control characters escaped
    /// so it prints on one line).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A remote manifest after validation.
#[derive(Debug, Clone, Default)]
pub struct RemoteManifest {
    /// The accepted entries, keyed by their normalized path (one leading
    /// `/`).
    pub repos: BTreeMap<String, RepoEntry>,
    /// The entries that were rejected.
    pub rejected: Vec<Rejected>,
}

/// What, beyond the built-in rules, a path may not be.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The replica's own files and folders (local manifest, state, status
    /// and lock files, logs, object storage, staging), by real location:
    /// no entry, symlink or reference may name them, lie in the folders or
    /// contain them.
    pub reserved: crate::tree::Reserved,
}

/// Escape a key for a log line: control characters and NUL as `\xNN`.
pub fn printable(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A value for a log line or reason: [`printable`], cut after about
/// [`limits::SHOWN_BYTES`] bytes, with `… (N bytes)` when it is longer
/// (`total` is the whole value's length, which may exceed what was kept).
pub fn shown(value: &str, total: u64) -> String {
    let kept = super::cut_at(value, limits::SHOWN_BYTES);
    let mut out = printable(kept);
    if total > kept.len() as u64 {
        out.push_str(&format!("\u{2026} ({total} bytes)"));
    }
    out
}

/// [`shown`] for a value held whole.
pub fn cut(value: &str) -> String {
    shown(value, value.len() as u64)
}

/// Whether `refname` is a name git accepts (`git check-ref-format`
/// rules), for a ref that must live under `refs/`.
pub fn is_valid_refname(refname: &str) -> bool {
    if !refname.starts_with("refs/") || refname.len() > MAX_PATH_BYTES {
        return false;
    }
    if refname.ends_with('/') || refname.ends_with('.') || refname.contains("@{") {
        return false;
    }
    if refname.contains("..") || refname.contains("//") {
        return false;
    }
    for comp in refname.split('/') {
        if comp.is_empty() || comp.starts_with('.') || comp.ends_with(".lock") {
            return false;
        }
    }
    !refname.chars().any(|c| {
        c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\' | '\u{7f}')
    })
}

/// Whether `head` is acceptable for a `HEAD` file: `ref: refs/...` with a
/// valid ref name, or a full SHA-1 or SHA-256 object id.
pub fn is_valid_head(head: &str) -> bool {
    if let Some(target) = head.strip_prefix("ref: ") {
        return is_valid_refname(target);
    }
    is_object_id(head)
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` is usable as an object-storage repo name (`<name>.git`
/// in the objstore directory): one path component of letters, digits, `.`,
/// `_` and `-`, not starting with `.`.
pub fn is_valid_forkgroup(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_COMPONENT_BYTES - 4
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_reserved(path: &str, rules: &Rules) -> Result<(), String> {
    rules.reserved.check(path)
}

/// Check a key on its own (before its entry is read). Returns it
/// normalized.
fn check_key(raw_key: &str, len: u64, rules: &Rules) -> Result<String, String> {
    if len > MAX_PATH_BYTES as u64 {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    let key = normalize_path(raw_key)?;
    check_reserved(&key, rules)?;
    Ok(key)
}

/// Check one entry on its own, its key already checked.
fn validate_entry(key: &str, mut entry: RepoEntry, rules: &Rules) -> Result<RepoEntry, String> {
    match entry.fingerprint.as_deref() {
        None => return Err("entry has no fingerprint".into()),
        Some(fp) if !is_fingerprint(fp) => {
            return Err(format!(
                "fingerprint {:?} is not 40 lowercase hex digits",
                cut(fp)
            ))
        }
        Some(_) => {}
    }
    if let Some(head) = &entry.head {
        if !is_valid_head(head) {
            return Err(format!(
                "head {:?} is neither 'ref: refs/...' nor an object id",
                cut(head)
            ));
        }
    }
    if let Some(fg) = &entry.forkgroup {
        if !is_valid_forkgroup(fg) {
            return Err(format!(
                "forkgroup {:?} is not a single safe name ([A-Za-z0-9._-], not starting with '.')",
                cut(fg)
            ));
        }
    }
    if let Some(reference) = &entry.reference {
        let normalized = normalize_path(reference)
            .map_err(|why| format!("reference {:?}: {why}", cut(reference)))?;
        check_reserved(&normalized, rules)?;
        entry.reference = Some(normalized);
    }
    let mut links = Vec::with_capacity(entry.symlinks.len());
    for link in &entry.symlinks {
        let normalized =
            normalize_path(link).map_err(|why| format!("symlink {:?}: {why}", cut(link)))?;
        check_reserved(&normalized, rules)?;
        if is_at_or_under(&normalized, key) || is_at_or_under(key, &normalized) {
            return Err(format!(
                "symlink {normalized} overlaps the repository itself"
            ));
        }
        if !links.contains(&normalized) {
            links.push(normalized);
        }
    }
    entry.symlinks = links;
    if entry.owner.as_deref().is_some_and(|o| o.contains('\0')) {
        return Err("owner contains a NUL byte".into());
    }
    if entry
        .description
        .as_deref()
        .is_some_and(|d| d.contains('\0'))
    {
        return Err("description contains a NUL byte".into());
    }
    Ok(entry)
}

/// Parse and validate a remote manifest held in memory (already
/// decompressed); see [`parse_untrusted_reader`].
pub fn parse_untrusted(
    data: &[u8],
    what: &str,
    rules: &Rules,
) -> Result<RemoteManifest, manifest::Error> {
    parse_untrusted_reader(data, what, rules)
}

/// Parse and validate a remote manifest as it is read from `reader`
/// (decompressed, e.g. by [`crate::formats::manifest::decoding_reader`]), entry by
/// entry. Fails only when the whole document is unusable (not JSON, not
/// an object, or the reader failed or went over its limit); single bad
/// entries end up in [`RemoteManifest::rejected`].
pub fn parse_untrusted_reader<R: Read>(
    reader: R,
    what: &str,
    rules: &Rules,
) -> Result<RemoteManifest, manifest::Error> {
    let fail = |fault: tokens::Fault| match fault {
        tokens::Fault::Syntax(msg) => manifest::Error::Parse {
            path: what.to_string(),
            cause: serde_json::Error::custom(msg),
        },
        tokens::Fault::Io(e) => StreamFault::into_manifest_error(e, what),
    };
    let mut t = tokens::Tokens::new(reader);
    match t.peek().map_err(fail)? {
        Some(b'{') => t.begin_object().map_err(fail)?,
        Some(_) => {
            // Read it all anyway, so that broken JSON says so.
            t.skip().map_err(fail)?;
            t.finish().map_err(fail)?;
            return Err(fail(tokens::Fault::Syntax(
                "the manifest is not a JSON object".into(),
            )));
        }
        None => return Err(fail(t.error("EOF while parsing a value"))),
    }
    let mut out = RemoteManifest::default();
    // Keys given with the leading slash win over 1.x-style duplicates; the
    // same raw key given twice: the later one wins (as a JSON object
    // decoded by Python does). Rejections are keyed by raw key for that.
    // `spelled` holds the raw key of an accepted entry only where it is
    // not the key itself (rare: most keys come normalized).
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    let raw_of = |spelled: &BTreeMap<String, String>, out: &RemoteManifest, key: &str| {
        spelled
            .get(key)
            .cloned()
            .or_else(|| out.repos.contains_key(key).then(|| key.to_string()))
    };
    let mut rejected: BTreeMap<String, String> = BTreeMap::new();
    let mut first = true;
    loop {
        let mut checked: Option<Result<String, String>> = None;
        let member = entry::next_member(&mut t, &mut first, |raw, len| {
            let c = check_key(raw, len, rules);
            let ok = c.is_ok();
            checked = Some(c);
            ok
        })
        .map_err(fail)?;
        let Some(member) = member else { break };
        let raw_key = member.key;
        let shown_key = || {
            if member.key_len > MAX_PATH_BYTES as u64 {
                shown(&raw_key, member.key_len)
            } else {
                printable(&raw_key)
            }
        };
        if !rejected.is_empty() {
            rejected.remove(&shown_key());
        }
        let result = match (checked, member.entry) {
            (Some(Ok(key)), Some(Ok(e))) => validate_entry(&key, e, rules).map(|e| (key, e)),
            (Some(Ok(_)), Some(Err(why))) => Err(why),
            (Some(Err(why)), _) => Err(why),
            (None, _) | (Some(Ok(_)), None) => unreachable!("every key is checked first"),
        };
        match result {
            Ok((key, entry)) => {
                if let Some(previous) = raw_of(&spelled, &out, &key) {
                    if previous != raw_key {
                        let (loser, keep_new) = if raw_key.starts_with('/') {
                            (previous, true)
                        } else {
                            (raw_key.clone(), false)
                        };
                        rejected.insert(printable(&loser), format!("duplicate of {key}"));
                        if !keep_new {
                            continue;
                        }
                    }
                }
                if raw_key == key {
                    spelled.remove(&key);
                } else {
                    spelled.insert(key.clone(), raw_key.clone());
                }
                out.repos.insert(key, entry);
            }
            Err(reason) => {
                // A later bad copy of an accepted key replaces it.
                let normalized = normalize_path(&raw_key).ok();
                if let Some(k) =
                    normalized.filter(|k| raw_of(&spelled, &out, k).as_deref() == Some(&raw_key))
                {
                    spelled.remove(&k);
                    out.repos.remove(&k);
                }
                rejected.insert(shown_key(), reason);
            }
        }
    }
    t.finish().map_err(fail)?;
    out.rejected = rejected
        .into_iter()
        .map(|(key, reason)| Rejected { key, reason })
        .collect();
    reject_overlaps(&mut out);
    Ok(out)
}

/// A key that equals `path`, lies above it or lies under it.
fn overlapping_key<'k>(keys: &'k BTreeMap<String, RepoEntry>, path: &str) -> Option<&'k str> {
    let above = path
        .match_indices('/')
        .skip(1)
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path))
        .find_map(|p| keys.get_key_value(p).map(|(k, _)| k.as_str()));
    above.or_else(|| {
        let below = format!("{path}/");
        keys.range::<str, _>((
            std::ops::Bound::Included(below.as_str()),
            std::ops::Bound::Unbounded,
        ))
        .next()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with(&below))
    })
}

/// Cross-entry rules: no repository inside another one or under a
/// symlink, no symlink on top of a repository or claimed twice.
fn reject_overlaps(m: &mut RemoteManifest) {
    let mut bad: BTreeMap<String, String> = BTreeMap::new();
    // A key's possible parents are its own prefixes ending before a '/';
    // look each one up.
    let key_set = &m.repos;
    for key in m.repos.keys() {
        for (i, _) in key.match_indices('/').skip(1) {
            let ancestor = &key[..i];
            if key_set.contains_key(ancestor) {
                bad.insert(
                    key.clone(),
                    format!("it lies inside the repository {ancestor}"),
                );
                break;
            }
        }
    }
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for (key, entry) in &m.repos {
        if bad.contains_key(key) {
            continue;
        }
        for link in &entry.symlinks {
            let on_repo = overlapping_key(key_set, link);
            if let Some(other) = on_repo {
                bad.insert(
                    key.clone(),
                    format!("its symlink {link} overlaps the repository {other}"),
                );
                break;
            }
            if let Some(owner) = claimed.get(link) {
                bad.insert(
                    key.clone(),
                    format!("its symlink {link} is already claimed by {owner}"),
                );
                break;
            }
        }
        if !bad.contains_key(key) {
            for link in &entry.symlinks {
                claimed.insert(link.clone(), key.clone());
            }
        }
    }
    for (key, reason) in bad {
        m.repos.remove(&key);
        m.rejected.push(Rejected { key, reason });
    }
}

#[cfg(test)]
mod tests;
