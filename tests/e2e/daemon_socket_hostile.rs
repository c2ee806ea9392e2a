//! The daemon's push socket under hostile clients, end to end: a 32 MB
//! line without a newline, binary junk, and a crowd of concurrent
//! connections (more than it serves at once). The daemon keeps running,
//! logs what it rejected, does not buffer the endless line, and serves a
//! valid notification afterwards.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::support::daemon::GitDaemon;
use crate::support::fixture;
use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, Origin, Replica};
use crate::support::pulld::{notify, Pulld, PATIENCE};
use crate::support::show_ref;
use nix::sys::signal::Signal;
use rand::{Rng, SeedableRng};

/// Connect, write `data` (the daemon may hang up half-way: fine), close.
fn send(socket: &Path, data: &[u8]) {
    let mut s = UnixStream::connect(socket).unwrap();
    let _ = s.write_all(data);
}

#[test]
fn hostile_clients_neither_stop_nor_bloat_the_daemon() {
    let seed: u64 = rand::rng().random();
    eprintln!("junk from seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    for (i, key) in ["/a.git", "/b.git"].iter().enumerate() {
        origin.project(key, 3, 1_600_000_000 + 1000 * i as i64);
    }
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let gitd = GitDaemon::serve(&origin.root);
    let replica = Replica::new(
        &dir,
        "replica",
        &gitd.site(),
        &http.url("manifest.js.gz"),
        "refresh = 3600\nsocket = ${core:toplevel}/.updater.socket",
    );
    let socket = replica.top.join(".updater.socket");
    let mut d = Pulld::start(&replica.config, &dir.join("replica.log"), |_| {});
    let in_step = |key: &str| {
        replica.path(key).is_dir() && show_ref(&replica.path(key)) == show_ref(&origin.path(key))
    };
    d.wait_for("the first mirror", |_| {
        in_step("/a.git") && in_step("/b.git")
    });
    d.wait_log("stats: 2 fetched");
    let rss_before = d.rss_kib();

    // 32 MB and no newline: cut off after one line's worth.
    send(&socket, &vec![b'z'; 32 << 20]);
    d.wait_log("a line longer than 4098 bytes; closing that connection");

    // Binary junk, newlines and NULs included, then more junk lines than
    // a client may send.
    let junk: Vec<u8> = (0..256 * 1024).map(|_| rng.random()).collect();
    send(&socket, &junk);
    let mut lines = Vec::new();
    for i in 0..40 {
        lines.extend_from_slice(format!("/x/../{i}\0\n").as_bytes());
    }
    send(&socket, &lines);
    d.wait_log("bad lines from one client; closing that connection");

    // A crowd: 100 clients at once, each holding its connection open with
    // half a line until all have connected, then writing junk.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(100));
    let crowd: Vec<_> = (0..100)
        .map(|i| {
            let socket = socket.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&socket).unwrap();
                let _ = s.write_all(b"/no/such/");
                barrier.wait();
                let _ = s.write_all(format!("repo{i}\n\x01\x02\n../up\n").as_bytes());
                let _ = s.shutdown(std::net::Shutdown::Write);
                // Wait for the daemon to hang up (or for the idle timeout).
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
            })
        })
        .collect();
    for t in crowd {
        t.join().unwrap();
    }
    d.wait_log("clients connected; others wait");
    d.wait_log_count("(not known, ignored)", 100);
    d.wait_log("listener: ignoring \"\\\\x01\\\\x02\"");
    // Junk is logged, but not without end: at most MAX_BAD_LINES (16) per
    // connection (the 256 KiB of junk alone hold about a thousand lines).
    let ignored = d.log_text().matches("listener: ignoring").count();
    assert!(ignored <= 16 + 16 + 2 * 100, "{ignored} junk lines logged");

    // Still serving: a valid notification of a new push is acted on.
    fixture::commits(&origin.path("/b.git"), "main", 1, 1_700_000_000);
    origin.manifest_hook(&["/b.git"]);
    notify(&socket, &["/b.git"]);
    d.wait_for("the notified fetch", |_| in_step("/b.git"));
    assert_mirrored(
        &origin.path("/b.git"),
        &replica.path("/b.git"),
        "Grokmirror",
    );

    // The 32 MB line was never held in memory (generous: a buffered copy
    // would add 32 MiB at least).
    let rss_after = d.rss_kib();
    assert!(
        rss_after < rss_before + 16 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );

    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    assert_missing!(socket, "the socket is removed on exit");
}
