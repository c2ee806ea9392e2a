//! The daemon follows its config file: a changed `include` is mirrored
//! without a restart, a broken config is reported and the old one kept
//! (mirroring goes on), and options that need a restart are refused.

use std::path::Path;

use crate::support::daemon::GitDaemon;
use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, Origin, Replica};
use crate::support::pulld::{notify, problem_lines, Pulld, PATIENCE};
use crate::support::{fixture, show_ref};
use nix::sys::signal::Signal;

fn config(top: &Path, dir: &Path, site: &str, manifest: &str, pull: &str) -> String {
    format!(
        "[core]\ntoplevel = {top}\nlog = {dir}/replica.log\n\n[remote]\nsite = {site}\nmanifest = {manifest}\n\n[pull]\npull_threads = 2\nrefresh = 3600\nsocket = ${{core:toplevel}}/.updater.socket\n{pull}\n",
        top = top.display(),
        dir = dir.display(),
    )
}

/// Replace the config file the way editors and config management do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("conf.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn include_changes_are_mirrored_and_broken_configs_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a/x.git", 3, 1_600_000_000);
    origin.project("/b/y.git", 3, 1_600_001_000);
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let gitd = GitDaemon::serve(&origin.root);
    let url = http.url("manifest.js.gz");
    let replica = Replica::new(&dir, "replica", &gitd.site(), &url, "");
    let write = |pull: &str| config(&replica.top, &dir, &gitd.site(), &url, pull);
    std::fs::write(&replica.config, write("include = /a/*")).unwrap();
    let socket = replica.top.join(".updater.socket");
    let in_step = |key: &str| {
        replica.path(key).is_dir() && show_ref(&replica.path(key)) == show_ref(&origin.path(key))
    };

    let mut d = Pulld::start(&replica.config, &dir.join("replica.log"), |_| {});
    d.wait_for("/a/x.git", |_| in_step("/a/x.git"));
    d.wait_log("stats: 1 fetched");
    assert_missing!(replica.path("/b/y.git"));

    // Include more: mirrored without a restart.
    replace(&replica.config, &write("include = /a/*\n    /b/*"));
    d.wait_log("config: reloaded");
    d.wait_for("/b/y.git", |_| in_step("/b/y.git"));
    assert_mirrored(
        &origin.path("/b/y.git"),
        &replica.path("/b/y.git"),
        "Grokmirror",
    );

    // A broken config (written in place) is refused; mirroring goes on.
    std::fs::write(&replica.config, "[pull\ninclude = *\n").unwrap();
    d.wait_log("config: cannot reload");
    fixture::commits(&origin.path("/a/x.git"), "main", 1, 1_700_000_000);
    origin.manifest_hook(&["/a/x.git"]);
    notify(&socket, &["/a/x.git"]);
    d.wait_for("/a/x.git after the push", |_| in_step("/a/x.git"));

    // What needs a restart is refused too, naming the option.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    replace(
        &replica.config,
        &config(&elsewhere, &dir, &gitd.site(), &url, "include = *"),
    );
    d.wait_log("which needs a restart of grok-pull");
    let log = d.log_text();
    let refusal = log.lines().find(|l| l.contains("needs a restart")).unwrap();
    assert!(refusal.contains("[core] toplevel"), "{refusal}");
    assert!(
        refusal.contains("still using the previous config"),
        "{refusal}"
    );

    // A good config again: purging what is no longer included.
    replace(
        &replica.config,
        &write("include = /a/*\npurge = yes\npurgeprotect = 99"),
    );
    d.wait_log_count("config: reloaded", 2);
    d.wait_for("/b/y.git to be purged", |_| {
        !replica.path("/b/y.git").exists()
    });
    assert!(in_step("/a/x.git"));

    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    let problems = problem_lines(&d.log_text());
    assert_eq!(
        problems.len(),
        2,
        "only the two refused reloads are errors: {problems:#?}"
    );
}
