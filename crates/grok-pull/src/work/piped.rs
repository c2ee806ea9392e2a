//! Bounded plumbing between child processes or HTTP bodies and the
//! blocking manifest parser: output is read while counting, never held
//! whole.

use std::io::{self, Read};

use grokmirror::formats::manifest::{self, decoding_reader, StreamFault};
use grokmirror::formats::remote_manifest::{self, RemoteManifest, Rules};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// How many chunks may wait between the reader and the parser.
const QUEUE: usize = 8;

/// One piece of the manifest, or why the source stopped.
pub(crate) type Chunk = Result<Vec<u8>, String>;

/// A blocking [`Read`] over chunks sent from async code.
struct ChunkReader {
    rx: mpsc::Receiver<Chunk>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.current.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(why)) => {
                    return Err(io::Error::other(StreamFault::Source(io::Error::other(why))))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A parser running on a blocking thread, fed through the returned sender
/// (dropping it ends the input). Its result: the manifest, or why not.
pub(crate) fn spawn_parser(
    max_bytes: u64,
    what: &str,
    rules: &Rules,
) -> (
    mpsc::Sender<Chunk>,
    tokio::task::JoinHandle<Result<RemoteManifest, manifest::Error>>,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (what, rules) = (what.to_string(), rules.clone());
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            rx,
            current: Vec::new(),
            pos: 0,
        };
        let reader = decoding_reader(reader, Some(max_bytes), &what)?;
        remote_manifest::parse_untrusted_reader(reader, &what, &rules)
    });
    (tx, parser)
}

/// Read `pipe` to its end, keeping the first `keep` bytes; returns them
/// and the total count.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(mut pipe: R, keep: usize) -> (Vec<u8>, u64) {
    let mut head = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n as u64;
        let room = keep.saturating_sub(head.len()).min(n);
        head.extend_from_slice(&buf[..room]);
    }
    (head, total)
}

/// Text of a child's output for a log line: printable, cut after about
/// 200 bytes (with the full length said).
pub(crate) fn shown_output(head: &[u8], total: u64) -> String {
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim();
    if total > head.len() as u64 {
        remote_manifest::shown(trimmed, total)
    } else {
        remote_manifest::cut(trimmed)
    }
}
