//! Telling the next replicas what this one fetched (`[pull] notify_peers`):
//! a hub POSTs the manifest paths of the repositories it updated to each
//! leaf's `notify_listen`, signed with the shared secret, so the leaves
//! fetch them from the hub at once instead of at their next refresh.
//!
//! Best effort by design: a short timeout per request, paths split into
//! requests of at most [`MAX_PATHS`], and a peer that does not answer is
//! logged once per outage (and once when it answers again). It never
//! blocks or fails a pull: the leaves' own polls still catch up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::{signature, Secret};
use crate::MAX_PATHS;

/// How long one request to a peer may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One peer and whether it failed last time.
#[derive(Debug)]
struct Peer {
    url: String,
    failing: AtomicBool,
}

/// The peers to notify, with one HTTP client for all of them.
#[derive(Debug, Clone)]
pub struct Downstream {
    client: reqwest::Client,
    secret: Secret,
    peers: Arc<Vec<Peer>>,
}

/// The bodies to send for `keys`: one path per line, at most
/// [`MAX_PATHS`] to a body.
pub fn bodies(keys: &[String]) -> Vec<String> {
    keys.chunks(MAX_PATHS)
        .map(|chunk| chunk.iter().map(|k| format!("{k}\n")).collect())
        .collect()
}

/// Split `[pull] notify_peers` into URLs (blanks and newlines separate
/// them).
pub fn parse_urls(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_string).collect()
}

/// The first URL that is not `http://` or `https://`, if any.
pub fn bad_url(urls: &[String]) -> Option<&str> {
    urls.iter().map(String::as_str).find(|u| {
        !(u.starts_with("http://") || u.starts_with("https://")) || reqwest::Url::parse(u).is_err()
    })
}

impl Downstream {
    /// Peers at `urls`, signing with `secret`.
    pub fn new(urls: &[String], secret: Secret) -> anyhow::Result<Downstream> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("grokmirror-rs/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let peers = urls
            .iter()
            .map(|url| Peer {
                url: url.clone(),
                failing: AtomicBool::new(false),
            })
            .collect();
        Ok(Downstream {
            client,
            secret,
            peers: Arc::new(peers),
        })
    }

    /// Tell every peer about `keys` (concurrently; returns when all have
    /// answered or timed out).
    pub async fn notify(&self, keys: Vec<String>) {
        let bodies = Arc::new(bodies(&keys));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..self.peers.len() {
            let me = self.clone();
            let bodies = bodies.clone();
            set.spawn(async move { me.send(&me.peers[i], &bodies).await });
        }
        while set.join_next().await.is_some() {}
    }

    async fn send(&self, peer: &Peer, bodies: &[String]) {
        for body in bodies {
            let sig = signature::sign(&self.secret, body.as_bytes());
            let sent = self
                .client
                .post(&peer.url)
                .header(signature::HEADER, sig)
                .header("Content-Type", "text/plain")
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("it answered {}", r.status())),
                Err(e) => Some(format!("{e}")),
            };
            match failure {
                None => {
                    if peer.failing.swap(false, Ordering::Relaxed) {
                        info!("   notify: {} takes notifications again", peer.url);
                    }
                    debug!(
                        "   notify: told {} of {} path(s)",
                        peer.url,
                        body.lines().count()
                    );
                }
                Some(why) => {
                    if !peer.failing.swap(true, Ordering::Relaxed) {
                        warn!(
                            "   notify: cannot notify {}: {why}; it catches up at its own refresh (said once until it answers again)",
                            peer.url
                        );
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_into_bounded_bodies() {
        let keys: Vec<String> = (0..MAX_PATHS + 3).map(|i| format!("/r{i}.git")).collect();
        let b = bodies(&keys);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].lines().count(), MAX_PATHS);
        assert_eq!(
            b[1],
            format!(
                "/r{}.git\n/r{}.git\n/r{}.git\n",
                MAX_PATHS,
                MAX_PATHS + 1,
                MAX_PATHS + 2
            )
        );
        assert!(bodies(&[]).is_empty());
        let urls = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(bad_url(&urls(&["http://a:1/", "https://b/n"])), None);
        assert_eq!(
            bad_url(&urls(&["http://a:1/", "leaf:9232"])),
            Some("leaf:9232")
        );
        assert_eq!(bad_url(&urls(&["http://[::1"])), Some("http://[::1"));
        assert_eq!(
            parse_urls(" http://a:1/ \n\thttp://b:2/\n"),
            vec!["http://a:1/".to_string(), "http://b:2/".to_string()]
        );
    }
}
