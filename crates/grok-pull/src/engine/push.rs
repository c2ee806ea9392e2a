//! The push notifications' side of the loop: a notification (from the
//! socket or the HTTP endpoint) becomes a job; and what was fetched is
//! told to `[pull] notify_peers`.

use grokmirror::formats::last_remote::unix_now;
use grokmirror::repo;
use tokio::sync::mpsc;
use tracing::info;

use super::Engine;
use crate::daemon::listener::{Listener, Notification};
use crate::daemon::notify_http::request::MAX_PATHS;
use crate::daemon::notify_http::NotifyServer;
use crate::plan::{Action, RepoJob};
use crate::settings::Settings;
use grokmirror_notify::downstream::Downstream;
use grokmirror_notify::Secret;

/// The push socket, while it is open.
#[derive(Debug, Default)]
pub(super) struct PushSocket {
    /// The bound socket (removed when dropped).
    pub listener: Option<Listener>,
    /// The task serving its clients.
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// The HTTP endpoint (`[pull] notify_listen`), sending to the same
    /// queue.
    pub http: Option<NotifyServer>,
    /// The notifications the clients sent.
    pub notes: Option<mpsc::Receiver<Notification>>,
}

impl PushSocket {
    /// Stop listening (the socket file goes).
    pub fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.listener = None;
        self.http = None;
        self.notes = None;
    }
}

/// The shared secret, for `what` (the option that needs it): a usage
/// error (exit 2) when it is not configured or not usable.
pub(super) fn secret_for(settings: &Settings, what: &str) -> anyhow::Result<Secret> {
    let Some(path) = &settings.notify_secret_file else {
        return Err(grokmirror_cli::usage(format!(
            "[pull] {what} is set but [pull] notify_secret_file is not: name a file holding the shared secret (e.g. made with `openssl rand -hex 32`, mode 0600)"
        )));
    };
    Secret::load(path).map_err(|e| grokmirror_cli::usage(e.to_string()))
}

/// The peers to tell of fetches, when `[pull] notify_peers` names any.
pub(super) fn downstream_of(settings: &Settings) -> anyhow::Result<Option<Downstream>> {
    if settings.notify_peers.is_empty() {
        return Ok(None);
    }
    if let Some(url) = grokmirror_notify::downstream::bad_url(&settings.notify_peers) {
        return Err(grokmirror_cli::usage(format!(
            "[pull] notify_peers: {url:?} is not an http:// or https:// URL; give each peer's notify_listen as http://HOST:PORT/"
        )));
    }
    let secret = secret_for(settings, "notify_peers")?;
    Ok(Some(Downstream::new(&settings.notify_peers, secret)?))
}

/// The next message of `rx`, or never when there is none.
pub(super) async fn recv_opt<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a push to the repository at `path` calls for: a fetch when it is
/// there, a clone when not.
fn action_for_push(is_repo: bool) -> Action {
    if is_repo {
        Action::Update {
            adopt: false,
            reconfig: false,
            fetch: true,
        }
    } else {
        Action::Clone
    }
}

impl Engine {
    /// Remember a repository fetched or cloned, for `notify_peers`.
    pub(super) fn fetched_for_peers(&mut self, key: &str) {
        if self.downstream.is_some() {
            self.peer_keys.push(key.to_string());
        }
    }

    /// Tell the peers of what was fetched, when the work is done (or a
    /// request's worth piled up). Runs beside the loop, like the hooks,
    /// so a slow peer delays nothing.
    pub(super) fn maybe_notify_peers(&mut self, all_done: bool) {
        let Some(down) = &self.downstream else {
            return;
        };
        if self.peer_keys.is_empty() || !(all_done || self.peer_keys.len() >= MAX_PATHS) {
            return;
        }
        let keys = std::mem::take(&mut self.peer_keys);
        let down = down.clone();
        self.hooks.spawn(async move { down.notify(keys).await });
    }

    pub(super) fn on_notification(&mut self, note: Notification) {
        if self.stopping.is_some() {
            return;
        }
        let key = note.0;
        let Some(entry) = self.known.get(&key) else {
            self.stats.notifications_ignored += 1;
            info!(" listener: {key} (not known, ignored)");
            return;
        };
        info!(" listener: {key}");
        self.stats.notifications += 1;
        let mut entry = entry.clone();
        // Something was pushed just now.
        entry.modified = unix_now();
        let path = grokmirror::tree::key::key_path(self.settings().toplevel(), &key);
        let action = action_for_push(repo::is_bare_repo(&path));
        self.push(
            RepoJob {
                key,
                action,
                entry: Some(entry),
                notified: true,
            },
            None,
        );
    }
}
