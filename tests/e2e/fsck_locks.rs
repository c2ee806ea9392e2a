//! grok-fsck and the locks it shares with grokmirror: a repository locked by
//! someone else is waited for (after the others are done), and only one
//! grok-fsck (ours or the reference's) works on a tree at a time.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::fixture;
use crate::support::replica::{stderr, today, Replica};
use grokmirror::lock;

/// Kill `child` if the test is still waiting for it after a long time, so a
/// hang fails the test instead of the whole CI run.
fn watchdog(child: Arc<Mutex<Child>>) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(300));
        let _ = child.lock().unwrap().kill();
    });
}

#[test]
fn a_locked_repo_is_waited_for_not_skipped() {
    let r = Replica::new("", "");
    let busy = fixture::project(&r.repo("busy.git"), 5, 1_600_000_000);
    fixture::project(&r.repo("free.git"), 5, 1_600_000_000);
    r.manifest();
    // Somebody (a grok-pull, say) is working on busy.git.
    let held = lock::acquire(&lock::repo_lock_path(&busy), lock::Wait::Forever).unwrap();

    let child = support::grok("grok-fsck")
        .args(["-v", "-f", "-c"])
        .arg(&r.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Arc::new(Mutex::new(child));
    watchdog(child.clone());
    let err = child.lock().unwrap().stderr.take().unwrap();
    let mut lines = BufReader::new(err).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "grok-fsck ended without waiting for the lock:\n{}",
                    seen.join("\n")
                )
            })
            .unwrap();
        seen.push(line.clone());
        if line.contains("waiting") && line.contains("busy.git") {
            break;
        }
    }
    // It is waiting: the free repository is done, the busy one is not.
    assert!(child.lock().unwrap().try_wait().unwrap().is_none());
    assert_eq!(
        r.status_of("free.git")["lastcheck"],
        today(),
        "{}",
        seen.join("\n")
    );
    assert_eq!(r.status_of("busy.git")["lastcheck"], "never");

    drop(held);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.lock().unwrap().wait().unwrap();
    assert!(status.success(), "{}\n{}", seen.join("\n"), rest.join("\n"));
    assert_eq!(r.status_of("busy.git")["lastcheck"], today());
}

#[test]
fn one_grok_fsck_per_tree_even_with_the_reference() {
    let r = Replica::new("", "");
    fixture::project(&r.repo("a.git"), 3, 1_600_000_000);
    r.manifest();
    let lock_path = lock::file_lock_path(&r.status_file);

    // The reference takes fcntl.lockf on the status file's lock.
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl, sys\n\
             f = open(sys.argv[1], 'w')\n\
             fcntl.lockf(f, fcntl.LOCK_EX)\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(&lock_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(python.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    let run = r.fsck(&["-f"]);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("Another grok-fsck"), "{err}");
    assert_missing!(r.status_file, "nothing was done");

    python.stdin.take().unwrap().write_all(b"").unwrap();
    assert!(python.wait().unwrap().success());
    let run = r.fsck(&["-f"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(r.status_of("a.git")["lastcheck"], today());
}

#[test]
fn a_crash_while_waiting_loses_no_finished_work() {
    let r = Replica::new("", "");
    let busy = fixture::project(&r.repo("zz-busy.git"), 5, 1_600_000_000);
    for name in ["a.git", "b.git", "c.git"] {
        fixture::project(&r.repo(name), 5, 1_600_000_000);
    }
    r.manifest();
    let _held = lock::acquire(&lock::repo_lock_path(&busy), lock::Wait::Forever).unwrap();
    let mut child = support::grok("grok-fsck")
        .args(["-v", "-f", "-c"])
        .arg(&r.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let child = Arc::new(Mutex::new(child));
    watchdog(child.clone());
    let found = BufReader::new(err)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("waiting") && l.contains("zz-busy.git"));
    assert!(found, "grok-fsck never waited for the lock");
    // Killed while it waits: everything finished before is on disk.
    child.lock().unwrap().kill().unwrap();
    child.lock().unwrap().wait().unwrap();
    for name in ["a.git", "b.git", "c.git"] {
        assert_eq!(r.status_of(name)["lastcheck"], today(), "{name}");
    }
    assert_eq!(r.status_of("zz-busy.git")["lastcheck"], "never");
}
