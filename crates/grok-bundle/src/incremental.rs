//! Incremental bundles: when a repository changed and its full
//! `clone.bundle` is there, what is new since that bundle goes into
//! `incremental.bundle` (everything since the full one, so there is never
//! more than one to apply), and the bundle list names both with git's
//! `creationToken`s. The full bundle keeps its inode and mtime, so a CDN
//! or rsync moves only the increment. Once the increment would outgrow a
//! quarter of the full bundle, the full one is rebuilt instead and the
//! increment goes.
//!
//! The decisions here are free of I/O: reading a bundle's header, whether
//! an increment still belongs to the full bundle beside it, when to
//! rebuild, and the list's text.

use std::collections::BTreeSet;

/// The increment's file name.
pub const INCREMENT_FILE: &str = "incremental.bundle";
/// The increment may be at most this fraction (1/N) of the full bundle.
pub const MAX_INCREMENT_SHARE: u64 = 4;
/// The most header bytes read from a bundle (a repository with 100,000
/// refs has a header of about 7 MB).
pub const MAX_HEADER_BYTES: usize = 64 << 20;

/// Why a bundle header is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not a v2 or v3 git bundle.
    #[error("it is not a git bundle (v2 or v3)")]
    NotABundle,
    /// No blank line ends the header within the bytes read.
    #[error("its header does not end within {MAX_HEADER_BYTES} bytes")]
    Unterminated,
    /// A line that is neither a prerequisite, a ref nor a capability.
    #[error("its header has a malformed line {0}")]
    BadLine(usize),
}

/// What a bundle's header says: the commits it needs and the objects its
/// refs point at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Prerequisites (`-<oid>` lines).
    pub prerequisites: BTreeSet<String>,
    /// The ids its refs point at.
    pub tips: BTreeSet<String>,
}

fn is_oid(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse the header at the start of `data` (the bytes of a bundle up to
/// at least its blank line).
pub fn parse_header(data: &[u8]) -> Result<Header, Error> {
    let end =
        data.windows(2)
            .position(|w| w == b"\n\n")
            .ok_or(if data.len() >= MAX_HEADER_BYTES {
                Error::Unterminated
            } else {
                Error::NotABundle
            })?;
    let text = std::str::from_utf8(&data[..end]).map_err(|_| Error::NotABundle)?;
    let mut lines = text.lines();
    match lines.next() {
        Some("# v2 git bundle") | Some("# v3 git bundle") => {}
        _ => return Err(Error::NotABundle),
    }
    let mut header = Header::default();
    for (i, line) in lines.enumerate() {
        if line.starts_with('@') {
            continue;
        }
        let (prerequisite, rest) = match line.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let oid = rest.split(' ').next().unwrap_or("");
        if !is_oid(oid) {
            return Err(Error::BadLine(i + 2));
        }
        if prerequisite {
            header.prerequisites.insert(oid.to_string());
        } else {
            header.tips.insert(oid.to_string());
        }
    }
    Ok(header)
}

/// Whether an increment still stands on the full bundle beside it: it was
/// made after it, and every commit it needs is one the full bundle's refs
/// point at. Otherwise somebody (grokmirror's grok-bundle, say) rebuilt the
/// full bundle since, and the increment is stale.
pub fn belongs_to(
    increment: &Header,
    increment_mtime: i64,
    full: &Header,
    full_mtime: i64,
) -> bool {
    increment_mtime >= full_mtime && increment.prerequisites.is_subset(&full.tips)
}

/// Whether an increment of `increment_bytes` on a full bundle of
/// `full_bytes` is worth keeping rather than rebuilding the full one.
pub fn worth_keeping(increment_bytes: u64, full_bytes: u64) -> bool {
    increment_bytes.saturating_mul(MAX_INCREMENT_SHARE) <= full_bytes
}

/// The rev-list arguments of the increment: the full bundle's own, minus
/// what its refs reach.
pub fn increment_args(revlistargs: &[String], full: &Header) -> Vec<String> {
    let mut args = revlistargs.to_vec();
    args.push("--not".to_string());
    args.extend(full.tips.iter().cloned());
    args
}

/// The bundle list: the full bundle with creation token `full_token`
/// (its mtime), and the increment, when there is one, with a later token.
/// git fetches the newest first and goes back to older ones until every
/// prerequisite is met.
pub fn list_text(full_file: &str, full_token: i64, increment_token: Option<i64>) -> String {
    let full_token = full_token.max(1);
    let mut text = format!(
        "[bundle]\n\tversion = 1\n\tmode = all\n\theuristic = creationToken\n\
         [bundle \"clone\"]\n\turi = {full_file}\n\tcreationToken = {full_token}\n"
    );
    if let Some(token) = increment_token {
        let token = token.max(full_token + 1);
        text.push_str(&format!(
            "[bundle \"incremental\"]\n\turi = {INCREMENT_FILE}\n\tcreationToken = {token}\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    #[test]
    fn headers_of_both_versions() {
        let v2 = format!("# v2 git bundle\n-{A} base\n{B} refs/heads/main\n{C} HEAD\n\nPACK...");
        let h = parse_header(v2.as_bytes()).unwrap();
        assert_eq!(h.prerequisites, BTreeSet::from([A.to_string()]));
        assert_eq!(h.tips, BTreeSet::from([B.to_string(), C.to_string()]));
        let v3 = format!("# v3 git bundle\n@object-format=sha1\n{B} refs/heads/main\n\nPACK");
        assert_eq!(parse_header(v3.as_bytes()).unwrap().tips.len(), 1);
        for bad in [
            "PACK\n\n".to_string(),
            "# v2 git bundle\nxyz refs/heads/main\n\n".to_string(),
            format!("# v2 git bundle\n{B} refs/heads/main\n"),
        ] {
            assert!(parse_header(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_increment_belongs_to_the_full_bundle_it_was_cut_from() {
        let full = Header {
            prerequisites: BTreeSet::new(),
            tips: BTreeSet::from([A.to_string(), B.to_string()]),
        };
        let inc = Header {
            prerequisites: BTreeSet::from([A.to_string()]),
            tips: BTreeSet::from([C.to_string()]),
        };
        assert!(belongs_to(&inc, 200, &full, 100));
        // The full bundle was rebuilt after the increment.
        assert!(!belongs_to(&inc, 100, &full, 200));
        // ... or from other refs.
        let other = Header {
            prerequisites: BTreeSet::new(),
            tips: BTreeSet::from([C.to_string()]),
        };
        assert!(!belongs_to(&inc, 200, &other, 100));
    }

    #[test]
    fn rebuild_once_the_increment_outgrows_a_quarter() {
        assert!(worth_keeping(25, 100));
        assert!(!worth_keeping(26, 100));
        assert!(!worth_keeping(1, 0));
    }

    #[test]
    fn increment_arguments_and_lists() {
        let full = Header {
            prerequisites: BTreeSet::new(),
            tips: BTreeSet::from([B.to_string(), A.to_string()]),
        };
        let args = increment_args(&["--branches".into(), "HEAD".into()], &full);
        assert_eq!(args, ["--branches", "HEAD", "--not", A, B]);
        let one = list_text("clone.bundle", 1700, None);
        assert_eq!(
            one,
            "[bundle]\n\tversion = 1\n\tmode = all\n\theuristic = creationToken\n\
             [bundle \"clone\"]\n\turi = clone.bundle\n\tcreationToken = 1700\n"
        );
        let two = list_text("clone.bundle", 1700, Some(1700));
        assert!(two.ends_with(
            "[bundle \"incremental\"]\n\turi = incremental.bundle\n\tcreationToken = 1701\n"
        ));
    }
}
