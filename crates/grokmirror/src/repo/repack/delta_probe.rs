//! Whether the deltas a repository's packs hold are worth keeping, told
//! cheaply from a slice of its newest history.
//!
//! A full repack that reuses deltas costs a fraction of one that
//! recomputes them, but it keeps whatever deltas the packs came with. Packs
//! fetched from a host that packs loosely (a large hosting site serving a
//! fork network, an origin repacked with a tiny window) can be twice the
//! size of what `git repack -f` makes of them. The probe packs a slice of
//! recent history ([`PROBE_COMMITS`] first-parent steps back from a tip)
//! twice as a thin pack on stdout, once reusing the stored deltas and once
//! searching afresh, and compares the sizes: a few seconds against minutes
//! for the whole history.

use std::path::Path;

use crate::git::{self, Git};

/// How many first-parent steps back from its tip the probed slice reaches.
pub const PROBE_COMMITS: u32 = 500;

/// The share of the reusing pack's size under which a fresh delta search
/// must bring the slice for the stored deltas to count as poor. Measured on
/// git's own history (`master~500..master`, 11,495 objects): packs as a
/// hosting site served them came to 0.69 (the whole history then shrinks
/// from 314 to 148 MiB with `-f`); packs made by `git repack -f` came to
/// 0.96.
pub const POOR_DELTAS_SHARE: f64 = 0.8;

/// Slices smaller than this (reusing) decide nothing: too few objects to
/// tell, and recomputing a history that small costs little either way.
pub const MIN_PROBE_BYTES: u64 = 64 * 1024;

/// Slices larger than this (reusing) are not packed a second time, and
/// the first packing is stopped once past it: the slice carries large
/// files, the search would be long, and the stored deltas are kept.
pub const MAX_PROBE_BYTES: u64 = 512 * 1024 * 1024;

/// The sizes of one slice of history, packed both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaProbe {
    /// The slice's thin pack reusing the stored deltas, in bytes.
    pub reused: u64,
    /// The same slice with every delta searched afresh, in bytes (`None`
    /// when the slice was too large to pack twice).
    pub recomputed: Option<u64>,
}

impl DeltaProbe {
    /// Whether recomputing would shrink the slice by enough to be worth a
    /// full delta search of the whole history (`-f`).
    pub fn deltas_are_poor(&self) -> bool {
        match self.recomputed {
            Some(fresh) if self.reused >= MIN_PROBE_BYTES => {
                (fresh as f64) < POOR_DELTAS_SHARE * self.reused as f64
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for DeltaProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        match self.recomputed {
            Some(fresh) => write!(
                f,
                "{PROBE_COMMITS} commits of its history pack to {:.1} MiB with their deltas, {:.1} MiB with new ones",
                mib(self.reused),
                mib(fresh)
            ),
            None => write!(
                f,
                "{PROBE_COMMITS} commits of its history pack to {:.1} MiB, too large to pack twice",
                mib(self.reused)
            ),
        }
    }
}

/// How many ref tips, newest first, are tried after HEAD and the main
/// branches for one with a long enough history.
const TIPS_TRIED: usize = 20;

/// The refs tried first, after HEAD: the main line of a repository, and of
/// each member of an object storage (whose HEAD names nothing). The newest
/// tip may be an unrelated branch whose history is not the bulk of the
/// repository's (git's `todo`).
const MAIN_LINES: [&str; 4] = [
    "refs/heads/main",
    "refs/heads/master",
    "refs/virtual/*/heads/main",
    "refs/virtual/*/heads/master",
];

/// Probe the repository at `repo` (read-only: two `git pack-objects
/// --stdout`, counted, never stored). The slice is `TIP ^TIP~N` along
/// first parents (on a merge-heavy history, more than N commits), from
/// HEAD, a main branch or the newest ref tip whose history is that long.
/// `None` when no history is.
pub fn probe(git: &Git, repo: &Path) -> Result<Option<DeltaProbe>, git::Error> {
    let Some(range) = slice(git, repo)? else {
        return Ok(None);
    };
    // Each pass stops once the slice passes MAX_PROBE_BYTES, so a slice
    // of huge files costs a bounded read, not a whole pack.
    let reused = pack_size(git, repo, range.as_bytes(), "--reuse-delta")?;
    let recomputed = match reused <= MAX_PROBE_BYTES {
        true => Some(pack_size(git, repo, range.as_bytes(), "--no-reuse-delta")?),
        false => None,
    };
    Ok(Some(DeltaProbe { reused, recomputed }))
}

/// The revisions of the slice, as `pack-objects --revs` reads them. The
/// candidate tips are listed a group at a time (HEAD, the main lines, the
/// newest tips), each only when the one before held no long history.
fn slice(git: &Git, repo: &Path) -> Result<Option<String>, git::Error> {
    let count = format!("--count={TIPS_TRIED}");
    let by_date = [
        "for-each-ref",
        "--sort=-committerdate",
        &count,
        "--format=%(objectname)",
    ];
    let groups: [&dyn Fn() -> Result<String, git::Error>; 3] = [
        &|| {
            let head = git.run(Some(repo), ["rev-parse", "-q", "--verify", "HEAD^{commit}"])?;
            Ok(match head.success() {
                true => head.stdout_str(),
                false => String::new(),
            })
        },
        &|| {
            Ok(git
                .run_ok(Some(repo), by_date.into_iter().chain(MAIN_LINES))?
                .stdout_str())
        },
        &|| Ok(git.run_ok(Some(repo), by_date)?.stdout_str()),
    ];
    for tips in groups {
        for tip in tips()?.lines() {
            let back = format!("{tip}~{PROBE_COMMITS}^{{commit}}");
            let boundary = git.run(Some(repo), ["rev-parse", "-q", "--verify", &back])?;
            if boundary.success() {
                return Ok(Some(format!("{tip}\n^{}\n", boundary.stdout_str())));
            }
        }
    }
    Ok(None)
}

/// The size of the thin pack of `range` (revisions on stdin), counted as
/// it streams.
fn pack_size(git: &Git, repo: &Path, range: &[u8], deltas: &str) -> Result<u64, git::Error> {
    let args = [
        "pack-objects",
        "--revs",
        "--thin",
        "--stdout",
        "--delta-base-offset",
        // A bitmap lets pack-objects send whole stretches of a pack as
        // they are, whatever --no-reuse-delta says: measure deltas, not that.
        "--no-use-bitmap-index",
        "-q",
        deltas,
    ];
    let (out, len) = git.run_counting_stdout(Some(repo), args, Some(range), MAX_PROBE_BYTES)?;
    if len > MAX_PROBE_BYTES {
        // Stopped there: large enough to decide (see `probe`).
        return Ok(len);
    }
    if !out.success() {
        return Err(git::failed(Some(repo), &args, &out));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poor_only_when_a_fresh_search_shrinks_a_big_enough_slice() {
        let mib = 1024 * 1024;
        let probe = |reused, recomputed| DeltaProbe { reused, recomputed };
        // git's history as a hosting site served it, and as `repack -f` left it.
        assert!(probe(5_649_736, Some(3_894_226)).deltas_are_poor());
        assert!(!probe(4_102_129, Some(3_926_968)).deltas_are_poor());
        // At the line: 20% smaller is not enough, a little more is.
        assert!(!probe(10 * mib, Some(8 * mib)).deltas_are_poor());
        assert!(probe(10 * mib, Some(8 * mib - 1024)).deltas_are_poor());
        // Too small to tell, or never packed twice.
        assert!(!probe(MIN_PROBE_BYTES - 1, Some(1)).deltas_are_poor());
        assert!(!probe(MAX_PROBE_BYTES + 1, None).deltas_are_poor());
    }

    #[test]
    fn the_log_line_names_both_sizes() {
        let p = DeltaProbe {
            reused: 5 * 1024 * 1024,
            recomputed: Some(3 * 1024 * 1024),
        };
        assert_eq!(
            p.to_string(),
            "500 commits of its history pack to 5.0 MiB with their deltas, 3.0 MiB with new ones"
        );
    }
}
