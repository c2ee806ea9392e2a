//! Unbounded input besides the HTTP manifest (SPEC §2, "every input is
//! bounded"): a manifest_command that prints for ever or never returns, a
//! gzip bomb and a giant field served over HTTP, hooks that hang, and a
//! flood of rejected entries. Each run ends, with one error line, within
//! a bounded amount of memory, and leaves the mirror as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, no_proxy, output_text, Origin, Replica};
use crate::support::{grok, read_manifest_json, script, stderr_of};
use serde_json::{json, Value};

/// The memory bound each hostile run must stay under.
const MAX_RSS_KIB: u64 = 128 * 1024;

/// Run grok-pull on `replica` under `/usr/bin/time -v` (and `prefix`, e.g.
/// prlimit); its output and its peak resident set size in KiB.
fn pull_measured(replica: &Replica, prefix: &[&str], flags: &[&str]) -> (Output, u64) {
    let pull = grok("grok-pull");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v").args(prefix).arg(pull.get_program());
    for (k, v) in pull.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    no_proxy(&mut cmd);
    cmd.arg("-v").args(flags).arg("-c").arg(&replica.config);
    let out = cmd.output().expect("run /usr/bin/time");
    let err = stderr_of(&out);
    let rss = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS in the output of time -v:\n{err}"));
    (out, rss)
}

/// The lines of grok-pull's stderr that mention `needle`.
fn lines_with(out: &Output, needle: &str) -> Vec<String> {
    stderr_of(out)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// An origin with two projects, a replica of it mirrored once through a
/// `manifest_command` script, and the script's path (rewrite it to change
/// what the command does).
struct Mirrored {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    origin: Origin,
    replica: Replica,
    cmd: PathBuf,
}

fn mirrored_by_command(remote_extra: &str) -> Mirrored {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/one.git", 2, 1_600_000_000);
    origin.project("/two.git", 2, 1_600_000_000);
    origin.manifest();
    let json = dir.join("cmd.json");
    std::fs::write(&json, read_manifest_json(&origin.manifest).to_string()).unwrap();
    let cmd = script(
        &dir.join("get-manifest"),
        &format!("cat {}", json.display()),
    );
    let replica = Replica::with_remote(
        &dir,
        "replica",
        &origin.local_site(),
        "file:///unused",
        "",
        &format!("manifest_command = {}\n{remote_extra}", cmd.display()),
    );
    let out = replica.pull(&[]);
    assert_success!(out);
    Mirrored {
        _tmp: tmp,
        dir,
        origin,
        replica,
        cmd,
    }
}

impl Mirrored {
    /// The local manifest and both repositories are as the honest run
    /// left them.
    fn assert_intact(&self, manifest_before: &[u8]) {
        assert_eq!(
            std::fs::read(self.replica.manifest()).unwrap(),
            manifest_before,
            "the local manifest changed"
        );
        for key in ["/one.git", "/two.git"] {
            assert_mirrored(
                &self.origin.path(key),
                &self.replica.path(key),
                "Grokmirror",
            );
        }
    }
}

/// Whether the process `pid` is gone (or a zombie nobody reaped yet).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_manifest_command_that_prints_for_ever_is_killed_at_the_cap() {
    let m = mirrored_by_command("");
    let before = std::fs::read(m.replica.manifest()).unwrap();
    script(&m.cmd, "exec yes");
    // 2 GiB of address space: the default 512 MiB cap must be reached by
    // counting, not by holding what was printed.
    let (out, rss) = pull_measured(&m.replica, &["prlimit", "--as=2147483648"], &[]);
    eprintln!("endless manifest_command: peak RSS {rss} KiB");
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let errors = lines_with(&out, "manifest_max_bytes");
    assert_eq!(errors.len(), 1, "{}", output_text(&out));
    assert!(
        errors[0].contains("killed") && errors[0].contains(&*m.cmd.to_string_lossy()),
        "{errors:#?}"
    );
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");
    m.assert_intact(&before);
}

#[test]
fn a_manifest_command_that_never_returns_is_killed_after_manifest_timeout() {
    let m = mirrored_by_command("manifest_timeout = 2");
    let before = std::fs::read(m.replica.manifest()).unwrap();
    let pid = m.dir.join("sleeper.pid");
    // A grandchild too: the whole process group goes.
    script(
        &m.cmd,
        &format!("sleep 100000 &\necho $! > {}\nwait", pid.display()),
    );
    let out = m.replica.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let errors = lines_with(&out, "manifest_timeout");
    assert_eq!(errors.len(), 1, "{}", output_text(&out));
    assert!(
        errors[0].contains("killed") && errors[0].contains(&*m.cmd.to_string_lossy()),
        "{errors:#?}"
    );
    let pid = std::fs::read_to_string(&pid).unwrap();
    assert!(is_dead(&pid), "the command's child {pid} survived");
    m.assert_intact(&before);
}

/// Write `parts` gzip-compressed to `path`.
fn write_gz(path: &Path, parts: &mut dyn FnMut(&mut dyn Write)) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    parts(&mut enc);
    enc.finish().unwrap();
}

/// `count` bytes of `byte` into `w`.
fn repeat(w: &mut dyn Write, byte: u8, count: usize) {
    let block = vec![byte; 1 << 20];
    let mut left = count;
    while left > 0 {
        let n = left.min(block.len());
        w.write_all(&block[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn a_gzip_bomb_and_a_giant_field_over_http_stay_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/one.git", 2, 1_600_000_000);
    origin.project("/two.git", 2, 1_600_000_000);
    origin.manifest();
    let honest = read_manifest_json(&origin.manifest);
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = HttpServer::serve(&served);
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &server.url("manifest.js.gz"),
        "",
    );

    // One honest entry and one with a 400 MB description: the giant is
    // rejected, the other mirrored.
    let giant = 400 * 1000 * 1000;
    let one = json!({"/one.git": honest["/one.git"].clone()}).to_string();
    write_gz(&served.join("manifest.js.gz"), &mut |w| {
        w.write_all(&one.as_bytes()[..one.len() - 1]).unwrap();
        write!(
            w,
            r#", "/two.git": {{"fingerprint": "{}", "modified": 1, "reference": null, "description": ""#,
            honest["/two.git"]["fingerprint"].as_str().unwrap()
        )
        .unwrap();
        repeat(w, b'x', giant);
        w.write_all(b"\"}}").unwrap();
    });
    let (out, rss) = pull_measured(&replica, &[], &[]);
    eprintln!("400 MB description: peak RSS {rss} KiB");
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let err = stderr_of(&out);
    let line = err
        .lines()
        .find(|l| l.contains("rejected /two.git"))
        .unwrap_or_else(|| panic!("/two.git not rejected:\n{err}"));
    assert!(
        line.contains("description")
            && line.contains(&format!("({giant} bytes)"))
            && line.len() < 600,
        "{line}"
    );
    assert_mirrored(
        &origin.path("/one.git"),
        &replica.path("/one.git"),
        "Grokmirror",
    );
    assert_missing!(replica.path("/two.git"));
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");
    let before = std::fs::read(replica.manifest()).unwrap();

    // 1 GiB of JSON whitespace and a string, in about a megabyte of gzip:
    // refused at the 512 MiB default cap, with the size error.
    write_gz(&served.join("manifest.js.gz"), &mut |w| {
        w.write_all(b"{\"/one.git\": {\"description\": \"").unwrap();
        repeat(w, b'b', 1 << 30);
    });
    assert!(
        std::fs::metadata(served.join("manifest.js.gz"))
            .unwrap()
            .len()
            < 8 << 20
    );
    let (out, rss) = pull_measured(&replica, &[], &["-n"]);
    eprintln!("1 GiB gzip bomb: peak RSS {rss} KiB");
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let errors = lines_with(&out, "limit");
    assert_eq!(errors.len(), 1, "{}", output_text(&out));
    assert!(
        errors[0].contains("larger than the 536870912-byte limit"),
        "{errors:#?}"
    );
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");
    assert_eq!(std::fs::read(replica.manifest()).unwrap(), before);
    assert_mirrored(
        &origin.path("/one.git"),
        &replica.path("/one.git"),
        "Grokmirror",
    );
}

#[test]
fn hooks_that_never_return_are_killed_after_hook_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/one.git", 2, 1_600_000_000);
    origin.manifest();
    let pids = dir.join("hook.pids");
    let hook = script(
        &dir.join("hang"),
        &format!("sleep 100000 &\necho $! >> {}\nwait", pids.display()),
    );
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        &format!(
            "hook_timeout = 2\npost_update_hook = {h}\npost_work_complete_hook = {h}\n",
            h = hook.display()
        ),
    );
    let out = replica.pull(&[]);
    let errors = lines_with(&out, "hook_timeout");
    assert_eq!(errors.len(), 2, "{}", output_text(&out));
    for (line, option) in errors
        .iter()
        .zip(["post_update_hook", "post_work_complete_hook"])
    {
        assert!(
            line.contains(option) && line.contains("hook_timeout") && line.contains("hang"),
            "{errors:#?}"
        );
    }
    assert_mirrored(
        &origin.path("/one.git"),
        &replica.path("/one.git"),
        "Grokmirror",
    );
    let pids = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(pids.lines().count(), 2, "{pids}");
    for pid in pids.lines() {
        assert!(is_dead(pid), "hook child {pid} survived");
    }
}

#[test]
fn a_flood_of_rejected_entries_is_summed_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/one.git", 2, 1_600_000_000);
    origin.manifest();
    let mut doc = read_manifest_json(&origin.manifest);
    let good = doc["/one.git"].clone();
    let long = "v".repeat(10 * 1024 * 1024);
    for i in 0..10_000 {
        let mut e = good.clone();
        e["head"] = Value::String(format!("ref: ../{i}{}", if i == 0 { &long } else { "" }));
        doc[format!("/bad{i:05}.git")] = e;
    }
    let served = dir.join("served.js");
    std::fs::write(&served, doc.to_string()).unwrap();
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &format!("file://{}", served.display()),
        "",
    );
    let out = replica.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let err = stderr_of(&out);
    let rejected: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("manifest: rejected"))
        .collect();
    assert_eq!(rejected.len(), 20, "{}", rejected.join("\n"));
    // The 10 MiB head is shown cut, with its length.
    assert!(
        rejected[0].contains("/bad00000.git") && rejected[0].len() < 600,
        "{}",
        rejected[0]
    );
    assert!(rejected[0].contains("bytes)"), "{}", rejected[0]);
    let summary: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("more entries rejected"))
        .collect();
    assert_eq!(summary.len(), 1, "{err}");
    assert!(
        summary[0].contains("and 9980 more entries rejected"),
        "{}",
        summary[0]
    );
    assert_mirrored(
        &origin.path("/one.git"),
        &replica.path("/one.git"),
        "Grokmirror",
    );
}

/// Not a bound, a measurement: the peak memory of a run dominated by
/// parsing a 100,000-entry manifest (include matches nothing). Printed
/// for the README; the run must succeed.
#[test]
fn peak_memory_of_a_100k_entry_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/one.git", 2, 1_600_000_000);
    origin.manifest();
    let good = read_manifest_json(&origin.manifest)["/one.git"].clone();
    let served = dir.join("served.js.gz");
    write_gz(&served, &mut |w| {
        w.write_all(b"{").unwrap();
        for i in 0..100_000 {
            let mut e = good.clone();
            e["description"] = Value::String(format!("Project number {i}, a typical description"));
            if i > 0 {
                w.write_all(b", ").unwrap();
            }
            write!(w, "\"/pub/scm/project{i:06}.git\": {e}").unwrap();
        }
        w.write_all(b"}").unwrap();
    });
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &format!("file://{}", served.display()),
        "include = /nothing/matches/*\n",
    );
    let (out, rss) = pull_measured(&replica, &[], &[]);
    eprintln!("100,000-entry manifest: peak RSS {rss} KiB");
    assert_success!(out);
}
