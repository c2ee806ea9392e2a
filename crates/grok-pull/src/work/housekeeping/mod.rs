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

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grokmirror::git::Git;
use grokmirror::lock::{self, Wait};
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::tree::Tree;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{debug, info, warn};

use crate::work::gitio;

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
    /// `git repack -Adlq` (plus `[fsck] extra_repack_flags`).
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
        if actions.is_empty() {
            return;
        }
        self.send(Msg::Queue(
            Item {
                key: key.to_string(),
                path: path.to_path_buf(),
                actions,
            },
            tools,
        ));
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
            queued: shared.queued,
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

/// Nice 19 and best-effort I/O priority 7 for the calling thread (and so
/// for everything it starts). Failures are harmless and only logged.
pub fn lower_priority_of_this_thread() {
    // SAFETY: plain syscalls on the calling thread's id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // SAFETY: setpriority with PRIO_PROCESS and a thread id changes only
    // that thread on Linux.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) } != 0 {
        debug!(
            "cannot lower the CPU priority of housekeeping: {}",
            std::io::Error::last_os_error()
        );
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_BE: libc::c_long = 2;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    let prio = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7;
    // SAFETY: ioprio_set on the calling thread; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
            prio,
        )
    };
    if rc != 0 {
        debug!(
            "cannot lower the I/O priority of housekeeping: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The one-minute load average, if it can be read.
pub fn load_average() -> Option<f64> {
    let mut loads = [0f64; 3];
    // SAFETY: getloadavg writes at most 3 doubles into the array.
    let n = unsafe { libc::getloadavg(loads.as_mut_ptr(), 3) };
    (n >= 1).then_some(loads[0])
}

/// The default `[pull] housekeeping_max_load`: the number of CPUs.
pub fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// The queue, in arrival order, merged per repository.
#[derive(Default)]
struct Queue {
    order: VecDeque<String>,
    items: HashMap<String, (Item, Arc<Tools>)>,
}

impl Queue {
    fn push(&mut self, item: Item, tools: Arc<Tools>) {
        match self.items.get_mut(&item.key) {
            Some((old, old_tools)) => {
                old.actions.merge(item.actions);
                old.path = item.path;
                *old_tools = tools;
            }
            None => {
                self.order.push_back(item.key.clone());
                self.items.insert(item.key.clone(), (item, tools));
            }
        }
    }

    /// The first repository nobody wants to fetch.
    fn take_free(&mut self, wanted: &HashSet<String>) -> Option<(Item, Arc<Tools>)> {
        let pos = self.order.iter().position(|k| !wanted.contains(k))?;
        let key = self.order.remove(pos)?;
        self.items.remove(&key)
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    /// The load limit of the next repository in line.
    fn max_load(&self) -> Option<f64> {
        let key = self.order.front()?;
        self.items.get(key)?.1.max_load
    }
}

async fn worker(
    mut rx: UnboundedReceiver<Msg>,
    events: UnboundedSender<Event>,
    shared: Arc<Mutex<Shared>>,
    load: LoadSource,
) {
    let mut queue = Queue::default();
    let mut current: Option<(Item, Arc<Tools>)> = None;
    let mut work: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>> = None;
    let mut drains: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    let mut said_paused = false;
    loop {
        let mut recheck = None;
        if current.is_none() && queue.len() > 0 {
            let overloaded = match queue.max_load() {
                Some(limit) => load().is_some_and(|l| l > limit),
                None => false,
            };
            shared.lock().expect("poisoned").paused = overloaded;
            if overloaded {
                if !said_paused {
                    info!(
                        "      spa: {} queued; waiting for the load average to drop below {}",
                        queue.len(),
                        queue.max_load().unwrap_or_default()
                    );
                    said_paused = true;
                }
                recheck = Some(LOAD_RECHECK);
            } else {
                said_paused = false;
                let mut s = shared.lock().expect("poisoned");
                match queue.take_free(&s.wanted) {
                    Some((item, tools)) => {
                        s.busy = Some(item.key.clone());
                        s.queued = queue.len();
                        drop(s);
                        work = Some(Box::pin(run_item(item.clone(), tools.clone())));
                        current = Some((item, tools));
                    }
                    None => recheck = Some(WANTED_RECHECK),
                }
            }
        }
        if current.is_none() && queue.len() == 0 {
            for d in drains.drain(..) {
                let _ = d.send(());
            }
        }
        tokio::select! {
            msg = rx.recv() => match msg {
                None => break,
                Some(Msg::Queue(item, tools)) => {
                    queue.push(item, tools);
                    shared.lock().expect("poisoned").queued = queue.len();
                }
                Some(Msg::Cancel(key)) => {
                    let is_current = current.as_ref().is_some_and(|(i, _)| i.key == key);
                    if is_current {
                        // Dropping the work kills its git and releases its
                        // lock; the repository is done again later.
                        work = None;
                        let (item, tools) = current.take().expect("checked");
                        info!("      spa: {key} interrupted for a fetch; later again");
                        queue.push(item, tools);
                        let mut s = shared.lock().expect("poisoned");
                        s.busy = None;
                        s.queued = queue.len();
                    }
                    let _ = events.send(Event::Released(key));
                }
                Some(Msg::Drain(ack)) => drains.push(ack),
            },
            _ = async {
                match work.as_mut() {
                    Some(w) => w.await,
                    None => std::future::pending().await,
                }
            } => {
                work = None;
                if let Some((item, _)) = current.take() {
                    shared.lock().expect("poisoned").busy = None;
                    let _ = events.send(Event::Finished(item.key));
                }
            }
            _ = async {
                match recheck {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
    // Dropping `work` interrupts what was running.
    drop(work);
    let mut s = shared.lock().expect("poisoned");
    s.busy = None;
}

/// Do one repository's housekeeping.
async fn run_item(item: Item, tools: Arc<Tools>) {
    let key = &item.key;
    let mut done: Vec<&str> = Vec::new();
    if let Some(obstrepo) = &item.actions.objstore {
        match lock::acquire_repo(obstrepo, lock::Wait::No) {
            Ok(Some(guard)) => {
                info!(" objstore: {key}");
                let git = tools.git.clone();
                let method = tools.objstore_method;
                let obst = obstrepo.clone();
                let member = item.path.clone();
                let fetched = tokio::task::spawn_blocking(move || {
                    let r = objstore::fetch_member_unlocked(&git, &obst, &member, method);
                    drop(guard);
                    r
                })
                .await;
                match fetched {
                    Ok(Ok(true)) => done.push("objstore"),
                    Ok(Ok(false)) => debug!(
                        "{key} is not a member of {}; not fetching into it",
                        obstrepo.display()
                    ),
                    Ok(Err(e)) => warn!(" objstore: {key}: {e}"),
                    Err(e) => warn!(" objstore: {key}: {e}"),
                }
            }
            Ok(None) => debug!(
                "{} is locked; its objects are fetched later",
                obstrepo.display()
            ),
            Err(e) => warn!(" objstore: {key}: {e}"),
        }
    }
    let a = &item.actions;
    if a.repack || a.pack_refs || a.pack_refs_all {
        // Opened through the tree's handles, so a directory swapped on the
        // way since the fetch cannot point git somewhere else.
        let opened = tools.tree.key(key).and_then(|k| {
            let parent = tools.tree.parent_of(&k, false).map_err(|e| e.to_string())?;
            Ok((parent, k))
        });
        let (parent, repo_key) = match opened {
            Ok(p) => p,
            Err(why) => {
                debug!("{key}: no housekeeping: {why}");
                return;
            }
        };
        let _guard = match parent.lock_entry(repo_key.name(), Wait::No) {
            Ok(Some(g)) => g,
            Ok(None) => {
                debug!("{key} is locked by another program; skipping its housekeeping");
                return;
            }
            Err(e) => {
                warn!("      spa: {key}: {e}");
                return;
            }
        };
        let dir = match parent.open_dir(repo_key.name()) {
            Ok(d) => d,
            Err(e) => {
                debug!("{key} is gone; no housekeeping ({e})");
                return;
            }
        };
        let path = dir.io_path();
        if !grokmirror::repo::is_bare_repo(&path) {
            debug!("{key} is gone; no housekeeping");
            return;
        }
        let git = &tools.git;
        if a.repack {
            if grokmirror::repo::alternate_repo(&path).is_some() {
                // `-l` drops what the lender holds (see drop_commit_graph).
                if let Err(e) = grokmirror::repack::drop_commit_graph(&path) {
                    warn!("      spa: {key}: cannot remove its commit-graph: {e}");
                }
            }
            let mut args: Vec<String> = vec!["repack".into(), "-Adlq".into()];
            args.extend(tools.extra_repack_flags.iter().cloned());
            match gitio::run_ok(git, Some(&path), &args, &[]).await {
                Ok(_) => done.push("repack"),
                Err(e) => debug!("cannot repack {key}: {e}"),
            }
        }
        let pack_args: &[&str] = if a.pack_refs_all {
            &["pack-refs", "--all"]
        } else if a.pack_refs {
            &["pack-refs"]
        } else {
            &[]
        };
        if !pack_args.is_empty() {
            match gitio::run_ok(git, Some(&path), pack_args, &[]).await {
                Ok(_) => done.push("pack-refs"),
                Err(e) => debug!("cannot pack the refs of {key}: {e}"),
            }
        }
    }
    if !done.is_empty() {
        info!("      spa: {key} (done: {})", done.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::tree::Reserved;

    #[test]
    fn children_of_a_lowered_thread_run_at_low_priority() {
        let (nice, ioprio) = std::thread::spawn(|| {
            lower_priority_of_this_thread();
            let child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let pid = child.id();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // Field 19 (nice) counted after the ")" that ends the name.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let nice: i64 = after.split(' ').nth(16).unwrap().parse().unwrap();
            // SAFETY: ioprio_get on our child.
            let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid as libc::c_long) };
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            (nice, ioprio)
        })
        .join()
        .unwrap();
        assert_eq!(nice, 19);
        assert_eq!(ioprio, (2 << 13) | 7, "best-effort class, level 7");
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
        let tools = Arc::new(Tools {
            git: Git::from_env(),
            objstore_method: FetchMethod::Porcelain,
            extra_repack_flags: Vec::new(),
            max_load: Some(2.0),
            tree: Tree::open(dir.path(), Reserved::none()).unwrap(),
        });
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

    #[test]
    fn queue_merges_and_skips_wanted() {
        let tools = Arc::new(Tools {
            git: Git::from_env(),
            objstore_method: FetchMethod::Porcelain,
            extra_repack_flags: Vec::new(),
            max_load: None,
            tree: Tree::open(&std::env::temp_dir(), Reserved::none()).unwrap(),
        });
        let mut q = Queue::default();
        let item = |key: &str, actions: Actions| Item {
            key: key.into(),
            path: PathBuf::from(key),
            actions,
        };
        q.push(
            item(
                "/a.git",
                Actions {
                    repack: true,
                    ..Default::default()
                },
            ),
            tools.clone(),
        );
        q.push(
            item(
                "/b.git",
                Actions {
                    pack_refs_all: true,
                    ..Default::default()
                },
            ),
            tools.clone(),
        );
        q.push(
            item(
                "/a.git",
                Actions {
                    pack_refs: true,
                    ..Default::default()
                },
            ),
            tools.clone(),
        );
        assert_eq!(q.len(), 2);
        let wanted: HashSet<String> = ["/a.git".to_string()].into();
        let (first, _) = q.take_free(&wanted).unwrap();
        assert_eq!(first.key, "/b.git");
        assert!(q.take_free(&wanted).is_none());
        let (a, _) = q.take_free(&HashSet::new()).unwrap();
        assert!(a.actions.repack && a.actions.pack_refs);
    }
}
