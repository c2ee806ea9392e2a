//! Housekeeping after fetches (grokmirror calls it "spa"): fetching a
//! member's new objects into its object-storage repository, a quick
//! repack when loose objects piled up, `pack-refs`.
//!
//! None of it is needed for the mirror to be correct, so it stays out of
//! the fetches' way:
//!
//! - It runs on its own thread, one repository at a time, at the lowest
//!   CPU priority (nice 19) and the lowest best-effort I/O priority. The
//!   priorities are set on the thread, and Linux hands a thread's nice
//!   value and I/O priority down to every process and thread it starts, so
//!   every git it runs (directly, or inside a library call such as the
//!   object-storage fetch) inherits them without anything in between.
//!   Best-effort level 7 rather than the idle class: idle I/O can starve
//!   for as long as anything else touches the disk, which on a busy mirror
//!   is forever.
//! - In the daemon it waits while the load average is above `[pull]
//!   housekeeping_max_load` (by default the number of CPUs).
//! - It never makes a fetch wait: a repository that has a fetch queued or
//!   running is skipped for now, and when a fetch arrives for the
//!   repository being worked on, that work is stopped (its git killed, its
//!   lock released) and queued again. Repository locks are only ever
//!   tried, never waited for; a repository locked by another program
//!   (grok-fsck) is left to that program.

mod priority;
mod worker;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grokmirror::git::Git;
use grokmirror::objstore::FetchMethod;
use grokmirror::tree::Tree;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{info, warn};

pub use priority::{cpus, load_average, lower_priority_of_this_thread};
use worker::worker;

/// How often a paused worker looks at the load again.
const LOAD_RECHECK: Duration = Duration::from_secs(5);
/// How often a worker whose every queued repository is being fetched looks
/// again.
const WANTED_RECHECK: Duration = Duration::from_secs(2);

/// What a repository needs after a fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// Fetch the repository's objects into this object-storage repository.
    pub objstore: Option<PathBuf>,
    /// A quick repack (`repack::quick_repack_args`).
    pub repack: bool,
    /// `git pack-refs` (after a repack, as grokmirror does).
    pub pack_refs: bool,
    /// `git pack-refs --all` (after the first clone).
    pub pack_refs_all: bool,
}

impl Actions {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == Actions::default()
    }

    /// Add what `other` asks for.
    pub fn merge(&mut self, other: Actions) {
        if other.objstore.is_some() {
            self.objstore = other.objstore;
        }
        self.repack |= other.repack;
        self.pack_refs |= other.pack_refs;
        self.pack_refs_all |= other.pack_refs_all;
    }
}

/// What the engine and the housekeeping thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Repositories with a fetch queued or running: not to be touched.
    wanted: HashSet<String>,
    /// The repository being worked on.
    busy: Option<String>,
    /// Repositories waiting for housekeeping.
    queued: usize,
    /// Items sent to the thread that it has not received yet: counted so
    /// that a run ending right after its last job still sees them (and
    /// waits for them) rather than stopping the thread under them.
    in_flight: usize,
    /// Waiting for the system load to go down.
    paused: bool,
}

/// Counts for the stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Repositories waiting.
    pub queued: usize,
    /// Whether one is being worked on.
    pub active: bool,
    /// Whether it waits for the system load to go down.
    pub paused: bool,
}

impl Load {
    /// Repositories in housekeeping, waiting or active.
    pub fn total(&self) -> usize {
        self.queued + usize::from(self.active)
    }
}

/// One repository's housekeeping.
#[derive(Debug, Clone)]
struct Item {
    key: String,
    path: PathBuf,
    actions: Actions,
}

/// The tools housekeeping uses, from the current settings.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The git to run.
    pub git: Git,
    /// How objects go into object storage (`[core] objstore_uses_plumbing`).
    pub objstore_method: FetchMethod,
    /// `[fsck] extra_repack_flags`.
    pub extra_repack_flags: Vec<String>,
    /// The git makes geometric repacks with a multi-pack bitmap
    /// (`repack::GEOMETRIC_GIT`): repositories that borrow nothing get
    /// those as their quick repack.
    pub geometric_repacks: bool,
    /// The top level: repositories are opened through it, never by path.
    pub tree: Tree,
    /// Wait while the one-minute load average is above this (`None`:
    /// never wait).
    pub max_load: Option<f64>,
}

/// Where the load average comes from (the system's; tests give their own).
pub type LoadSource = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

enum Msg {
    Queue(Item, Arc<Tools>),
    Cancel(String),
    Drain(tokio::sync::oneshot::Sender<()>),
}

/// What the housekeeping thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Housekeeping of a repository ended (done, or skipped because
    /// another program holds its lock).
    Finished(String),
    /// The repository is free for a fetch (answer to a cancel request).
    Released(String),
}

/// The engine's handle on the housekeeping thread.
#[derive(Debug)]
pub struct Housekeeper {
    tx: Option<UnboundedSender<Msg>>,
    shared: Arc<Mutex<Shared>>,
    /// Reports from the thread.
    pub events: UnboundedReceiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Queue(item, _) => write!(f, "Queue({})", item.key),
            Msg::Cancel(k) => write!(f, "Cancel({k})"),
            Msg::Drain(_) => f.write_str("Drain"),
        }
    }
}

/// Should the housekeeping thread panic (the panic hook reports it), the
/// repository it was working on is released: a fetch waiting for it must
/// not wait forever.
struct ReleaseOnPanic {
    shared: Arc<Mutex<Shared>>,
    events: UnboundedSender<Event>,
}

impl Drop for ReleaseOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        self.shared.clear_poison();
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared.queued = 0;
        shared.in_flight = 0;
        if let Some(key) = shared.busy.take() {
            let _ = self.events.send(Event::Released(key));
        }
    }
}

impl Housekeeper {
    /// Start the housekeeping thread.
    pub fn start() -> std::io::Result<Housekeeper> {
        Housekeeper::start_with_load(Arc::new(load_average))
    }

    /// Start the housekeeping thread, reading the load average from
    /// `load`.
    pub fn start_with_load(load: LoadSource) -> std::io::Result<Housekeeper> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, rx) = unbounded_channel();
        let (etx, events) = unbounded_channel();
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("grok-pull-housekeeping".into())
                .spawn(move || {
                    lower_priority_of_this_thread();
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(r) => r,
                        Err(e) => {
                            warn!("      spa: cannot start: {e}; no housekeeping in this run");
                            return;
                        }
                    };
                    let _release = ReleaseOnPanic {
                        shared: shared.clone(),
                        events: etx.clone(),
                    };
                    runtime.block_on(worker(rx, etx, shared, load));
                })?
        };
        Ok(Housekeeper {
            tx: Some(tx),
            shared,
            events,
            thread: Some(thread),
        })
    }

    fn send(&self, msg: Msg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(msg);
        }
    }

    /// Queue housekeeping for a repository (merged with what is queued for
    /// it already).
    pub fn queue(&self, key: &str, path: &Path, actions: Actions, tools: Arc<Tools>) {
        if actions.is_empty() || self.tx.is_none() {
            return;
        }
        self.shared.lock().expect("poisoned").in_flight += 1;
        let item = Item {
            key: key.to_string(),
            path: path.to_path_buf(),
            actions,
        };
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Queue(item, tools)).is_ok());
        if !sent {
            // The thread is gone (it panicked): nothing will receive it.
            let mut shared = self.shared.lock().expect("poisoned");
            shared.in_flight = shared.in_flight.saturating_sub(1);
        }
    }

    /// A fetch wants this repository. Returns true when housekeeping is
    /// working on it right now: then the fetch must wait for
    /// [`Event::Released`], which comes as soon as that work is stopped.
    pub fn claim(&self, key: &str) -> bool {
        let busy = {
            let mut shared = self.shared.lock().expect("poisoned");
            shared.wanted.insert(key.to_string());
            shared.busy.as_deref() == Some(key)
        };
        if busy {
            self.send(Msg::Cancel(key.to_string()));
        }
        busy
    }

    /// No fetch wants this repository any more.
    pub fn unclaim(&self, key: &str) {
        self.shared.lock().expect("poisoned").wanted.remove(key);
    }

    /// Replace the set of repositories fetches want.
    pub fn set_claims<'a>(&self, keys: impl Iterator<Item = &'a String>) {
        let mut shared = self.shared.lock().expect("poisoned");
        shared.wanted = keys.cloned().collect();
    }

    /// What is queued and active.
    pub fn load(&self) -> Load {
        let shared = self.shared.lock().expect("poisoned");
        Load {
            queued: shared.queued + shared.in_flight,
            active: shared.busy.is_some(),
            paused: shared.paused,
        }
    }

    /// Resolves when nothing is queued or running.
    pub async fn drained(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Msg::Drain(tx));
        let _ = rx.await;
    }

    /// Stop: the work in progress is interrupted (its git killed), the
    /// queue dropped. Returns at once; see [`Housekeeper::shutdown`].
    pub fn stop(&mut self) {
        if self.tx.take().is_some() {
            let dropped = self.load();
            if dropped.total() > 0 {
                info!(
                    "      spa: stopped; {} left for later (grok-fsck repacks too)",
                    if dropped.total() == 1 {
                        "1 repository".to_string()
                    } else {
                        format!("{} repositories", dropped.total())
                    }
                );
            }
        }
    }

    /// Stop and wait for the thread to end (an object-storage fetch in
    /// progress, which can't be interrupted, is let finish).
    pub fn shutdown(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Housekeeper {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::tree::Reserved;

    fn tools_for(top: &Path, max_load: Option<f64>) -> Tools {
        Tools {
            git: Git::from_env(),
            objstore_method: FetchMethod::Porcelain,
            extra_repack_flags: Vec::new(),
            geometric_repacks: false,
            max_load,
            tree: Tree::open(top, Reserved::none()).unwrap(),
        }
    }

    #[tokio::test]
    async fn waits_while_the_load_is_too_high() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let busy_system = Arc::new(AtomicBool::new(true));
        let load: LoadSource = {
            let busy = busy_system.clone();
            Arc::new(move || {
                Some(if busy.load(Ordering::SeqCst) {
                    50.0
                } else {
                    0.5
                })
            })
        };
        let mut hk = Housekeeper::start_with_load(load).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        Git::from_env()
            .run_ok(None, ["init", "-q", "--bare", repo.to_str().unwrap()])
            .unwrap();
        let tools = Arc::new(tools_for(dir.path(), Some(2.0)));
        let actions = Actions {
            pack_refs_all: true,
            ..Actions::default()
        };
        hk.queue("/r.git", &repo, actions, tools);
        while !hk.load().paused {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(hk.load().total(), 1, "still waiting, not started");
        busy_system.store(false, Ordering::SeqCst);
        let event = tokio::time::timeout(Duration::from_secs(60), hk.events.recv())
            .await
            .expect("done once the load went down");
        assert_eq!(event, Some(Event::Finished("/r.git".into())));
        assert!(!hk.load().paused);
        hk.shutdown();
    }

    /// What was queued counts at once, before the thread has taken it: a
    /// one-shot run that ends right after its last fetch must see it and
    /// wait, not stop the thread under it (the race behind a flaky
    /// "updates reach object storage").
    #[tokio::test]
    async fn queued_work_counts_before_the_thread_takes_it() {
        let mut hk = Housekeeper::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        Git::from_env()
            .run_ok(None, ["init", "-q", "--bare", repo.to_str().unwrap()])
            .unwrap();
        let tools = Arc::new(tools_for(dir.path(), None));
        for _ in 0..50 {
            let actions = Actions {
                pack_refs_all: true,
                ..Actions::default()
            };
            hk.queue("/r.git", &repo, actions, tools.clone());
            assert!(hk.load().total() > 0, "counted as soon as queued");
            hk.drained().await;
            assert_eq!(hk.load().total(), 0, "nothing left once drained");
        }
        hk.shutdown();
    }
}
