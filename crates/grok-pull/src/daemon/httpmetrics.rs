//! The daemon's optional `/metrics` endpoint (`[pull] metrics_listen`):
//! the same Prometheus text as `[pull] metrics_file`, as of its last
//! rewrite, over plain HTTP/1.0 for a Prometheus server to scrape.
//! Bounded like every input: a few connections at once, a request head of
//! at most 8 KiB read within 10 seconds, one answer per connection.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info};

/// Connections served at once; others wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 8;
/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What to answer a request line with: status line and body.
pub fn answer(request_line: &str, metrics: &str) -> (&'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", metrics.to_string()),
        ("GET" | "HEAD", _) => ("404 Not Found", "only /metrics is here\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    }
}

/// The endpoint, serving the text last given to [`MetricsServer::set`].
#[derive(Debug)]
pub struct MetricsServer {
    text: Arc<RwLock<String>>,
    task: tokio::task::JoinHandle<()>,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
}

impl MetricsServer {
    /// Listen on `addr` (`host:port`).
    pub async fn bind(addr: &str) -> anyhow::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on [pull] metrics_listen = {addr}; free the port or change it")
        })?;
        let local = listener.local_addr()?;
        info!("  metrics: serving http://{local}/metrics");
        let text = Arc::new(RwLock::new(String::new()));
        let shared = text.clone();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        debug!("  metrics: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let text = shared.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = serve(stream, &text).await {
                        debug!("  metrics: {e}");
                    }
                });
            }
        });
        Ok(MetricsServer {
            text,
            task,
            addr: local,
        })
    }

    /// Serve this text from now on.
    pub fn set(&self, text: String) {
        *self.text.write().expect("metrics text poisoned") = text;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, text: &RwLock<String>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_HEAD {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(READ_TIMEOUT, read).await.is_err() {
        return Ok(());
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or("");
    let metrics = text.read().expect("metrics text poisoned").clone();
    let (status, body) = answer(line, &metrics);
    let is_head = line.starts_with("HEAD ");
    let reply = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if is_head { "" } else { &body }
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(
            answer("GET /metrics HTTP/1.1", "x 1\n"),
            ("200 OK", "x 1\n".into())
        );
        assert_eq!(answer("GET /metrics?a=b HTTP/1.1", "x").0, "200 OK");
        assert_eq!(answer("GET / HTTP/1.1", "x").0, "404 Not Found");
        assert_eq!(
            answer("POST /metrics HTTP/1.1", "x").0,
            "405 Method Not Allowed"
        );
        assert_eq!(answer("", "x").0, "405 Method Not Allowed");
    }
}
