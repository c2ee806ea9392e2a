//! The files grokmirror and grokmirror-rs exchange or keep, byte for byte
//! compatible with grokmirror 2.0.12 (SPEC §1): the manifest and the JSON
//! it is written in, the untrusted remote manifest as it is read, the
//! replica's copy of the last remote manifest, grok-fsck's status file and
//! our own freshness file.

pub mod freshness;
pub mod fsck_status;
pub mod gzip_members;
pub mod json;
pub mod last_remote;
pub mod manifest;
pub mod manifest_members;
pub mod manifest_parallel;
pub mod remote_manifest;

/// The longest start of `text` that is at most `max` bytes and ends on a
/// character boundary (for messages and values cut to a bound).
pub fn cut_at(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The shortest end of `text` that keeps at most `max` bytes and starts on
/// a character boundary.
pub fn last_at_most(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(cut_at("héllo", 2), "h");
        assert_eq!(cut_at("héllo", 3), "hé");
        assert_eq!(cut_at("abc", 10), "abc");
        assert_eq!(last_at_most("abcé", 1), "");
        assert_eq!(last_at_most("abcé", 2), "é");
        assert_eq!(last_at_most("abc", 10), "abc");
    }
}
