//! The push-notification socket (`[pull] socket`): a Unix stream socket
//! taking manifest paths, one per line (`/pub/scm/git/git.git\n`, what
//! grokmirror's own listeners write). Several lines may come on one
//! connection.
//!
//! What arrives is untrusted: each line is capped in length, must be UTF-8
//! and a well-formed manifest path; anything else is logged (cut short)
//! and skipped, and a client sending too many such lines is cut off.
//! Connections are capped in number and closed when idle, so a client that
//! misbehaves can neither exhaust memory nor keep others out for long.
//! Whether a path names a repository we mirror is the engine's decision.
//!
//! The socket is never reachable with looser permissions than 0660: it is
//! bound inside a fresh private (0700) directory beside its path, given
//! mode 0660 there, and renamed into place, replacing a stale socket in
//! one step. A file at the path that is not a socket is an error, and so
//! is a socket another process is still listening on.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, warn};

/// The longest line accepted (a manifest path is at most 4096 bytes).
pub const MAX_LINE: usize = 4096 + 2;
/// How many clients may be connected at once; more wait in the kernel's
/// backlog until one leaves.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The socket's mode.
pub const SOCKET_MODE: u32 = 0o660;

/// A line that made it through validation: a manifest path, normalized to
/// one leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification(pub String);

/// The bound socket; the file is removed when this is dropped.
#[derive(Debug)]
pub struct Listener {
    path: PathBuf,
    dev_ino: (u64, u64),
    listener: Option<UnixListener>,
}

/// How many bad lines one connection may send before it is closed (each
/// is logged; a client spewing junk must not flood the log).
pub const MAX_BAD_LINES: usize = 16;
/// How much of a bad line the log shows.
const SHOWN_CHARS: usize = 120;

/// Why a line from a client names no repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// Not a well-formed manifest path (the reason).
    #[error("{0}")]
    BadPath(String),
}

/// Check a line from a client and return the manifest path it names.
pub fn parse_line(raw: &[u8]) -> Result<String, Error> {
    let text = std::str::from_utf8(raw).map_err(|_| Error::NotUtf8)?;
    let text = text.trim();
    grokmirror::tree::key::normalize_path(text).map_err(Error::BadPath)
}

/// What one line from a client amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Only whitespace: skipped silently.
    Blank,
    /// A well-formed manifest path.
    Path(Notification),
    /// Anything else: why, and the line as the log shows it (printable,
    /// cut short).
    Rejected {
        /// Why it was rejected.
        why: String,
        /// The start of the line, printable.
        shown: String,
    },
}

/// Classify one line (with or without its newline). Pure: the I/O around
/// it is [`read_client`].
pub fn classify(raw: &[u8]) -> Line {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match parse_line(raw) {
        Ok(key) => Line::Path(Notification(key)),
        Err(why) => {
            let lossy = String::from_utf8_lossy(raw);
            let mut shown: String = lossy.trim().chars().take(SHOWN_CHARS).collect();
            if lossy.trim().chars().nth(SHOWN_CHARS).is_some() {
                shown.push_str("...");
            }
            Line::Rejected {
                why: why.to_string(),
                shown: grokmirror::formats::remote_manifest::printable(&shown),
            }
        }
    }
}

fn stale_socket(path: &Path) -> anyhow::Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot check [pull] socket {}", path.display()))
        }
    };
    if !meta.file_type().is_socket() {
        return Err(grokmirror_cli::usage(format!(
            "[pull] socket {} exists and is not a socket; remove it or choose another path",
            path.display()
        )));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(grokmirror_cli::usage(format!(
            "[pull] socket {} is in use: another process is listening on it (is another grok-pull -o running for this mirror?)",
            path.display()
        )));
    }
    Ok(true)
}

impl Listener {
    /// Bind the socket at `path` with mode 0660.
    pub fn bind(path: &Path) -> anyhow::Result<Listener> {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(grokmirror_cli::usage(format!(
                "[pull] socket {}: the directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        let stale = stale_socket(path)?;
        let private = tempfile::Builder::new()
            .prefix(".grok-pull-sock")
            .tempdir_in(parent)
            .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
        let temp = private.path().join("s");
        let std_listener = std::os::unix::net::UnixListener::bind(&temp).with_context(|| {
            format!(
                "cannot bind [pull] socket {} (via {}; Unix socket paths are limited to 107 bytes)",
                path.display(),
                temp.display()
            )
        })?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(SOCKET_MODE))
            .with_context(|| format!("cannot set the mode of {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("cannot move the socket into place at {}", path.display()))?;
        drop(private);
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("cannot check [pull] socket {}", path.display()))?;
        let mode = meta.mode() & 0o7777;
        if !meta.file_type().is_socket() || mode != SOCKET_MODE {
            bail!(
                "[pull] socket {} has mode {mode:o}, not {SOCKET_MODE:o}; refusing to listen on it",
                path.display()
            );
        }
        if stale {
            info!(" listener: replaced the stale socket {}", path.display());
        }
        std_listener.set_nonblocking(true)?;
        let listener = UnixListener::from_std(std_listener)?;
        info!(" listener: listening on socket {}", path.display());
        Ok(Listener {
            path: path.to_path_buf(),
            dev_ino: (meta.dev(), meta.ino()),
            listener: Some(listener),
        })
    }

    /// Accept clients until `self` is dropped, sending each valid line to
    /// `tx`. Runs as a task of its own.
    pub fn serve(&mut self, tx: mpsc::Sender<Notification>) -> tokio::task::JoinHandle<()> {
        let listener = self.listener.take().expect("serve is called once");
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            let mut said_full = false;
            loop {
                let permit = match slots.clone().try_acquire_owned() {
                    Ok(p) => {
                        said_full = false;
                        p
                    }
                    Err(_) => {
                        if !said_full {
                            warn!(" listener: {MAX_CONNECTIONS} clients connected; others wait");
                            said_full = true;
                        }
                        match slots.clone().acquire_owned().await {
                            Ok(p) => p,
                            Err(_) => return,
                        }
                    }
                };
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        warn!(" listener: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    client(stream, tx).await;
                    drop(permit);
                });
            }
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only remove the socket if it is still ours.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.dev_ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Read one client's lines until it hangs up, sending each valid path to
/// `tx`. The connection is dropped when it idles for [`IDLE_TIMEOUT`],
/// sends a line longer than [`MAX_LINE`] (without reading the rest of it:
/// no more than `MAX_LINE` bytes are ever buffered) or its
/// [`MAX_BAD_LINES`]th bad line. Generic over the stream so tests can feed
/// it any bytes.
pub async fn read_client<R>(stream: R, tx: mpsc::Sender<Notification>)
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut reader = BufReader::with_capacity(MAX_LINE, stream);
    let mut line = Vec::with_capacity(256);
    let mut bad = 0;
    loop {
        line.clear();
        let read = tokio::time::timeout(
            IDLE_TIMEOUT,
            (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line),
        )
        .await;
        let n = match read {
            Err(_) => {
                debug!(" listener: closing an idle connection");
                return;
            }
            Ok(Err(e)) => {
                debug!(" listener: read failed: {e}");
                return;
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return;
        }
        if !line.ends_with(b"\n") && line.len() >= MAX_LINE {
            warn!(" listener: a line longer than {MAX_LINE} bytes; closing that connection");
            return;
        }
        match classify(&line) {
            Line::Blank => {}
            Line::Path(note) => {
                if tx.send(note).await.is_err() {
                    return;
                }
            }
            Line::Rejected { why, shown } => {
                warn!(" listener: ignoring {shown:?}: {why}");
                bad += 1;
                if bad >= MAX_BAD_LINES {
                    warn!(" listener: {bad} bad lines from one client; closing that connection");
                    return;
                }
            }
        }
    }
}

async fn client(stream: UnixStream, tx: mpsc::Sender<Notification>) {
    read_client(stream, tx).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(parse_line(b"/pub/a.git\n").unwrap(), "/pub/a.git");
        assert_eq!(parse_line(b"pub/a.git\r\n").unwrap(), "/pub/a.git");
        assert!(parse_line(b"/pub/../etc\n").is_err());
        assert!(parse_line(b"/a\xff.git\n").is_err());
        assert!(parse_line(b"/a\x01.git\n").is_err());
        assert_eq!(classify(b" \t\r\n"), Line::Blank);
        let long = [b'\x01'; 500];
        match classify(&long) {
            Line::Rejected { shown, .. } => assert!(shown.len() < 500 * 4, "{shown}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn binds_0660_replaces_stale_refuses_files_and_live_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("updater.socket");
        // A stale socket (nobody listening) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let mut l = Listener::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o660);
        // A live one is not.
        let e = Listener::bind(&path).unwrap_err();
        assert!(e.to_string().contains("in use"), "{e}");
        let (tx, mut rx) = mpsc::channel(8);
        let task = l.serve(tx);
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        use std::io::Write;
        s.write_all(b"/a.git\n../bad\n\n/b.git\n").unwrap();
        drop(s);
        assert_eq!(rx.recv().await.unwrap(), Notification("/a.git".into()));
        assert_eq!(rx.recv().await.unwrap(), Notification("/b.git".into()));
        task.abort();
        drop(l);
        assert!(!path.exists(), "the socket goes with the listener");
        std::fs::write(&path, "x").unwrap();
        let e = Listener::bind(&path).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
    }
}
