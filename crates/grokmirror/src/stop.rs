//! A run asked to stop (by a signal the program caught, or anything else
//! that decides so): one process-wide request, and the git processes that
//! [`crate::git::Git`] is running now, which are told to stop with it
//! (`SIGTERM`: git removes its temporary files on the way out).
//!
//! Once a stop is requested, [`crate::git::Git`] starts no new git and
//! answers [`crate::git::Error::Stopped`] instead, so the work winds down
//! at its next step; code that must not record half-done work asks
//! [`requested`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

/// The signal number that asked to stop (any positive number: a reason),
/// 0 while nobody did.
static REQUESTED: AtomicI32 = AtomicI32::new(0);

/// Whether git processes get a process group of their own, stopped as a
/// whole (git and what it started: `pack-objects` under `repack`, say).
static OWN_GROUPS: AtomicBool = AtomicBool::new(false);

/// Process ids of the git processes running now.
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Ask the run to stop, for `reason` (a signal number, say; positive):
/// running git processes get `SIGTERM`, no new one starts. The first
/// reason given is kept.
pub fn request(reason: i32) {
    let reason = reason.max(1);
    let _ = REQUESTED.compare_exchange(0, reason, Ordering::SeqCst, Ordering::SeqCst);
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    for pid in running.iter() {
        terminate(*pid);
    }
}

/// From now on, start each git in a process group of its own, and stop
/// the whole group: for a program that catches Ctrl-C itself and passes
/// the stop on (a terminal's Ctrl-C then reaches only the program, which
/// tells git; git's own children are told too, and each removes its
/// temporary files).
pub fn own_process_groups() {
    OWN_GROUPS.store(true, Ordering::SeqCst);
}

/// Whether git gets a process group of its own ([`own_process_groups`]).
pub(crate) fn groups() -> bool {
    OWN_GROUPS.load(Ordering::SeqCst)
}

/// The reason a stop was requested for, if it was.
pub fn requested() -> Option<i32> {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => None,
        r => Some(r),
    }
}

/// Note a git process that just started. `false` when a stop was
/// requested meanwhile: it has been told to stop already.
pub(crate) fn started(pid: u32) -> bool {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    running.insert(pid);
    // After the insert: a request made before it is seen here, one made
    // after it finds the pid in the set.
    if requested().is_some() {
        terminate(pid);
        return false;
    }
    true
}

/// Forget a git process that was waited for.
pub(crate) fn finished(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
}

fn terminate(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    let pid = nix::unistd::Pid::from_raw(pid);
    let term = nix::sys::signal::Signal::SIGTERM;
    if groups() {
        let _ = nix::sys::signal::killpg(pid, term);
    } else {
        let _ = nix::sys::signal::kill(pid, term);
    }
}
