//! A gzipped manifest written as indexed members of about
//! [`ENTRIES_PER_MEMBER`] entries each (see [`super::gzip_members`]), and
//! changed a member at a time: what a push hook needs on a large tree
//! (the "ten times kernel.org" issue). [`Partial::open`] reads the file,
//! checks every member's CRC, and parses only the members whose key
//! ranges hold the keys asked for; [`Partial::write`] re-deflates those
//! and copies the others' bytes as they were. The text inside is
//! byte for byte what one [`Manifest::to_json`] gives, so every reader
//! sees the same manifest as before.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use rayon::prelude::*;

use super::gzip_members::{self, Member, MemberIndex, MAX_INDEXED_KEY};
use super::json::{Emitter, PyJson};
use super::manifest::{Error, Manifest, RepoEntry};
use crate::tree::fsutil;

/// Entries in one member as written (about 180 KB of JSON): small enough
/// that a hook re-deflates little, large enough that deflate's window
/// loses nothing measurable.
pub const ENTRIES_PER_MEMBER: usize = 1024;

/// A member that grew past this many entries (new repositories arriving
/// in one key range) is split when it is next written.
const SPLIT_FROM: usize = 2 * ENTRIES_PER_MEMBER;

type Entries<'a> = [(&'a String, &'a RepoEntry)];

/// The JSON text of one member: its entries, with the object's opening
/// brace when it is the first member and its closing one when it is the
/// last. Joined in order, the members' texts are [`Manifest::to_json`].
fn member_text(entries: &Entries<'_>, first: bool, last: bool, pretty: bool) -> String {
    let mut e = Emitter::new(pretty.then_some(2), 64 + entries.len() * 200);
    if first {
        e.raw("{");
    }
    let fields = entries.iter().map(|(k, v)| (k.as_str(), *v as &dyn PyJson));
    let wrote = e.object_part(0, !first, fields);
    if last {
        if wrote || !first {
            e.object_end(0);
        } else {
            e.raw("}");
        }
    }
    e.finish()
}

/// Deflate `chunks` (consecutive runs of entries; `first`/`last`: whether
/// the run opens or closes the whole object) as indexed members, in
/// parallel.
fn deflate_chunks(chunks: &[(&Entries<'_>, bool, bool)], pretty: bool) -> io::Result<Vec<Vec<u8>>> {
    chunks
        .par_iter()
        .map(|(entries, first, last)| {
            let text = member_text(entries, *first, *last, pretty);
            let index = MemberIndex {
                pretty,
                entries: entries.len() as u32,
                first_key: entries
                    .first()
                    .map(|(k, _)| k.to_string())
                    .unwrap_or_default(),
            };
            gzip_members::member(text.as_bytes(), &index)
        })
        .collect()
}

/// The whole manifest as indexed gzip members, written to `out`. A key
/// too long for an index (none a real tree has) makes it one plain
/// member instead, which the next hook reads and writes whole.
pub fn write_all(manifest: &Manifest, pretty: bool, out: &mut impl Write) -> io::Result<()> {
    let entries: Vec<(&String, &RepoEntry)> = manifest.repos.iter().collect();
    if entries.iter().any(|(k, _)| k.len() > MAX_INDEXED_KEY) {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::new(gzip_members::LEVEL),
        );
        enc.write_all(manifest.to_json(pretty).as_bytes())?;
        return out.write_all(&enc.finish()?);
    }
    let mut chunks: Vec<(&Entries<'_>, bool, bool)> = entries
        .chunks(ENTRIES_PER_MEMBER)
        .map(|c| (c, false, false))
        .collect();
    if chunks.is_empty() {
        chunks.push((&[], true, true));
    }
    chunks.first_mut().expect("one at least").1 = true;
    chunks.last_mut().expect("one at least").2 = true;
    for m in deflate_chunks(&chunks, pretty)? {
        out.write_all(&m)?;
    }
    Ok(())
}

/// Parse one member's text on its own: the leading `,` of a later
/// member's text becomes the object's `{`, and a `}` closes any but the
/// last.
fn parse_member(
    mut text: Vec<u8>,
    first: bool,
    last: bool,
) -> Result<BTreeMap<String, RepoEntry>, serde_json::Error> {
    if !first {
        if let Some(b) = text.first_mut() {
            *b = b'{';
        }
    }
    if !last {
        text.push(b'}');
    }
    serde_json::from_slice(&text)
}

/// Every entry of a file of indexed members, each member inflated and
/// parsed on its own thread: never the whole text at once, and no
/// slower than the CPUs allow. `None` when `raw` is not such a file or a
/// member fails its check (read it the usual way then, for the usual
/// error).
pub fn read_all(raw: &[u8]) -> Option<BTreeMap<String, RepoEntry>> {
    let members = gzip_members::members(raw)?;
    let last = members.len() - 1;
    let threads = rayon::current_num_threads().max(1);
    let mut all = BTreeMap::new();
    // A few members at a time, one per thread: memory is the map and a
    // few members' worth, never every member's map at once. Members hold
    // consecutive key ranges, so the map grows at its end (a later
    // duplicate wins, as in one parse).
    for (n, group) in members.chunks(threads).enumerate() {
        let parsed: Option<Vec<BTreeMap<String, RepoEntry>>> = group
            .par_iter()
            .enumerate()
            .map(|(j, m)| {
                let i = n * threads + j;
                let text = gzip_members::inflate(raw, m).ok()?;
                parse_member(text, i == 0, i == last).ok()
            })
            .collect();
        for part in parsed? {
            all.extend(part);
        }
    }
    Some(all)
}

/// Part of a gzipped manifest, open for changing a few entries.
#[derive(Debug)]
pub struct Partial {
    /// The file as read.
    raw: Vec<u8>,
    /// Its members.
    members: Vec<Member>,
    /// Which of them are loaded (in order).
    loaded: Vec<usize>,
    /// The loaded members' entries, to change as a whole manifest.
    pub manifest: Manifest,
}

impl Partial {
    /// Open the manifest at `path` for changing the entries of `keys`:
    /// `Ok(None)` when it cannot be (missing, not ours, indented other
    /// than `pretty`, a member that fails its check): read it whole then.
    pub fn open(path: &Path, keys: &[String], pretty: bool) -> Result<Option<Partial>, Error> {
        let raw = match std::fs::read(path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(Error::Read {
                    path: path.display().to_string(),
                    cause,
                })
            }
        };
        let Some(members) = gzip_members::members(&raw) else {
            return Ok(None);
        };
        if members.iter().any(|m| m.index.pretty != pretty) {
            return Ok(None);
        }
        let mut loaded: Vec<usize> = keys.iter().map(|k| holder(&members, k)).collect();
        loaded.sort_unstable();
        loaded.dedup();
        // Every member is checked, the loaded ones parsed too: a damaged
        // member is never carried on unseen.
        let last = members.len() - 1;
        let texts: Vec<Option<Option<BTreeMap<String, RepoEntry>>>> = members
            .par_iter()
            .enumerate()
            .map(|(i, m)| {
                let text = gzip_members::inflate(&raw, m).ok()?;
                Some(
                    loaded
                        .binary_search(&i)
                        .is_ok()
                        .then(|| parse_member(text, i == 0, i == last).ok())
                        .flatten(),
                )
            })
            .collect();
        let mut manifest = Manifest::new();
        for (i, t) in texts.into_iter().enumerate() {
            let t = match t {
                None => return Ok(None),
                Some(t) => t,
            };
            if loaded.binary_search(&i).is_err() {
                continue;
            }
            let Some(mut entries) = t else {
                return Ok(None);
            };
            if !holds_what_it_says(&members, i, &entries) {
                return Ok(None);
            }
            manifest.repos.append(&mut entries);
        }
        Ok(Some(Partial {
            raw,
            members,
            loaded,
            manifest,
        }))
    }

    /// Entries in the whole manifest on disk, as its members' indexes say.
    pub fn total_entries(&self) -> usize {
        self.members.iter().map(|m| m.index.entries as usize).sum()
    }

    /// Write the changed manifest to `path` atomically: the loaded
    /// members re-deflated (split when they grew large), the others as
    /// they were. When a loaded member was emptied, the whole manifest is
    /// read and written instead.
    pub fn write(self, path: &Path, pretty: bool) -> Result<(), Error> {
        let werr = |cause| Error::Write {
            path: path.to_path_buf(),
            cause,
        };
        let Some(fresh) = self.redeflate(pretty).map_err(werr)? else {
            return self.into_whole(path)?.write(path, pretty);
        };
        fsutil::write_atomic_with(path, |file| {
            let mut out = io::BufWriter::new(file);
            for (i, m) in self.members.iter().enumerate() {
                match self.loaded.binary_search(&i) {
                    Ok(slot) => out.write_all(&fresh[slot])?,
                    Err(_) => out.write_all(&self.raw[m.range.clone()])?,
                }
            }
            out.flush()
        })
        .map_err(werr)
    }

    /// The new bytes of each loaded member (several members when it grew
    /// large); `None` when one ends up empty (its neighbours would have
    /// to change their braces).
    fn redeflate(&self, pretty: bool) -> io::Result<Option<Vec<Vec<u8>>>> {
        let by_member = self.entries_by_loaded_member();
        if by_member.iter().any(|e| e.is_empty()) {
            return Ok(None);
        }
        let last = self.members.len() - 1;
        let mut chunks: Vec<(&Entries<'_>, bool, bool)> = Vec::new();
        let mut owners = Vec::new();
        for (slot, (&i, entries)) in self.loaded.iter().zip(&by_member).enumerate() {
            let pieces: Vec<&Entries<'_>> = if entries.len() >= SPLIT_FROM {
                entries.chunks(ENTRIES_PER_MEMBER).collect()
            } else {
                vec![entries.as_slice()]
            };
            let n = pieces.len();
            for (j, p) in pieces.into_iter().enumerate() {
                chunks.push((p, i == 0 && j == 0, i == last && j + 1 == n));
                owners.push(slot);
            }
        }
        let mut fresh: Vec<Vec<u8>> = vec![Vec::new(); self.loaded.len()];
        for (slot, bytes) in owners.into_iter().zip(deflate_chunks(&chunks, pretty)?) {
            fresh[slot].extend(bytes);
        }
        Ok(Some(fresh))
    }

    /// The loaded entries, split by the loaded member whose key range
    /// holds them.
    fn entries_by_loaded_member(&self) -> Vec<Vec<(&String, &RepoEntry)>> {
        let mut out: Vec<Vec<(&String, &RepoEntry)>> = vec![Vec::new(); self.loaded.len()];
        for (k, v) in &self.manifest.repos {
            let i = holder(&self.members, k);
            let slot = self
                .loaded
                .binary_search(&i)
                .expect("a loaded entry's key lies in a loaded member");
            out[slot].push((k, v));
        }
        out
    }

    /// The whole manifest: what the loaded members hold now, and every
    /// other member parsed.
    fn into_whole(self, path: &Path) -> Result<Manifest, Error> {
        let what = path.display().to_string();
        let last = self.members.len() - 1;
        let mut whole = self.manifest;
        for (i, m) in self.members.iter().enumerate() {
            if self.loaded.binary_search(&i).is_ok() {
                continue;
            }
            let text = gzip_members::inflate(&self.raw, m).map_err(|cause| Error::Decompress {
                path: what.clone(),
                cause,
            })?;
            let mut entries =
                parse_member(text, i == 0, i == last).map_err(|cause| Error::Parse {
                    path: what.clone(),
                    cause,
                })?;
            whole.repos.append(&mut entries);
        }
        Ok(whole)
    }
}

/// The member whose key range holds `key`: the last whose first key is
/// not after it (the first member holds everything before the second's).
fn holder(members: &[Member], key: &str) -> usize {
    members[1..].partition_point(|m| m.index.first_key.as_str() <= key)
}

/// Whether member `i`'s parsed entries are what its index says: the
/// count, the first key, and every key inside the member's range.
fn holds_what_it_says(members: &[Member], i: usize, entries: &BTreeMap<String, RepoEntry>) -> bool {
    let index = &members[i].index;
    if entries.len() != index.entries as usize {
        return false;
    }
    if entries.keys().next().map(String::as_str).unwrap_or("") != index.first_key {
        return false;
    }
    match (members.get(i + 1), entries.keys().next_back()) {
        (Some(next), Some(last)) => *last < next.index.first_key,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entry(i: usize) -> RepoEntry {
        RepoEntry {
            description: Some(format!("repo {i}, with \"quotes\" and }}, \"/ inside")),
            fingerprint: Some(format!("{i:040x}")),
            modified: i as i64,
            ..RepoEntry::default()
        }
    }

    fn manifest(n: usize) -> Manifest {
        let mut m = Manifest::new();
        for i in 0..n {
            m.repos.insert(format!("/pub/r{:06}.git", i * 2), entry(i));
        }
        m
    }

    fn gunzip(raw: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(raw)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn members_join_to_the_whole_text() {
        for n in [0, 1, 1023, 1024, 1025, 3000] {
            let m = manifest(n);
            for pretty in [false, true] {
                let mut raw = Vec::new();
                write_all(&m, pretty, &mut raw).unwrap();
                assert_eq!(
                    gunzip(&raw),
                    m.to_json(pretty),
                    "{n} entries, pretty {pretty}"
                );
                let members = gzip_members::members(&raw).unwrap();
                assert_eq!(members.len(), n.div_ceil(ENTRIES_PER_MEMBER).max(1));
                let counted: u32 = members.iter().map(|m| m.index.entries).sum();
                assert_eq!(counted as usize, n);
            }
        }
    }

    #[test]
    fn every_member_read_on_its_own_gives_the_whole_manifest() {
        for n in [0, 1, 3000] {
            let m = manifest(n);
            let mut raw = Vec::new();
            write_all(&m, false, &mut raw).unwrap();
            assert_eq!(read_all(&raw).unwrap(), m.repos);
            let mid = raw.len() / 2;
            raw[mid] ^= 1;
            assert_eq!(read_all(&raw), None, "a damaged member");
        }
    }

    fn written(dir: &Path, m: &Manifest, pretty: bool) -> std::path::PathBuf {
        let path = dir.join("manifest.js.gz");
        m.write(&path, pretty).unwrap();
        path
    }

    #[test]
    fn a_few_entries_change_and_the_other_members_are_copied() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = manifest(3000);
        let path = written(dir.path(), &expected, false);
        let before = std::fs::read(&path).unwrap();
        // Entry 2000 of 3000 (keys go up by two): the second member.
        let changed = "/pub/r004000.git".to_string();
        let added = "/pub/r004001.git".to_string();
        let mut p = Partial::open(&path, &[changed.clone(), added.clone()], false)
            .unwrap()
            .unwrap();
        assert_eq!(p.manifest.len(), ENTRIES_PER_MEMBER, "one member loaded");
        p.manifest.repos.get_mut(&changed).unwrap().modified = 7;
        p.manifest.repos.insert(added.clone(), entry(9));
        p.write(&path, false).unwrap();
        expected.repos.get_mut(&changed).unwrap().modified = 7;
        expected.repos.insert(added, entry(9));
        let after = std::fs::read(&path).unwrap();
        assert_eq!(gunzip(&after), expected.to_json(false));
        let (old, new) = (
            gzip_members::members(&before).unwrap(),
            gzip_members::members(&after).unwrap(),
        );
        assert_eq!(old.len(), new.len());
        let same = |i: usize| before[old[i].range.clone()] == after[new[i].range.clone()];
        assert!(same(0) && same(2) && !same(1));
        // Python's gzip, which grokmirror reads manifests with, agrees.
        assert_eq!(
            crate::formats::gzip_members::tests::python_gunzip(&after),
            expected.to_json(false).as_bytes()
        );
    }

    #[test]
    fn a_member_that_grew_is_split_and_an_emptied_one_rewrites_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        for pretty in [false, true] {
            let mut expected = manifest(1500);
            let path = written(dir.path(), &expected, pretty);
            // New repositories sorting after every key: the last member.
            let new: Vec<String> = (0..2500).map(|i| format!("/z/{i:05}.git")).collect();
            let mut p = Partial::open(&path, &new[..1], pretty).unwrap().unwrap();
            for k in &new {
                p.manifest.repos.insert(k.clone(), entry(1));
                expected.repos.insert(k.clone(), entry(1));
            }
            p.write(&path, pretty).unwrap();
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(gunzip(&raw), expected.to_json(pretty));
            let members = gzip_members::members(&raw).unwrap();
            assert!(members.len() >= 4, "{} members", members.len());
            assert!(members
                .iter()
                .all(|m| (m.index.entries as usize) < SPLIT_FROM));

            // Every entry of the first member removed.
            let first: Vec<String> = expected
                .repos
                .keys()
                .take(ENTRIES_PER_MEMBER)
                .cloned()
                .collect();
            let mut p = Partial::open(&path, &first, pretty).unwrap().unwrap();
            for k in &first {
                p.manifest.repos.remove(k);
                expected.repos.remove(k);
            }
            p.write(&path, pretty).unwrap();
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(gunzip(&raw), expected.to_json(pretty));
            assert!(gzip_members::members(&raw).is_some());
        }
    }

    #[test]
    fn what_is_not_ours_or_not_sound_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(3000);
        let path = written(dir.path(), &m, false);
        let key = ["/pub/r000000.git".to_string()];
        assert!(Partial::open(&path, &key, false).unwrap().is_some());
        assert!(
            Partial::open(&path, &key, true).unwrap().is_none(),
            "indented otherwise"
        );
        // One byte of an unloaded member flipped: its CRC fails.
        let mut raw = std::fs::read(&path).unwrap();
        let members = gzip_members::members(&raw).unwrap();
        let at = members[2].range.start + members[2].range.len() / 2;
        raw[at] ^= 0x40;
        std::fs::write(&path, &raw).unwrap();
        assert!(Partial::open(&path, &key, false).unwrap().is_none());
        // grokmirror's own single member, without an index.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(m.to_json(false).as_bytes()).unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        assert!(Partial::open(&path, &key, false).unwrap().is_none());
        assert!(
            Partial::open(&dir.path().join("missing.js.gz"), &key, false)
                .unwrap()
                .is_none()
        );
        // An index that lies about its member's entries.
        let mut lying = Vec::new();
        let text = m.to_json(false);
        lying.extend(
            gzip_members::member(
                text.as_bytes(),
                &MemberIndex {
                    pretty: false,
                    entries: 5,
                    first_key: "/pub/r000000.git".into(),
                },
            )
            .unwrap(),
        );
        std::fs::write(&path, &lying).unwrap();
        assert!(Partial::open(&path, &key, false).unwrap().is_none());
    }
}
