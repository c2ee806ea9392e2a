//! A manifest's gzip as a series of members, each carrying a small index
//! of itself. RFC 1952 allows several members in one file, and every
//! reader of manifests decompresses them as one stream (Python's `gzip`
//! module, which grokmirror uses, zcat, and ours, which reads with
//! [`flate2::read::MultiGzDecoder`]). Members are deflated in parallel,
//! and a hook that changes one entry re-deflates only the member holding
//! it (see [`super::manifest_members`]).
//!
//! The index is an RFC 1952 "extra field" (FEXTRA) with the subfield id
//! `GM`: a version byte, a flags byte (bit 0: the text is indented), the
//! member's whole length in bytes and its entry count (both u32, little
//! endian), and the first key of the member. Readers that do not know
//! the subfield skip it, as RFC 1952 says they must (Python does).

use std::io::{self, Read, Write};

use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// The deflate level of manifests. Measured on a 50,000-entry manifest
/// (8.6 MB of JSON) with zlib-rs on one core: level 6 (zlib's default,
/// what grokmirror writes) 1.42 MB in 50 ms, level 2 1.46 MB (+3%) in
/// 37 ms; level 1 is faster (23 ms) but 59% bigger.
pub const LEVEL: u32 = 2;

/// The subfield id of our index in a member's extra field.
const SUBFIELD: [u8; 2] = *b"GM";

/// The version of the index layout.
const VERSION: u8 = 1;

/// Flag bits of the gzip header (RFC 1952 section 2.3.1).
const FEXTRA: u8 = 0x04;

/// Fixed part of a gzip header: magic, method, flags, mtime, xfl, OS.
const HEADER: usize = 10;

/// Bytes of the index besides the key: subfield id and length, version,
/// flags, member length, entry count.
const INDEX_FIXED: usize = 4 + 1 + 1 + 4 + 4;

/// The longest first key an index holds (the extra field's length is a
/// u16). Keys are far shorter; a manifest with a longer one is written
/// without an index.
pub const MAX_INDEXED_KEY: usize = u16::MAX as usize - INDEX_FIXED;

/// What one member's index says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIndex {
    /// Whether the member's text is indented (`pretty`).
    pub pretty: bool,
    /// Entries whose text is in this member.
    pub entries: u32,
    /// The first of them (empty when there are none).
    pub first_key: String,
}

/// One member found in a file: where it lies and what its index says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Byte range of the whole member in the file.
    pub range: std::ops::Range<usize>,
    /// Byte range of its deflated body (after the header, before the
    /// 8-byte trailer).
    body: std::ops::Range<usize>,
    /// Its index.
    pub index: MemberIndex,
}

/// One complete gzip member holding `text`, with `index` in its header.
/// Written by hand around flate2's raw deflate: the index records the
/// member's own length, known only once the text is deflated.
pub fn member(text: &[u8], index: &MemberIndex) -> io::Result<Vec<u8>> {
    let key = index.first_key.as_bytes();
    if key.len() > MAX_INDEXED_KEY {
        return Err(io::Error::other("first key too long for a member index"));
    }
    let mut deflate =
        DeflateEncoder::new(Vec::with_capacity(text.len() / 4), Compression::new(LEVEL));
    deflate.write_all(text)?;
    let body = deflate.finish()?;
    let extra_len = INDEX_FIXED + key.len();
    let total = HEADER + 2 + extra_len + body.len() + 8;
    let total32 = u32::try_from(total).map_err(|_| io::Error::other("member over 4 GiB"))?;
    let mut out = Vec::with_capacity(total);
    // No mtime (0), XFL 0, OS 255 "unknown": what Python's gzip writes
    // but for the mtime, which would make equal manifests differ.
    out.extend_from_slice(&[0x1f, 0x8b, 8, FEXTRA, 0, 0, 0, 0, 0, 255]);
    out.extend_from_slice(&(extra_len as u16).to_le_bytes());
    out.extend_from_slice(&SUBFIELD);
    out.extend_from_slice(&((extra_len - 4) as u16).to_le_bytes());
    out.push(VERSION);
    out.push(u8::from(index.pretty));
    out.extend_from_slice(&total32.to_le_bytes());
    out.extend_from_slice(&index.entries.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&body);
    let mut crc = Crc::new();
    crc.update(text);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// The members of `raw` from their indexes; `None` unless every member
/// has one of ours and they tile the file exactly with first keys in
/// strictly increasing order (a file from grokmirror, or from an older
/// version of ours, has none: it is read and rewritten whole).
pub fn members(raw: &[u8]) -> Option<Vec<Member>> {
    let mut out: Vec<Member> = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let m = member_at(raw, at)?;
        if let Some(prev) = out.last() {
            if prev.index.first_key >= m.index.first_key {
                return None;
            }
        }
        at = m.range.end;
        out.push(m);
    }
    (!out.is_empty()).then_some(out)
}

fn member_at(raw: &[u8], at: usize) -> Option<Member> {
    let head = raw.get(at..at + HEADER + 2)?;
    if head[..4] != [0x1f, 0x8b, 8, FEXTRA] {
        return None;
    }
    let extra_len = u16::from_le_bytes([head[10], head[11]]) as usize;
    let extra = raw.get(at + HEADER + 2..at + HEADER + 2 + extra_len)?;
    if extra.len() < INDEX_FIXED || extra[..2] != SUBFIELD || extra[4] != VERSION {
        return None;
    }
    if u16::from_le_bytes([extra[2], extra[3]]) as usize != extra_len - 4 {
        return None;
    }
    let pretty = match extra[5] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let total = u32::from_le_bytes(extra[6..10].try_into().ok()?) as usize;
    let entries = u32::from_le_bytes(extra[10..14].try_into().ok()?);
    let first_key = String::from_utf8(extra[INDEX_FIXED..].to_vec()).ok()?;
    let end = at.checked_add(total)?;
    if end > raw.len() || total < HEADER + 2 + extra_len + 8 {
        return None;
    }
    Some(Member {
        range: at..end,
        body: at + HEADER + 2 + extra_len..end - 8,
        index: MemberIndex {
            pretty,
            entries,
            first_key,
        },
    })
}

/// The text of one member found by [`members`], its CRC and length
/// checked against the trailer.
pub fn inflate(raw: &[u8], member: &Member) -> io::Result<Vec<u8>> {
    let body = &raw[member.body.clone()];
    let trailer = &raw[member.body.end..member.range.end];
    let want_crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let want_len = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    // The trailer's length sizes the buffer, within reason: it is only a
    // claim until the text is inflated (deflate shrinks JSON about six
    // times; a bigger claim grows the buffer as the text comes).
    let mut text = Vec::with_capacity((want_len as usize).min(body.len().saturating_mul(16)));
    let mut decoder = flate2::read::DeflateDecoder::new(body);
    // A member says how long its text is; never read past that (a bomb
    // stops there and fails the length check).
    (&mut decoder)
        .take(u64::from(want_len) + 1)
        .read_to_end(&mut text)?;
    let mut crc = Crc::new();
    crc.update(&text);
    if crc.sum() != want_crc || text.len() != want_len as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "gzip member fails its CRC or length check",
        ));
    }
    Ok(text)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What Python's `gzip.decompress` makes of `gz`.
    pub(crate) fn python_gunzip(gz: &[u8]) -> Vec<u8> {
        let mut py = std::process::Command::new("python3")
            .args(["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        py.stdin.take().unwrap().write_all(gz).unwrap();
        let out = py.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    fn index(first: &str, entries: u32) -> MemberIndex {
        MemberIndex {
            pretty: false,
            entries,
            first_key: first.into(),
        }
    }

    #[test]
    fn members_are_found_checked_and_read_back_as_one_stream() {
        let texts = ["{\"/a\": 1, \"/b\": 2", ", \"/c\": 3", ", \"/d\": 4}"];
        let keys = ["/a", "/c", "/d"];
        let mut gz = Vec::new();
        for (t, k) in texts.iter().zip(keys) {
            gz.extend(member(t.as_bytes(), &index(k, 1)).unwrap());
        }
        let found = members(&gz).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].index, index("/c", 1));
        assert_eq!(found[2].range.end, gz.len());
        for (m, t) in found.iter().zip(texts) {
            assert_eq!(inflate(&gz, m).unwrap(), t.as_bytes());
        }
        let mut whole = String::new();
        flate2::read::MultiGzDecoder::new(gz.as_slice())
            .read_to_string(&mut whole)
            .unwrap();
        assert_eq!(whole, texts.concat());
        // Python's gzip, which grokmirror reads manifests with, reads it.
        assert_eq!(python_gunzip(&gz), texts.concat().as_bytes());

        // A flipped byte in a member's body fails its check.
        let mut bad = gz.clone();
        let mid = found[1].range.start + (found[1].range.len() - 9);
        bad[mid] ^= 0x55;
        assert!(inflate(&bad, &found[1]).is_err());
    }

    #[test]
    fn files_without_our_index_have_no_members() {
        let mut plain = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        plain.write_all(b"{}").unwrap();
        let plain = plain.finish().unwrap();
        assert_eq!(members(&plain), None);
        let one = member(b"{}", &index("", 0)).unwrap();
        assert!(members(&one).is_some());
        // Cut short, trailing garbage, keys out of order: none.
        assert_eq!(members(&one[..one.len() - 1]), None);
        let mut extra = one.clone();
        extra.push(0);
        assert_eq!(members(&extra), None);
        let mut unordered = member(b"{\"/b\": 1", &index("/b", 1)).unwrap();
        unordered.extend(member(b", \"/a\": 1}", &index("/a", 1)).unwrap());
        assert_eq!(members(&unordered), None);
    }
}
