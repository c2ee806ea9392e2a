//! `--config-check [--json] [--no-network]` on every program: every option
//! of the shipped `grokmirror.conf.example` set to a good and to a broken
//! value, in both output forms, with the exit status (0 nothing found, 1
//! warnings only, 2 errors); the origin probe against nothing listening, a
//! real loopback HTTP server and a missing file; a path that must exist and
//! does not; a top level that cannot be written; and nothing written or
//! locked by a check.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use grokmirror::config::options::{options, Kind, PathUse};

use crate::support::{self, grok, mirror::Origin};

/// A directory with the example config made usable: its paths moved into
/// the directory, the origin's manifest a `file://` of a real origin.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    top: PathBuf,
    origin: Origin,
    text: String,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let top = dir.join("top");
        std::fs::create_dir_all(&top).unwrap();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let origin = Origin::new(&dir);
        origin.project("/a.git", 2, 1_600_000_000);
        origin.manifest();
        let example =
            std::fs::read_to_string(support::workspace_root().join("grokmirror.conf.example"))
                .unwrap();
        let text = example
            .replace("/var/lib/git/mirror", &top.display().to_string())
            .replace(
                "/var/log/grokmirror/mirror.log",
                &dir.join("logs/mirror.log").display().to_string(),
            );
        let mut s = Setup {
            _tmp: tmp,
            dir,
            top,
            text,
            origin,
        };
        let url = s.origin.file_manifest_url();
        s.text = set(&s.text, "remote", "manifest", &url);
        s.text = set(&s.text, "remote", "site", &s.origin.local_site());
        s
    }

    fn write(&self, text: &str) -> PathBuf {
        support::write_config(&self.dir, "grokmirror.conf", text)
    }
}

/// `text` with `[section] key` set to `value` (its continuation lines
/// dropped), the option added at the section's top when it is not there.
fn set(text: &str, section: &str, key: &str, value: &str) -> String {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut skipping = false;
    let mut done = false;
    for line in text.lines() {
        if skipping && line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            continue;
        }
        skipping = false;
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            out.push(line.to_string());
            continue;
        }
        let is_it = line
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == key && !line.starts_with(['#', ' ']));
        if current == section && is_it && !done {
            out.push(format!("{key} = {value}"));
            skipping = true;
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    let mut text = out.join("\n") + "\n";
    if !done {
        text = text.replacen(
            &format!("[{section}]\n"),
            &format!("[{section}]\n{key} = {value}\n"),
            1,
        );
    }
    text
}

/// Run `program --config-check` on `config` with `extra` flags.
fn check(program: &str, config: &Path, extra: &[&str]) -> Output {
    let mut cmd: Command = grok(program);
    let flag = if program == "grok-manifest" {
        "--cfgfile"
    } else {
        "-c"
    };
    if program == "grok-publish" {
        // Found credentials are part of its check; the tests have none.
        cmd.env("AWS_ACCESS_KEY_ID", "GKtest")
            .env("AWS_SECRET_ACCESS_KEY", "test");
    }
    cmd.arg(flag).arg(config).arg("--config-check").args(extra);
    support::run(&mut cmd)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn problems(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["problems"].as_array().unwrap().clone()
}

/// A value of the option's kind that its programs accept, other than the
/// example's, and one they refuse or warn about (with the exit status).
fn values(setup: &Setup, section: &str, key: &str, kind: &Kind) -> (String, Option<(String, i32)>) {
    let d = setup.dir.display();
    let hook = setup.dir.join("hook");
    if !hook.exists() {
        support::script(&hook, "exit 0");
    }
    let s = |v: &str| v.to_string();
    match (section, key, kind) {
        ("remote", "manifest", _) => (setup.origin.file_manifest_url(), Some((s("ftp://o/m"), 2))),
        // Taken only with a secret file (alone, an error: the daemon
        // refuses to start); e2e::daemon_notify_http checks both.
        ("pull", "notify_listen" | "notify_peers", _) => (s(""), None),
        // Signed with [pull] notify_secret_file, which the example leaves
        // empty; e2e::publish sends them.
        ("publish", "notify_peers", _) => (s(""), None),
        ("publish", "bucket", _) => (s("s3://other-bucket/x"), Some((s("https://x/y"), 2))),
        ("pull", "notify_secret_file", _) => {
            let secret = setup.dir.join("notify.secret");
            std::fs::write(&secret, "s3cret\n").unwrap();
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
            (secret.display().to_string(), None)
        }
        (_, _, Kind::Bool) => (s("On"), Some((s("maybe"), 2))),
        (_, _, Kind::BoolOr(words)) => (words[0].to_uppercase(), Some((s("sometimes"), 2))),
        (_, _, Kind::Int { min, max, .. }) => {
            let good = if *min == i64::MIN {
                s("7")
            } else {
                min.to_string()
            };
            let bad = if *max == i64::MAX {
                s("many")
            } else {
                (max + 1).to_string()
            };
            (good, Some((bad, 2)))
        }
        (_, _, Kind::Number { .. }) => (s("2.5"), Some((s("lots"), 2))),
        (_, _, Kind::Duration { .. }) => (s("1h30m"), Some((s("soon"), 2))),
        (_, _, Kind::Words(words)) => (words[1].to_uppercase(), Some((s("bogus"), 2))),
        (_, _, Kind::WordsOrFirst(_)) => (s("debug"), Some((s("loud"), 1))),
        (_, _, Kind::Url { strict, .. }) => (
            s("https://cdn.example.org/x/"),
            Some((s("ftp://cdn/x/"), if *strict { 2 } else { 1 })),
        ),
        (_, _, Kind::Shard) => (s("0/1"), Some((s("half"), 2))),
        (_, _, Kind::Path(PathUse::WritableDir)) => {
            let other = setup.dir.join("top2");
            std::fs::create_dir_all(&other).unwrap();
            (
                other.display().to_string(),
                Some((format!("{d}/missing"), 2)),
            )
        }
        (_, _, Kind::Path(PathUse::DirOrCreatable)) => (
            format!("{d}/new-dir"),
            Some((format!("{d}/no/such/dir"), 2)),
        ),
        (_, _, Kind::Path(PathUse::WrittenFile)) => (
            format!("{d}/some.file"),
            Some((format!("{d}/no/such/file"), 2)),
        ),
        (_, _, Kind::Path(PathUse::Executable)) | (_, _, Kind::Commands) => (
            hook.display().to_string(),
            Some((format!("{d}/no-such-program --flag"), 2)),
        ),
        (_, _, Kind::CommandLine) => (s("/bin/cat"), Some((s("cat 'unclosed"), 2))),
        // Free text, patterns and lines: any value is one the programs take.
        (_, _, Kind::Globs | Kind::Lines | Kind::Text) => (s("some*[thing] odd"), None),
    }
}

#[test]
fn the_example_config_passes_every_program_that_reads_it() {
    let setup = Setup::new();
    let config = setup.write(&setup.text);
    for program in [
        "grok-manifest",
        "grok-pull",
        "grok-fsck",
        "grok-bundle",
        "grok-snapshot",
        "grok-shallow-tar",
        "grok-publish",
    ] {
        let out = check(program, &config, &[]);
        assert_eq!(out.status.code(), Some(0), "{program}: {}", stdout(&out));
        assert!(
            stdout(&out).ends_with("no problems found\n"),
            "{program}: {}",
            stdout(&out)
        );
        let out = check(program, &config, &["--json"]);
        assert_eq!(out.status.code(), Some(0), "{program}: {}", stdout(&out));
        let doc = json(&out);
        assert_eq!(doc["program"], program);
        assert_eq!(doc["errors"], 0);
        assert!(problems(&doc).is_empty(), "{program}: {doc}");
    }
}

#[test]
fn every_option_of_the_example_good_and_broken_in_both_forms() {
    let setup = Setup::new();
    let example_keys = grokmirror::config::ini::Ini::parse(&setup.text).unwrap();
    let mut broken_checked = 0;
    for opt in options() {
        assert!(
            example_keys
                .own_keys(opt.section)
                .iter()
                .any(|k| k == opt.key),
            "[{}] {} is not in the example",
            opt.section,
            opt.key
        );
        let program = opt.read_by[0];
        let (good, broken) = values(&setup, opt.section, opt.key, &opt.kind);
        let config = setup.write(&set(&setup.text, opt.section, opt.key, &good));
        let out = check(program, &config, &["--no-network", "--json"]);
        let doc = json(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{program}: [{}] {} = {good:?}: {doc}",
            opt.section,
            opt.key
        );
        let Some((bad, status)) = broken else {
            continue;
        };
        let config = setup.write(&set(&setup.text, opt.section, opt.key, &bad));
        let what = format!("{program}: [{}] {} = {bad:?}", opt.section, opt.key);
        let out = check(program, &config, &["--no-network"]);
        assert_eq!(out.status.code(), Some(status), "{what}: {}", stdout(&out));
        let line = format!("[{}] {} = {bad:?}: ", opt.section, opt.key);
        let severity = if status == 2 { "error: " } else { "warning: " };
        assert!(
            stdout(&out).lines().any(|l| l.starts_with(severity)
                && l.contains(&line)
                && l.contains(&config.display().to_string())),
            "{what}: {}",
            stdout(&out)
        );
        let out = check(program, &config, &["--no-network", "--json"]);
        assert_eq!(out.status.code(), Some(status), "{what}");
        let doc = json(&out);
        let found = problems(&doc).into_iter().find(|p| {
            p["section"] == opt.section && p["key"] == opt.key && p["value"] == bad.as_str()
        });
        let found = found.unwrap_or_else(|| panic!("{what}: {doc}"));
        assert_eq!(found["severity"], severity.trim_end_matches(": "), "{what}");
        assert_eq!(found["file"], config.display().to_string());
        assert!(!found["message"].as_str().unwrap().is_empty());
        broken_checked += 1;
    }
    let with_rules = options()
        .iter()
        .filter(|o| !matches!(o.kind, Kind::Globs | Kind::Lines | Kind::Text))
        .count();
    assert_eq!(broken_checked, with_rules);
    assert!(broken_checked >= 40, "{broken_checked}");
}

#[test]
fn unknown_options_warn_and_unknown_sections_are_ignored() {
    let setup = Setup::new();
    let text = set(&setup.text, "pull", "pruge", "yes") + "[my-notes]\nwhatever = 1\n";
    let config = setup.write(&text);
    let out = check("grok-pull", &config, &["--no-network", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let found = problems(&json(&out));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["key"], "pruge");
    assert_eq!(found[0]["severity"], "warning");
}

#[test]
fn the_origin_is_asked_unless_no_network() {
    let setup = Setup::new();
    // Nothing listens.
    let url = format!(
        "http://127.0.0.1:{}/manifest.js.gz",
        support::http::closed_port()
    );
    let config = setup.write(&set(&setup.text, "remote", "manifest", &url));
    let out = check("grok-pull", &config, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let found = problems(&json(&out));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0]["section"].as_str(), found[0]["key"].as_str()),
        (Some("remote"), Some("manifest"))
    );
    assert_eq!(found[0]["value"], url.as_str());
    assert_eq!(found[0]["severity"], "warning");
    let out = check("grok-pull", &config, &["--no-network"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A real server with the origin's manifest.
    let server = support::http::HttpServer::serve(&setup.origin.root);
    let url = server.url("manifest.js.gz");
    let config = setup.write(&set(&setup.text, "remote", "manifest", &url));
    let out = check("grok-pull", &config, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.contains("manifest.js.gz")),
        "the origin was not asked"
    );
    server.clear_requests();
    let out = check("grok-pull", &config, &["--no-network"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        server.requests().is_empty(),
        "--no-network asked the origin"
    );

    // A server without it.
    let url = server.url("nowhere/manifest.js.gz");
    let config = setup.write(&set(&setup.text, "remote", "manifest", &url));
    let out = check("grok-pull", &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("404"), "{}", stdout(&out));

    // A file:// origin that is not there.
    let url = format!("file://{}/gone/manifest.js.gz", setup.dir.display());
    let config = setup.write(&set(&setup.text, "remote", "manifest", &url));
    let out = check("grok-pull", &config, &["--no-network"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("/gone/manifest.js.gz"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_missing_or_unwritable_toplevel_is_an_error() {
    let setup = Setup::new();
    let missing = setup.dir.join("not-there");
    let text = setup.text.replace(
        &setup.top.display().to_string(),
        &missing.display().to_string(),
    );
    let config = setup.write(&text);
    for program in [
        "grok-fsck",
        "grok-bundle",
        "grok-snapshot",
        "grok-shallow-tar",
        "grok-manifest",
    ] {
        let out = check(program, &config, &["--json"]);
        assert_eq!(out.status.code(), Some(2), "{program}");
        let found = problems(&json(&out));
        let top = found
            .iter()
            .find(|p| p["section"] == "core" && p["key"] == "toplevel")
            .unwrap_or_else(|| panic!("{program}: {found:?}"));
        assert!(
            top["message"].as_str().unwrap().contains("does not exist"),
            "{top}"
        );
    }

    let config = setup.write(&setup.text);
    let Some(_guard) = support::make_unwritable(&setup.top) else {
        eprintln!("cannot make a directory unwritable here; skipped");
        return;
    };
    let out = check("grok-fsck", &config, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("error: ")
            && l.contains("[core] toplevel = ")
            && l.contains("cannot be written")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_check_writes_nothing_and_takes_no_lock() {
    let setup = Setup::new();
    let text = set(&setup.text, "fsck", "frequency", "0");
    let config = setup.write(&text);
    for program in [
        "grok-manifest",
        "grok-pull",
        "grok-fsck",
        "grok-bundle",
        "grok-snapshot",
        "grok-shallow-tar",
    ] {
        let out = check(program, &config, &["--no-network"]);
        assert!(out.status.code().is_some(), "{program}");
    }
    let out = support::run(
        grok("grok-bundle")
            .arg("-c")
            .arg(&config)
            .arg("-o")
            .arg(setup.dir.join("bundles"))
            .arg("--config-check"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let left: Vec<_> = std::fs::read_dir(&setup.top).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!setup.dir.join("logs/mirror.log").exists());
    assert!(!setup.dir.join("bundles").exists());
}

#[test]
fn json_needs_config_check() {
    let setup = Setup::new();
    let config = setup.write(&setup.text);
    let out = support::run(grok("grok-fsck").arg("-c").arg(&config).arg("--json"));
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr_of(&out).contains("--config-check"));
}

#[test]
fn grok_pi_piper_checks_every_section() {
    let tmp = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(support::workspace_root().join("pi-piper.conf.example")).unwrap();
    let config = support::write_config(tmp.path(), "pi-piper.conf", &example);
    let run = |extra: &[&str]| {
        support::run(
            grok("grok-pi-piper")
                .arg("-c")
                .arg(&config)
                .arg("--config-check")
                .args(extra),
        )
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = format!(
        "{example}\n[lkml]\npipe = {}/no-such-procmail -m x\nshallow = perhaps\nloglevel = loud\n",
        tmp.path().display()
    );
    let config = support::write_config(tmp.path(), "pi-piper.conf", &text);
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let found = problems(&json(&out));
    let keys: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|p| {
            (
                p["section"].as_str().unwrap(),
                p["key"].as_str().unwrap(),
                p["severity"].as_str().unwrap(),
            )
        })
        .collect();
    for want in [
        ("lkml", "pipe", "error"),
        ("lkml", "shallow", "error"),
        ("lkml", "loglevel", "warning"),
    ] {
        assert!(keys.contains(&want), "{want:?} not in {keys:?}");
    }
    let _ = config;
    // With a repository, its section is read as a run would.
    let out = run(&["/srv/lkml/git/0.git"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("[lkml] shallow = \"perhaps\""),
        "{}",
        stdout(&out)
    );
}

#[test]
fn grok_dumb_pull_checks_its_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = support::fixture::project(&tmp.path().join("r/a.git"), 1, 1_600_000_000);
    let hook = support::script(&tmp.path().join("hook"), "exit 0");
    let ok = support::run(
        grok("grok-dumb-pull")
            .arg("--config-check")
            .arg("-u")
            .arg(&hook)
            .arg(tmp.path().join("r")),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let out = support::run(
        grok("grok-dumb-pull")
            .args(["--config-check", "--json", "-u"])
            .arg(tmp.path().join("no-hook"))
            .arg(&repo)
            .arg(tmp.path().join("nowhere")),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let found = problems(&json(&out));
    let keys: Vec<&str> = found.iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["PATHS", "--post-update-hook"], "{found:?}");
    assert_eq!(
        found[0]["value"],
        tmp.path().join("nowhere").display().to_string()
    );
    // Nothing fetched, nothing written: no fingerprint recorded.
    assert!(!support::git_cmd(Some(&repo))
        .args(["config", "grokmirror.fingerprint"])
        .status()
        .unwrap()
        .success());
}
