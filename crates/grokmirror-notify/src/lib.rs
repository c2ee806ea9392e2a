//! HTTP push notifications between machines (`[pull] notify_listen`,
//! `notify_secret_file`, `notify_peers`, `[publish] notify_peers`): the
//! shared secret, the signature both ends compute, and telling the next
//! replicas what changed ([`downstream`]). grok-pull's daemon is the
//! receiving end (`grok_pull::daemon::notify_http`); grok-pull (after a
//! fetch) and grok-publish (after an upload) are the senders.

/// The most repository paths one notification carries.
pub const MAX_PATHS: usize = 256;

pub mod downstream;
pub mod signature;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the shared secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read [pull] notify_secret_file {path}: {source}; create it (one line of random text, mode 0600) or fix its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it answered.
        source: std::io::Error,
    },
    /// The file holds nothing but a newline.
    #[error("[pull] notify_secret_file {0} is empty; put a long random line in it (e.g. `openssl rand -hex 32`)")]
    Empty(PathBuf),
}

/// The shared secret that signs notifications: the file's bytes, without
/// the trailing newline an editor adds.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from its bytes (trailing `\n` / `\r\n` trimmed); `None`
    /// when nothing is left.
    pub fn from_bytes(raw: &[u8]) -> Option<Secret> {
        let mut s = raw;
        while let Some(rest) = s.strip_suffix(b"\n") {
            s = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        (!s.is_empty()).then(|| Secret(s.to_vec()))
    }

    /// Read the secret from `path`.
    pub fn load(path: &Path) -> Result<Secret, Error> {
        let raw = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Secret::from_bytes(&raw).ok_or_else(|| Error::Empty(path.to_path_buf()))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Whether a file of this mode lets others than its owner read it (a
/// secret should be 0600 or 0400).
pub fn readable_by_others(mode: u32) -> bool {
    mode & 0o044 != 0
}

/// The mode of `path`, when it can be looked at.
pub fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_lose_their_trailing_newline_and_may_not_be_empty() {
        assert_eq!(Secret::from_bytes(b"abc\n").unwrap().bytes(), b"abc");
        assert_eq!(Secret::from_bytes(b"abc\r\n\n").unwrap().bytes(), b"abc");
        assert_eq!(Secret::from_bytes(b" a b ").unwrap().bytes(), b" a b ");
        assert!(Secret::from_bytes(b"\n").is_none());
        assert!(Secret::from_bytes(b"").is_none());
        assert!(format!("{:?}", Secret::from_bytes(b"key").unwrap()).contains(".."));
        assert!(readable_by_others(0o640));
        assert!(readable_by_others(0o604));
        assert!(!readable_by_others(0o600));
        assert!(!readable_by_others(0o400));
    }

    #[test]
    fn loading_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = Secret::load(&dir.path().join("none")).unwrap_err();
        assert!(e.to_string().contains("notify_secret_file"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(matches!(Secret::load(&empty), Err(Error::Empty(_))));
    }
}
