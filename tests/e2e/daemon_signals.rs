//! Stopping the daemon: SIGTERM/SIGINT let running fetches finish within
//! `[pull] shutdown_grace`, then kill them and clean up; a second signal
//! stops at once. Never a half-made repository where readers look, the
//! local manifest intact, and the next run completes what was cut short.
//!
//! A fetch is held up by a wrapper around `git upload-pack` (the origin is
//! a local path, so the replica's git runs it), which is how a long
//! transfer looks from grok-pull's side.

use std::path::PathBuf;

use crate::support::mirror::{assert_mirrored, repos_under, Origin, Replica};
use crate::support::pulld::{Pulld, PATIENCE};
use crate::support::{
    held_upload_pack, read_manifest_json, show_ref_sha1, staging_entries, use_upload_pack,
};
use nix::sys::signal::Signal;

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    origin: Origin,
    replica: Replica,
    started: PathBuf,
}

impl Setup {
    /// `/small.git` already mirrored (one-shot), `/big.git` new at the
    /// origin; `pull_extra` for `[pull]`.
    fn new(pull_extra: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let origin = Origin::new(&dir);
        origin.project("/small.git", 3, 1_600_000_000);
        origin.manifest();
        let site = origin.local_site();
        let url = origin.file_manifest_url();
        let replica = Replica::new(
            &dir,
            "replica",
            &site,
            &url,
            &format!("refresh = 3600\n{pull_extra}"),
        );
        let out = replica.pull(&[]);
        assert_success!(out);
        origin.project("/big.git", 3000, 1_500_000_000);
        origin.manifest();
        // Rewritten within the second of the first pull: make the change
        // visible to the one-shot runs' mtime check.
        origin.age_manifest(5);
        Setup {
            _tmp: tmp,
            started: dir.join("started"),
            dir,
            origin,
            replica,
        }
    }

    /// Start the daemon with every upload-pack held up for `secs` seconds
    /// (after touching `started`).
    fn start_held(&self, secs: u32) -> Pulld {
        let wrapper = held_upload_pack(&self.dir, &self.started, secs);
        let mut d = Pulld::start(&self.replica.config, &self.dir.join("replica.log"), |cmd| {
            use_upload_pack(cmd, &wrapper);
        });
        let started = self.started.clone();
        d.wait_for("the clone of /big.git to start", |_| started.exists());
        d
    }

    /// Nothing half-made is visible, the local manifest is intact.
    fn assert_clean_after_interruption(&self) {
        assert_missing!(
            self.replica.path("/big.git"),
            "no half-cloned repository at its path"
        );
        assert_eq!(
            repos_under(&self.replica.top),
            vec!["/small.git"],
            "a tree walk sees only the complete repository"
        );
        assert!(
            staging_entries(&self.replica.top).is_empty(),
            "the interrupted clone was cleaned up: {:?}",
            staging_entries(&self.replica.top)
        );
        let local = read_manifest_json(&self.replica.manifest());
        assert_eq!(
            local["/small.git"]["fingerprint"],
            show_ref_sha1(&self.replica.path("/small.git"))
        );
        assert!(local.get("/big.git").is_none(), "{local}");
    }

    /// The next run completes the clone.
    fn assert_next_run_completes(&self) {
        let out = self.replica.pull(&[]);
        assert_success!(out);
        assert_mirrored(
            &self.origin.path("/big.git"),
            &self.replica.path("/big.git"),
            "Grokmirror",
        );
        let local = read_manifest_json(&self.replica.manifest());
        assert_eq!(
            local["/big.git"]["fingerprint"],
            show_ref_sha1(&self.replica.path("/big.git"))
        );
    }
}

#[test]
fn sigterm_lets_a_running_clone_finish() {
    let s = Setup::new("shutdown_grace = 600");
    let mut d = s.start_held(2);
    d.signal(Signal::SIGTERM);
    d.wait_log("waiting up to 600s for 1 running job to finish (/big.git)");
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    // It finished, was recorded, and nothing else was started.
    assert_mirrored(
        &s.origin.path("/big.git"),
        &s.replica.path("/big.git"),
        "Grokmirror",
    );
    let local = read_manifest_json(&s.replica.manifest());
    assert_eq!(
        local["/big.git"]["fingerprint"],
        show_ref_sha1(&s.replica.path("/big.git"))
    );
    assert!(!d.log_text().contains("interrupting"), "{}", d.describe());
    assert!(staging_entries(&s.replica.top).is_empty());
}

#[test]
fn sigint_during_a_large_clone_stops_after_the_grace_period() {
    let s = Setup::new("shutdown_grace = 2");
    let mut d = s.start_held(600);
    d.signal(Signal::SIGINT);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    let log = d.log_text();
    assert!(
        log.contains("the 2s shutdown grace period is over: interrupting 1 running job"),
        "{}",
        d.describe()
    );
    assert!(
        log.contains("stopped: /big.git (will be done next run)"),
        "{log}"
    );
    s.assert_clean_after_interruption();
    s.assert_next_run_completes();
}

#[test]
fn a_second_sigterm_stops_at_once() {
    let s = Setup::new("shutdown_grace = 600");
    let mut d = s.start_held(600);
    d.signal(Signal::SIGTERM);
    d.wait_log("signal again to stop at once");
    d.signal(Signal::SIGTERM);
    // Far sooner than the 600s grace period or the held-up fetch.
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    assert!(
        d.log_text()
            .contains("second SIGTERM: not waiting any longer"),
        "{}",
        d.describe()
    );
    s.assert_clean_after_interruption();
    s.assert_next_run_completes();
}
