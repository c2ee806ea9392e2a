//! Freshness at a glance (#19): a replica with one repository up to date,
//! one whose fetch is held up by the origin (it goes stale once `[pull]
//! stale_after` passes) and one whose origin went away (its fetches fail).
//! `grok-pull --status` (text and JSON, while the daemon runs and after it
//! stopped), the metrics file (checked by `promtool check metrics`) and
//! grok-fsck's report name exactly those two, with their lag; once the
//! origin is back and a run catches up, all is fresh again.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::fixture;
use crate::support::mirror::{no_proxy, output_text, Origin, Replica};
use crate::support::pulld::{Pulld, PATIENCE};
use crate::support::{git_binary, grok, script, use_upload_pack};
use nix::sys::signal::Signal;

fn status(replica: &Replica, json: bool) -> Output {
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    cmd.arg("--status").arg("-c").arg(&replica.config);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run grok-pull --status")
}

fn status_json(replica: &Replica) -> (i32, serde_json::Value) {
    let out = status(replica, true);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--status --json is not JSON ({e}): {}", output_text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn repos(v: &serde_json::Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {v:#}"))
        .iter()
        .map(|e| e["repo"].as_str().unwrap().to_string())
        .collect()
}

/// `promtool check metrics` on a file: it must pass (lint problems fail).
fn promtool_check(path: &Path) {
    let text = std::fs::read(path).unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): run scripts/setup-test-tools (installs Debian's prometheus package)")
        });
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed on {}:\n{}\n{}",
        path.display(),
        output_text(&out),
        String::from_utf8_lossy(&text)
    );
}

/// One HTTP/1.0 GET to `addr`; the whole answer.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {line_start} in the metrics:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn stale_and_failing_repositories_are_named_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    for key in ["/up.git", "/held.git", "/gone.git"] {
        origin.project(key, 2, 1_600_000_000);
    }
    origin.manifest();
    let metrics = dir.join("metrics.prom");
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        &format!(
            "refresh = 3600\nstale_after = 1s\nretries = 1\nshutdown_grace = 1\nmetrics_listen = 127.0.0.1:0\nmetrics_file = {}\n",
            metrics.display()
        ),
    );
    let mut conf = std::fs::read_to_string(&replica.config).unwrap();
    conf.push_str("\n[fsck]\nstatusfile = ${core:toplevel}/fsck.status.js\nreport_to = \n");
    std::fs::write(&replica.config, conf).unwrap();

    // Never pulled: nothing known yet, and says so.
    let out = status(&replica, false);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("last poll: never"),
        "{}",
        output_text(&out)
    );

    // A first, one-shot run mirrors everything: all fresh, exit 0.
    let out = replica.pull(&[]);
    assert_success!(out);
    let (code, v) = status_json(&replica);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["total"], 3, "{v:#}");
    assert_eq!(v["up_to_date"], 3, "{v:#}");
    assert_eq!(v["healthy"], true, "{v:#}");
    assert_eq!(v["last_poll"]["result"], "fetched", "{v:#}");
    assert!(v["daemon"].is_null(), "{v:#}");
    assert!(
        replica.top.join(".manifest.js.gz.freshness").is_file(),
        "the freshness file is beside the local manifest"
    );
    // The three clones brought packs, and their bytes are counted.
    let first = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        metric(&first, "grokmirror_pull_repos_total{result=\"cloned\"}"),
        3.0
    );
    assert!(
        metric(&first, "grokmirror_pull_received_bytes_total") > 0.0,
        "{first}"
    );

    // The origin moves on; one repository's fetch will be held up, the
    // other's origin disappears.
    for key in ["/held.git", "/gone.git"] {
        fixture::commits(&origin.path(key), "main", 1, 1_700_000_000);
    }
    origin.manifest();
    std::fs::rename(origin.path("/gone.git"), dir.join("gone.git.moved")).unwrap();
    let started = dir.join("held.started");
    let wrapper = script(
        &dir.join("upload-pack"),
        &format!(
            "case \"$*\" in *held.git*) touch {}; sleep 600;; esac\nexec {} upload-pack \"$@\"",
            started.display(),
            git_binary().display()
        ),
    );
    let log = dir.join("replica.log");
    let mut d = Pulld::start(&replica.config, &log, |cmd| {
        use_upload_pack(cmd, &wrapper);
    });
    d.wait_log("failed: /gone.git");
    d.wait_for("the held fetch", |_| started.exists());

    // While the daemon runs: wait until it has said it is fetching the held
    // repository and that repository is past stale_after.
    let deadline = Instant::now() + PATIENCE;
    let v = loop {
        let (code, v) = status_json(&replica);
        let ready = !repos(&v, "stale").is_empty()
            && v["daemon"]["active"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k == "/held.git"));
        if ready {
            assert_eq!(code, 1, "stale and failing exit 1: {v:#}");
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "--status never showed /held.git stale: {v:#}\n{}",
            d.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(repos(&v, "stale"), ["/held.git"], "{v:#}");
    assert_eq!(repos(&v, "failing"), ["/gone.git"], "{v:#}");
    assert_eq!(v["up_to_date"], 1, "{v:#}");
    assert_eq!(v["daemon"]["running"], true, "{v:#}");
    assert!(v["stale"][0]["lag"].as_i64().unwrap() >= 2, "{v:#}");
    assert!(v["failing"][0]["attempts"].as_i64().unwrap() >= 1, "{v:#}");
    assert!(
        v["failing"][0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{v:#}"
    );
    assert_eq!(
        repos(&v, "worst").len(),
        2,
        "only the two lagging ones are listed: {v:#}"
    );
    let out = status(&replica, false);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        text.contains("repositories: 3 total, 1 up to date, 0 behind, 1 stale, 1 failing"),
        "{text}"
    );
    assert!(text.contains("stale: /held.git behind for "), "{text}");
    assert!(text.contains("failing: /gone.git since "), "{text}");
    assert!(!text.contains("/up.git"), "{text}");
    assert!(
        text.contains(&format!("daemon: pid {} ", d.pid())),
        "{text}"
    );
    assert!(text.contains("fetching /held.git"), "{text}");

    // The daemon serves its metrics over HTTP too.
    let log_text = d.log_text();
    let addr = log_text
        .split("serving http://")
        .nth(1)
        .and_then(|r| r.split("/metrics").next())
        .unwrap_or_else(|| panic!("no metrics endpoint in the log\n{}", d.describe()))
        .to_string();
    let served = http_get(&addr, "/metrics");
    assert!(served.starts_with("HTTP/1.0 200 OK\r\n"), "{served}");
    let body = served.split_once("\r\n\r\n").unwrap().1;
    assert!(
        body.contains("# TYPE grokmirror_pull_repos_by_state gauge\n"),
        "{body}"
    );
    let served_file = dir.join("served.prom");
    std::fs::write(&served_file, body).unwrap();
    promtool_check(&served_file);
    assert!(http_get(&addr, "/").starts_with("HTTP/1.0 404"));

    // Stopped: the held fetch is interrupted; the files on disk still tell.
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(PATIENCE);
    assert!(st.success(), "{st}\n{}", d.describe());
    let (code, v) = status_json(&replica);
    assert_eq!(code, 1, "{v:#}");
    assert!(v["daemon"].is_null(), "{v:#}");
    assert_eq!(repos(&v, "stale"), ["/held.git"], "{v:#}");
    assert_eq!(repos(&v, "failing"), ["/gone.git"], "{v:#}");

    // The metrics say the same, and pass promtool.
    let m = std::fs::read_to_string(&metrics).unwrap();
    promtool_check(&metrics);
    assert_eq!(
        metric(&m, "grokmirror_pull_repos_by_state{state=\"stale\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "grokmirror_pull_repos_by_state{state=\"failing\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "grokmirror_pull_repos_by_state{state=\"up_to_date\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "grokmirror_pull_repos_failing_by_reason{reason=\"missing\"}"
        ),
        1.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "grokmirror_pull_repo_lag_seconds{repo=\"/held.git\",state=\"stale\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &m,
            "grokmirror_pull_repo_lag_seconds{repo=\"/gone.git\",state=\"failing\"}"
        ) >= 1.0
    );
    assert!(!m.contains("repo=\"/up.git\""), "{m}");
    assert!(metric(&m, "grokmirror_pull_lag_max_seconds") >= 2.0);
    assert_eq!(metric(&m, "grokmirror_pull_lag_seconds_count"), 3.0);
    assert!(metric(&m, "grokmirror_pull_fetch_duration_seconds_count") >= 1.0);

    // grok-fsck reports exactly those two as having stopped replicating.
    let mut cmd = grok("grok-fsck");
    cmd.arg("-c").arg(&replica.config);
    let out = cmd.output().unwrap();
    let all = output_text(&out) + &std::fs::read_to_string(&log).unwrap_or_default();
    let named: Vec<&str> = all
        .lines()
        .filter_map(|l| l.split_once(": stopped replicating: ").map(|(a, _)| a))
        .filter_map(|a| a.rsplit(' ').next())
        .collect();
    let mut named: Vec<&str> = named.into_iter().collect();
    named.sort();
    named.dedup();
    assert_eq!(named, ["/gone.git", "/held.git"], "{all}");
    assert!(
        all.contains("/held.git: stopped replicating: behind the origin for "),
        "{all}"
    );
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));

    // The origin is back and a run catches up: all fresh, exit 0.
    std::fs::rename(dir.join("gone.git.moved"), origin.path("/gone.git")).unwrap();
    let out = replica.pull(&[]);
    assert_success!(out);
    let (code, v) = status_json(&replica);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["up_to_date"], 3, "{v:#}");
    assert!(repos(&v, "failing").is_empty(), "{v:#}");
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        metric(&m, "grokmirror_pull_repos_by_state{state=\"up_to_date\"}"),
        3.0
    );
}
