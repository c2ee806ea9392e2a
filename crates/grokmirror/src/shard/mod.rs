//! Shards: many replicas as one mirror (ours; grokmirror has none).
//!
//! A replica with `[pull] shard = K/N` mirrors only the repositories whose
//! *fork group* hashes to shard K of N, so forks stay together (and keep
//! sharing their object storage) and the routing front can compute from
//! the origin's manifest alone which shard holds which repository.
//!
//! - The fork group of a manifest entry ([`group_of`]) is its `forkgroup`;
//!   for an entry in no fork group, the fork group of the repository it
//!   names as `reference` (or that repository's key); else its own key.
//!   Only what the origin publishes counts, never what one replica's
//!   grok-fsck learned, so that every shard and the router agree.
//! - The shard of a group ([`owner`]) is chosen by rendezvous
//!   (highest-random-weight) hashing: each shard `i` weighs the group with
//!   the first 8 bytes of SHA-1 of `group \0 i`, and the heaviest wins.
//!   Going from N to N+1 shards moves only the groups the new shard wins,
//!   about 1/(N+1) of them, and moves them only to the new shard.
//!
//! Pure functions; the program reading the config and the environment
//! hands [`Shard::parse`] the value and the host name.

pub mod map;

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::formats::manifest::RepoEntry;

/// The most shards a mirror may be split into (a typo guard, not a limit
/// anyone should meet).
pub const MAX_SHARDS: u32 = 4096;

/// The environment variable that overrides `[pull] shard` (for a
/// Kubernetes StatefulSet, whose pods share one config).
pub const ENV_SHARD: &str = "GROKMIRROR_SHARD";

/// Why a shard setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not `K/N` or `ordinal/N`.
    #[error("{0:?} is not K/N or ordinal/N (for example 0/3)")]
    Syntax(String),
    /// N is 0 or too big.
    #[error("{0:?}: the number of shards must be from 1 to {MAX_SHARDS}")]
    Count(String),
    /// K is not below N.
    #[error("{value:?}: shard {index} does not exist, there are {count} (0 to {})", count - 1)]
    Index {
        /// The value read.
        value: String,
        /// K.
        index: u32,
        /// N.
        count: u32,
    },
    /// `ordinal/N` on a host whose name does not end in `-<number>`.
    #[error("{value:?}: the host name {hostname:?} does not end in -<ordinal> (as a StatefulSet pod's does)")]
    NoOrdinal {
        /// The value read.
        value: String,
        /// The host name.
        hostname: String,
    },
    /// `[pull] shard_peers` does not name one manifest per shard.
    #[error("[pull] shard_peers lists {listed} manifest URLs for {count} shards: give one per shard, in shard order, or one URL with {{K}} in it")]
    Peers {
        /// URLs given.
        listed: usize,
        /// N.
        count: u32,
    },
}

/// This replica's share of the mirror: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`, if it exists.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        ((1..=MAX_SHARDS).contains(&count) && index < count).then_some(Shard { index, count })
    }

    /// Read `K/N`, or `ordinal/N` with K the number after the last `-` of
    /// `hostname` (a StatefulSet pod `grok-pull-2` is shard 2). Spaces
    /// around the parts are allowed.
    pub fn parse(value: &str, hostname: impl FnOnce() -> Option<String>) -> Result<Shard, Error> {
        let syntax = || Error::Syntax(value.to_string());
        let (k, n) = value.split_once('/').ok_or_else(syntax)?;
        let (k, n) = (k.trim(), n.trim());
        let count: u32 = digits(n)
            .ok_or_else(syntax)?
            .parse()
            .map_err(|_| Error::Count(value.to_string()))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(Error::Count(value.to_string()));
        }
        let index: u32 = if k.eq_ignore_ascii_case("ordinal") {
            let host = hostname().unwrap_or_default();
            ordinal_of(&host).ok_or_else(|| Error::NoOrdinal {
                value: value.to_string(),
                hostname: host.clone(),
            })?
        } else {
            digits(k)
                .ok_or_else(syntax)?
                .parse()
                .map_err(|_| Error::Index {
                    value: value.to_string(),
                    index: u32::MAX,
                    count,
                })?
        };
        Shard::new(index, count).ok_or(Error::Index {
            value: value.to_string(),
            index,
            count,
        })
    }

    /// K.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// N.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this shard holds the fork group `group`.
    pub fn holds(&self, group: &str) -> bool {
        owner(group, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `s` if it is a non-empty run of ASCII digits.
fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// The ordinal of a StatefulSet pod's host name: the number after its
/// last `-` (`grok-pull-2` is 2; a fully qualified name counts by its
/// first label).
pub fn ordinal_of(hostname: &str) -> Option<u32> {
    let label = hostname.trim().split('.').next()?;
    let (_, n) = label.rsplit_once('-')?;
    digits(n)?.parse().ok()
}

/// The weight shard `shard` gives fork group `group`: the first 8 bytes of
/// SHA-1 of `group`, a NUL byte and `shard` in decimal, big-endian.
pub fn weight(group: &str, shard: u32) -> u64 {
    let mut h = Sha1::new();
    h.update(group.as_bytes());
    h.update([0u8]);
    h.update(shard.to_string().as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("SHA-1 has 20 bytes"))
}

/// The shard of `count` that holds fork group `group`: the one that gives
/// it the highest [`weight`] (the lowest index on a tie).
pub fn owner(group: &str, count: u32) -> u32 {
    let mut best = (0u64, 0u32);
    for i in 0..count.max(1) {
        let w = weight(group, i);
        if i == 0 || w > best.0 {
            best = (w, i);
        }
    }
    best.1
}

/// The fork group a manifest entry is sharded by: its `forkgroup`; else,
/// when it borrows from a `reference`, the group of that repository
/// (followed along a grokmirror 1.x chain of references), or the key the
/// chain ends at; else its own key. `repos` is the whole manifest (for the
/// references' entries). A chain that loops is one group, named by the
/// smallest key in the loop, whichever member it is asked for.
pub fn group_of<'a>(
    key: &'a str,
    entry: &'a RepoEntry,
    repos: &'a BTreeMap<String, RepoEntry>,
) -> &'a str {
    let mut seen: Vec<&'a str> = Vec::new();
    let (mut cur, mut e) = (key, Some(entry));
    loop {
        let Some(entry) = e else {
            // A reference to a repository the manifest does not list.
            return cur;
        };
        if let Some(g) = entry.forkgroup.as_deref().filter(|g| !g.is_empty()) {
            return g;
        }
        let Some(next) = entry.reference.as_deref().filter(|r| !r.is_empty()) else {
            return cur;
        };
        seen.push(cur);
        if let Some(at) = seen.iter().position(|k| *k == next) {
            return seen[at..].iter().min().copied().unwrap_or(next);
        }
        cur = next;
        e = repos.get(next);
    }
}

/// Which shard of `count` holds each repository of a manifest.
pub fn owners(repos: &BTreeMap<String, RepoEntry>, count: u32) -> BTreeMap<String, u32> {
    let mut by_group: BTreeMap<&str, u32> = BTreeMap::new();
    repos
        .iter()
        .map(|(k, e)| {
            let g = group_of(k, e, repos);
            let o = *by_group.entry(g).or_insert_with(|| owner(g, count));
            (k.clone(), o)
        })
        .collect()
}

/// The manifest URL of each shard, from `[pull] shard_peers`: one URL per
/// shard in shard order, or one URL in which `{K}` stands for the shard's
/// index. Empty when none is configured.
pub fn peer_urls(lines: &[String], count: u32) -> Result<Vec<String>, Error> {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => Ok(Vec::new()),
        [template] if template.contains("{K}") => Ok((0..count)
            .map(|i| template.replace("{K}", &i.to_string()))
            .collect()),
        many if many.len() == count as usize => Ok(many.iter().map(|s| s.to_string()).collect()),
        many => Err(Error::Peers {
            listed: many.len(),
            count,
        }),
    }
}

#[cfg(test)]
mod tests;
