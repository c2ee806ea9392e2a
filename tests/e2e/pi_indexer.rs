//! grok-pi-indexer end to end: real public-inbox v2 archives (built by
//! public-inbox) mirrored by our grok-pull with grok-pi-indexer as its
//! hooks, as upstream documents it; then each inbox is a working
//! public-inbox mirror, initialised from what its origin says of it and
//! indexed after each fetch. Also the origin's config over HTTP, separate
//! database directories, extindex, hostile paths and origins, and
//! `--config-check`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::http::HttpServer;
use crate::support::mirror::{Origin, Replica};
use crate::support::public_inbox::{require_public_inbox, Archive};
use crate::support::{git, git_stdin, grok, run, run_with_input, stderr_of};

/// What lore keeps in `refs/meta/origins` of an epoch (file `i`).
const ORIGINS: &str = "[publicinbox \"test\"]\n\
    \taddress = test@example.com\n\
    \taddress = test-alias@example.org\n\
    \tlistid = test.lists.kernel.org\n\
    \tnewsgroup = org.kernel.lists.test\n\
    \tdescription = The test list\n\
    \tindexheader = X-Test\n\
    \tinfourl = https://example.org/not-taken\n";

/// Put `text` as file `i` of `refs/meta/origins` in `epoch`.
fn set_origins(epoch: &Path, text: &str) {
    let blob = git_stdin(
        Some(epoch),
        &["hash-object", "-w", "--stdin"],
        text.as_bytes(),
    );
    let tree = git_stdin(
        Some(epoch),
        &["mktree"],
        format!("100644 blob {blob}\ti\n").as_bytes(),
    );
    let commit = git(Some(epoch), &["commit-tree", &tree, "-m", "origins"]);
    git(Some(epoch), &["update-ref", "refs/meta/origins", &commit]);
}

/// The number of messages an inbox's msgmap holds (`None`: no msgmap).
fn indexed(pi_dir: &Path) -> Option<u64> {
    let db = pi_dir.join("msgmap.sqlite3");
    if !db.exists() {
        return None;
    }
    let out = run(Command::new("python3").args([
        "-c",
        "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute('select count(*) from msgmap').fetchone()[0])",
        db.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    Some(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

/// A key of the public-inbox config (all values, one per line).
fn pi_value(config: &Path, key: &str) -> String {
    let out = run(Command::new(crate::support::git_binary()).args([
        "config",
        "-f",
        config.to_str().unwrap(),
        "--get-all",
        key,
    ]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// grok-pi-indexer with `args`, `stdin` on its standard input.
fn indexer(args: &[&str], stdin: &str) -> Output {
    run_with_input(grok("grok-pi-indexer").args(args), stdin.as_bytes())
}

/// An archive whose inbox directory is the only thing in an origin's top
/// level (`<root>/inboxes`), its manifest made by our grok-manifest.
fn origin_of(archive: &Archive) -> Origin {
    let root = archive.inbox.parent().unwrap().to_path_buf();
    let origin = Origin {
        manifest: root.join("manifest.js.gz"),
        root,
    };
    origin.manifest();
    origin
}

#[test]
fn a_mirrored_inbox_is_initialised_from_its_origin_and_indexed_after_each_fetch() {
    let mut archive = Archive::new("test");
    archive.add(3);
    set_origins(&archive.epoch(), ORIGINS);
    let origin = origin_of(&archive);
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    let pi_config = dir.join("pi-config");
    let bin = env!("CARGO_BIN_EXE_grok-pi-indexer");
    // The hook lines of upstream's documentation, ${core:toplevel} included.
    let hooks = format!(
        "include = */git/*.git\n\
         post_clone_complete_hook = {bin} -c {pi} -t ${{core:toplevel}} init --local-toplevel https://m.example.org/\n\
         post_update_hook = {bin} -c {pi} -t ${{core:toplevel}} update\n",
        pi = pi_config.display(),
    );
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        &hooks,
    );
    let out = replica.pull(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let inbox = replica.path("test");
    assert!(
        inbox.join("git/0.git/objects").is_dir(),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(indexed(&inbox), Some(3), "{}", stderr_of(&out));
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.address"),
        "test@example.com\ntest-alias@example.org"
    );
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.inboxdir"),
        inbox.display().to_string()
    );
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.url"),
        "https://m.example.org/test"
    );
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.newsgroup"),
        "org.kernel.lists.test"
    );
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.listid"),
        "test.lists.kernel.org"
    );
    // *.kernel.org is the second of the default priorities.
    assert_eq!(pi_value(&pi_config, "publicinbox.test.boost"), "10");
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.indexheader"),
        "X-Test"
    );
    assert_eq!(pi_value(&pi_config, "publicinbox.test.infourl"), "");
    assert_eq!(
        std::fs::read_to_string(inbox.join("description")).unwrap(),
        "The test list\n"
    );

    // New mail at the origin: the fetch's post_update_hook indexes it.
    archive.add(2);
    origin.manifest();
    let out = replica.pull(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(indexed(&inbox), Some(5), "{}", stderr_of(&out));
    // Nothing new: indexing again changes nothing and succeeds.
    let epoch = inbox.join("git/0.git");
    let top = replica.top.to_str().unwrap();
    let pi = pi_config.to_str().unwrap();
    let out = indexer(
        &["-c", pi, "-t", top, "update", epoch.to_str().unwrap()],
        "",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(indexed(&inbox), Some(5));
    // init of an initialised inbox only indexes it.
    let out = indexer(
        &["-c", pi, "-t", top, "init"],
        &format!("{}\n", epoch.display()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("pi-init"), "{}", stderr_of(&out));
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.address")
            .lines()
            .count(),
        2
    );
}

/// A replica of `archive`'s epochs made with plain git, under `top`.
fn clone_epochs(archive: &Archive, top: &Path) -> PathBuf {
    let epoch = top.join(archive.name()).join("git/0.git");
    std::fs::create_dir_all(epoch.parent().unwrap()).unwrap();
    git(
        None,
        &[
            "clone",
            "--quiet",
            "--mirror",
            archive.epoch().to_str().unwrap(),
            epoch.to_str().unwrap(),
        ],
    );
    epoch
}

#[test]
fn without_origins_in_the_epochs_the_origin_host_is_asked_and_databases_can_live_apart() {
    let mut archive = Archive::new("test");
    archive.add(2);
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    let top = dir.join("top");
    let epoch = clone_epochs(&archive, &top);
    let served = dir.join("served");
    std::fs::create_dir_all(served.join("test/_/text/config")).unwrap();
    std::fs::write(
        served.join("test/_/text/config/raw"),
        "[publicinbox \"test\"]\n\taddress = web@example.org\n\tlistid = test.lists.linux.dev\n",
    )
    .unwrap();
    let server = HttpServer::serve(&served);
    let pi_top = dir.join("pi");
    let pi_config = dir.join("pi-config");
    let out = indexer(
        &[
            "-c",
            pi_config.to_str().unwrap(),
            "-t",
            top.to_str().unwrap(),
            "-p",
            pi_top.to_str().unwrap(),
            "-L",
            "medium",
            "init",
            "--origin-hostname",
            &server.url("/"),
        ],
        &format!("{}\n", epoch.display()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let asked: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(asked, ["/test/_/text/config/raw"]);
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.address"),
        "web@example.org"
    );
    assert_eq!(pi_value(&pi_config, "publicinbox.test.boost"), "11");
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.indexlevel"),
        "medium"
    );
    // The databases are under -p, the epochs stay where grok-pull put them.
    let pi_dir = pi_top.join("test");
    assert_eq!(indexed(&pi_dir), Some(2));
    assert_eq!(indexed(&top.join("test")), None);
    assert_eq!(
        std::fs::read_link(pi_dir.join("git")).unwrap(),
        top.join("test/git")
    );
    assert_eq!(
        std::fs::read_to_string(pi_dir.join("description")).unwrap(),
        "test.lists.linux.dev archive mirror\n"
    );

    // --force-reinit starts the databases again from the epochs.
    let out = indexer(
        &[
            "-v",
            "-c",
            pi_config.to_str().unwrap(),
            "-t",
            top.to_str().unwrap(),
            "-p",
            pi_top.to_str().unwrap(),
            "init",
            "--origin-hostname",
            "",
            "--force-reinit",
            top.join("test").to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Reinitializing"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(indexed(&pi_dir), Some(2));
}

#[test]
fn hostile_paths_and_origins_are_refused_with_one_line_and_nothing_written() {
    let mut archive = Archive::new("test");
    archive.add(1);
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    let top = dir.join("top");
    let epoch = clone_epochs(&archive, &top);
    let pi_config = dir.join("pi-config");
    let pi = pi_config.to_str().unwrap();
    let top_s = top.to_str().unwrap();

    // An epoch outside the top level, and one reached through a symlink
    // that leaves it.
    let outside = dir.join("outside");
    let far = clone_epochs(&archive, &outside);
    std::os::unix::fs::symlink(outside.join("test"), top.join("evil")).unwrap();
    for path in [far.clone(), top.join("evil/git/0.git")] {
        let out = indexer(
            &["-c", pi, "-t", top_s, "update", path.to_str().unwrap()],
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("is not an inbox below the top level"),
            "{}",
            stderr_of(&out)
        );
        let out = indexer(
            &["-c", pi, "-t", top_s, "init", "--origin-hostname", ""],
            &format!("{}\n", path.display()),
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    }
    assert_eq!(indexed(&outside.join("test")), None);
    assert!(!pi_config.exists());

    // An origin that would smuggle an option into public-inbox-init.
    set_origins(&epoch, "address = --help\n");
    let out = indexer(
        &["-c", pi, "-t", top_s, "init"],
        &format!("{}\n", epoch.display()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("Could not init") && err.contains("starts with '-'"),
        "{err}"
    );
    assert!(!pi_config.exists());
    assert_eq!(indexed(&top.join("test")), None);

    // An origin answering with far too much.
    git(Some(&epoch), &["update-ref", "-d", "refs/meta/origins"]);
    let served = dir.join("served");
    std::fs::create_dir_all(served.join("test/_/text/config")).unwrap();
    std::fs::write(
        served.join("test/_/text/config/raw"),
        "address = a@example.org\n".repeat(100_000),
    )
    .unwrap();
    let server = HttpServer::serve(&served);
    let out = indexer(
        &[
            "-c",
            pi,
            "-t",
            top_s,
            "init",
            "--origin-hostname",
            &server.url("/"),
        ],
        &format!("{}\n", epoch.display()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("larger than"),
        "{}",
        stderr_of(&out)
    );
    assert!(!pi_config.exists());

    // Paths that are not epochs are no inboxes: nothing to do.
    let out = indexer(
        &["-v", "-c", pi, "-t", top_s, "init"],
        "/etc/passwd\n../../x\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Nothing to do"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn extindex_and_missing_public_inbox() {
    require_public_inbox();
    let mut archive = Archive::new("test");
    archive.add(2);
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    let top = dir.join("top");
    let epoch = clone_epochs(&archive, &top);
    let pi_config = dir.join("pi-config");
    let pi = pi_config.to_str().unwrap();
    let top_s = top.to_str().unwrap();
    let out = indexer(
        &["-c", pi, "-t", top_s, "init", "--origin-hostname", ""],
        &format!("{}\n", epoch.display()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        pi_value(&pi_config, "publicinbox.test.address"),
        "test@localhost"
    );
    let ext = dir.join("ext");
    std::fs::create_dir_all(&ext).unwrap();
    git(
        None,
        &[
            "config",
            "-f",
            pi,
            "extindex.all.topdir",
            ext.to_str().unwrap(),
        ],
    );
    let out = indexer(&["-c", pi, "-t", top_s, "extindex"], "");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(ext.join("ALL.git").is_dir());

    // Without public-inbox on PATH: one line saying what to install.
    let mut cmd = grok("grok-pi-indexer");
    cmd.env("PATH", "/nonexistent")
        .args(["-c", pi, "-t", top_s, "extindex"]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("install public-inbox"),
        "{}",
        stderr_of(&out)
    );
    // No sub-command: the help, status 1, as upstream.
    let out = run(grok("grok-pi-indexer").args(["-c", pi, "-t", top_s]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: grok-pi-indexer "));
}

#[test]
fn config_check_names_each_bad_flag() {
    require_public_inbox();
    let dir = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    let top = dir.join("top");
    std::fs::create_dir_all(&top).unwrap();
    let pi_config = dir.join("pi-config");
    let check = |args: &[&str], path: Option<&str>| {
        let mut cmd = grok("grok-pi-indexer");
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        run(cmd.args(args))
    };
    let pi = pi_config.to_str().unwrap();
    let top_s = top.to_str().unwrap();
    let out = check(&["-c", pi, "-t", top_s, "--config-check"], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("no problems found\n"));

    std::fs::write(&pi_config, "[publicinbox \"x\"\n").unwrap();
    let missing = dir.join("no-top");
    let out = check(
        &[
            "-c",
            pi,
            "-t",
            missing.to_str().unwrap(),
            "--config-check",
            "--json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["program"], "grok-pi-indexer");
    let keys: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["--pi-config", "--toplevel"], "{doc}");

    std::fs::remove_file(&pi_config).unwrap();
    let out = check(
        &["-c", pi, "-t", top_s, "--config-check"],
        Some("/nonexistent"),
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("is not on PATH"))
            .count(),
        3,
        "{text}"
    );
}
