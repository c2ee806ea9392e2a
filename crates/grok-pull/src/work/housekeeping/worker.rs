//! The housekeeping thread's loop: its queue, and one repository's work.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use grokmirror::lock::{self, Wait};
use grokmirror::objstore;
use grokmirror::repo::repack::QuickRepack;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{debug, info, warn};

use super::{Event, Item, LoadSource, Msg, Shared, Tools, LOAD_RECHECK, WANTED_RECHECK};
use crate::work::gitio;

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

pub(super) async fn worker(
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
                    let mut s = shared.lock().expect("poisoned");
                    s.in_flight = s.in_flight.saturating_sub(1);
                    s.queued = queue.len();
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
        let repo_key = match tools.tree.key(key) {
            Ok(k) => k,
            Err(why) => {
                debug!("{key}: no housekeeping: {why}");
                return;
            }
        };
        let parent = match tools.tree.parent_of(&repo_key, false) {
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
            let borrows = grokmirror::repo::alternates::lender(&path).is_some();
            if borrows {
                // `-l` drops what the lender holds (see drop_commit_graph).
                if let Err(e) = grokmirror::repo::repack::drop_commit_graph(&path) {
                    warn!("      spa: {key}: cannot remove its commit-graph: {e}");
                }
            }
            let cruft = grokmirror::repo::grace::cruft_packs(&path);
            let quick = if tools.geometric_repacks && !borrows {
                QuickRepack::Geometric
            } else {
                QuickRepack::AllInOne
            };
            let args = grokmirror::repo::repack::quick_repack_args(
                quick,
                &tools.extra_repack_flags,
                &cruft,
            );
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
    use crate::work::housekeeping::Actions;
    use grokmirror::git::Git;
    use grokmirror::objstore::FetchMethod;
    use grokmirror::tree::{Reserved, Tree};
    use std::path::PathBuf;

    #[test]
    fn queue_merges_and_skips_wanted() {
        let tools = Arc::new(Tools {
            git: Git::from_env(),
            objstore_method: FetchMethod::Porcelain,
            extra_repack_flags: Vec::new(),
            geometric_repacks: false,
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
