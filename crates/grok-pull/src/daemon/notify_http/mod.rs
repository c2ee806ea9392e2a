//! The daemon's HTTP notification endpoint (`[pull] notify_listen`): the
//! push socket's repository paths over the network, each request signed
//! with the shared secret (`X-Hub-Signature-256`, see
//! [`grokmirror_notify::signature`]).
//!
//! A small hand-written HTTP/1.1 reader, like [`super::httpmetrics`],
//! rather than hyper's server: every bound is ours to set and see in one
//! place (head, body, time, connections), one request per connection, and
//! the order of the checks is the point: the rate limit comes right after
//! the head, before the body is read or any HMAC computed; the signature
//! before the body is parsed; nothing reaches the engine unsigned.

pub mod limits;
pub mod request;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, warn};

use crate::daemon::listener::Notification;
use grokmirror_notify::{signature, Secret};
use limits::{Limiter, RefusalLog, SUMMARY_EVERY};
use request::{head_end, parse_body, parse_head, Answer, MAX_HEAD};

/// Connections served at once; others wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client may take to send its whole request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused client's unread body is drained before closing (so
/// it reads our answer instead of a reset).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What the connections share.
struct Shared {
    secret: Secret,
    tx: mpsc::Sender<Notification>,
    limiter: Mutex<Limiter>,
    refusals: Mutex<RefusalLog>,
}

impl Shared {
    fn refused(&self, ip: IpAddr, why: &str) {
        let line =
            self.refusals
                .lock()
                .expect("refusal log poisoned")
                .refused(ip, why, Instant::now());
        if let Some(line) = line {
            warn!("   notify: {line}");
        }
    }
}

/// The endpoint; it stops listening when dropped.
#[derive(Debug)]
pub struct NotifyServer {
    task: tokio::task::JoinHandle<()>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl NotifyServer {
    /// Listen on `addr` (`host:port`, bound to that address only) and send
    /// the paths of every accepted request to `tx`.
    pub async fn bind(
        addr: &str,
        secret: Secret,
        tx: mpsc::Sender<Notification>,
    ) -> anyhow::Result<NotifyServer> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on [pull] notify_listen = {addr}; free the port or change it")
        })?;
        let local = listener.local_addr()?;
        info!("   notify: listening for signed notifications on http://{local}/");
        let shared = Arc::new(Shared {
            secret,
            tx,
            limiter: Mutex::new(Limiter::new(Instant::now())),
            refusals: Mutex::new(RefusalLog::default()),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(NotifyServer { task, addr: local })
    }
}

impl Drop for NotifyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut summaries = tokio::time::interval(SUMMARY_EVERY);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Waits only while MAX_CONNECTIONS are busy, each for at most
        // READ_TIMEOUT (and the drain).
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = loop {
            tokio::select! {
                _ = summaries.tick() => {
                    let lines = shared.refusals.lock().expect("refusal log poisoned").tick(Instant::now());
                    for line in lines {
                        warn!("   notify: {line}");
                    }
                }
                accepted = listener.accept() => break accepted,
            }
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                debug!("   notify: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        // Owned by the set: aborting the server ends them too.
        connections.spawn(async move {
            let _permit = permit;
            if let Err(e) = serve(stream, peer.ip(), &shared).await {
                debug!("   notify: {peer}: {e}");
            }
        });
    }
}

/// Read at most `limit` more bytes into `buf` until `done` says so, the
/// peer hangs up or `deadline` passes (then `false`).
async fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
    deadline: Instant,
    done: impl Fn(&[u8]) -> bool,
) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    while !done(buf) && buf.len() < limit {
        let want = chunk.len().min(limit - buf.len());
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut chunk[..want])).await;
        match read {
            Err(_) => return Ok(false),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(0)) => return Ok(done(buf)),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(done(buf))
}

async fn answer(stream: &mut TcpStream, answer: &Answer, unread: bool) -> std::io::Result<()> {
    stream.write_all(answer.response().as_bytes()).await?;
    stream.shutdown().await?;
    if unread {
        // Closing with unread input makes the kernel send a reset, which
        // may reach the client before our answer does.
        let mut sink = Vec::new();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let _ = read_until(stream, &mut sink, request::MAX_BODY, deadline, |_| false).await;
    }
    Ok(())
}

async fn serve(mut stream: TcpStream, ip: IpAddr, shared: &Shared) -> std::io::Result<()> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let complete = read_until(&mut stream, &mut buf, MAX_HEAD + 1, deadline, |b| {
        head_end(b).is_some()
    })
    .await?;
    // The cheap refusal first, for every request (even a broken one): no
    // body is read, no HMAC computed.
    if !shared
        .limiter
        .lock()
        .expect("limiter poisoned")
        .allow(ip, Instant::now())
    {
        shared.refused(ip, "rate-limited (429)");
        return answer(&mut stream, &Answer::TooMany, true).await;
    }
    let Some(end) = head_end(&buf).filter(|_| complete) else {
        if buf.len() > MAX_HEAD {
            let a = Answer::TooLarge(format!("the request head is limited to {MAX_HEAD} bytes"));
            shared.refused(ip, "request head too large");
            return answer(&mut stream, &a, true).await;
        }
        debug!("   notify: {ip}: no complete request head within {READ_TIMEOUT:?}");
        return Ok(());
    };
    let head = match parse_head(&buf[..end]) {
        Ok(h) => h,
        Err(a) => {
            shared.refused(ip, a.status());
            return answer(&mut stream, &a, true).await;
        }
    };
    let mut body = buf.split_off(end);
    let length = head.content_length;
    if !read_until(&mut stream, &mut body, length, deadline, |b| {
        b.len() >= length
    })
    .await?
    {
        debug!("   notify: {ip}: the body did not arrive within {READ_TIMEOUT:?}");
        return Ok(());
    }
    // Bytes past Content-Length are not part of the signed body.
    body.truncate(length);
    if let Err(why) = signature::verify(&shared.secret, &body, head.signature.as_deref()) {
        shared.refused(ip, &why.to_string());
        return answer(&mut stream, &Answer::Unauthorized, false).await;
    }
    let notes = match parse_body(&body) {
        Ok(n) => n,
        Err(a) => {
            // Signed, so it is a peer's mistake worth a line each time.
            warn!(
                "   notify: {ip}: refused a signed notification: {}",
                a.body().trim_end()
            );
            return answer(&mut stream, &a, false).await;
        }
    };
    debug!("   notify: {ip}: {} path(s)", notes.len());
    for note in notes {
        if shared.tx.send(note).await.is_err() {
            return Ok(());
        }
    }
    answer(&mut stream, &Answer::Accepted, false).await
}
