//! The push socket's side of the loop: a notification becomes a job.

use grokmirror::formats::last_remote::unix_now;
use grokmirror::repo;
use tokio::sync::mpsc;
use tracing::info;

use super::Engine;
use crate::daemon::listener::{Listener, Notification};
use crate::plan::{Action, RepoJob};

/// The push socket, while it is open.
#[derive(Debug, Default)]
pub(super) struct PushSocket {
    /// The bound socket (removed when dropped).
    pub listener: Option<Listener>,
    /// The task serving its clients.
    pub task: Option<tokio::task::JoinHandle<()>>,
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
        self.notes = None;
    }
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
