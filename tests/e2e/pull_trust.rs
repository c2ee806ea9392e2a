//! The replica's first promise, tried as a hostile origin and a hostile
//! local user would (SPEC §2): nothing the purge rules keep is deleted by
//! any other path, no manifest key names the replica's own files, and no
//! rename race leads a write outside the top level.

use crate::support;

use crate::support::stderr_of as stderr;

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::attack::under_attack;
use crate::support::mirror::{assert_mirrored, output_text, repos_under, Origin, Replica};
use crate::support::read_manifest_json;
use crate::support::snapshot::{names, snapshot};
use serde_json::{json, Map, Value};

/// A replica whose `[core]` and `[pull]` sections get extra lines.
fn replica(dir: &Path, site: &str, served: &Path, core: &str, pull: &str) -> Replica {
    let top = dir.join("replica");
    std::fs::create_dir_all(&top).unwrap();
    let top = std::fs::canonicalize(&top).unwrap();
    let config = dir.join("replica.conf");
    write_config(&config, &top, dir, site, served, core, pull);
    Replica { top, config }
}

fn write_config(
    config: &Path,
    top: &Path,
    dir: &Path,
    site: &str,
    served: &Path,
    core: &str,
    pull: &str,
) {
    let text = format!(
        "[core]\ntoplevel = {top}\nlog = {dir}/replica.log\n{core}\n\n[remote]\nsite = {site}\n\
         manifest = file://{served}\n\n[pull]\npull_threads = 2\n{pull}\n",
        top = top.display(),
        dir = dir.display(),
        served = served.display(),
    );
    std::fs::write(config, text).unwrap();
}

/// Serve `manifest` as the origin's, with an mtime the replica has not
/// seen yet (a different second each time, in the past).
fn serve(served: &Path, manifest: &Value) {
    static TICK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    std::fs::write(served, manifest.to_string()).unwrap();
    let n = TICK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    support::mirror::set_mtime(served, 1_700_000_000 + n);
}

fn is_repo(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) && p.join("objects").is_dir()
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn symlinks_in_a_manifest_never_delete_what_the_purge_rules_keep() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    for i in 0..10 {
        origin.project(&format!("/p{i}.git"), 1, 1_600_000_000 + i);
    }
    origin.manifest();
    let honest = read_manifest_json(&origin.manifest);
    let served = dir.join("served.js");
    let site = origin.local_site();
    let r = replica(&dir, &site, &served, "", "purge = no");
    serve(&served, &honest);
    let out = r.pull(&[]);
    assert_success!(out);

    // The origin drops /p1.git and puts a symlink to /a.git there.
    let with_links = |links: &[&str], drop: &[&str]| {
        let mut m = honest.as_object().unwrap().clone();
        for d in drop {
            m.remove(*d);
        }
        m.get_mut("/a.git").unwrap()["symlinks"] = json!(links);
        Value::Object(m)
    };
    serve(&served, &with_links(&["/p1.git"], &["/p1.git"]));
    let out = r.pull(&[]);
    let err = stderr(&out);
    assert!(
        is_repo(&r.path("/p1.git")),
        "purge = no: {}",
        output_text(&out)
    );
    assert!(
        err.contains(
            "not replacing the repository /p1.git with a symlink to /a.git: purging is off"
        ),
        "{}",
        output_text(&out)
    );

    // purge = yes, but nopurge covers it.
    let pull_opts = |extra: &str| {
        write_config(&r.config, &r.top, &dir, &site, &served, "", extra);
    };
    pull_opts("purge = yes\npurgeprotect = 99\nnopurge = /p1.git");
    serve(&served, &with_links(&["/p1.git"], &["/p1.git"]));
    let out = r.pull(&[]);
    assert!(
        is_repo(&r.path("/p1.git")),
        "nopurge: {}",
        output_text(&out)
    );
    assert_stderr_contains!(out, "it matches [pull] nopurge");

    // More at once than purgeprotect allows: nothing is replaced.
    pull_opts("purge = yes\npurgeprotect = 20");
    let many = ["/p1.git", "/p2.git", "/p3.git", "/p4.git", "/p5.git"];
    serve(&served, &with_links(&many, &many));
    let out = r.pull(&[]);
    for k in many {
        assert!(
            is_repo(&r.path(k)),
            "{k} past purgeprotect: {}",
            output_text(&out)
        );
    }
    assert_stderr_contains!(out, "Refusing to purge 5 repos");

    // Under the purge rules: /p1.git goes and becomes the symlink; /p7.git,
    // whose own entry the origin still has but was rejected (bad HEAD),
    // stays a repository.
    pull_opts("purge = yes\npurgeprotect = 99");
    let mut m = with_links(&["/p1.git", "/p7.git"], &["/p1.git"]);
    m["/p7.git"]["head"] = json!("ref: refs/heads/../../x");
    serve(&served, &m);
    let out = r.pull(&[]);
    assert!(is_symlink(&r.path("/p1.git")), "{}", output_text(&out));
    assert_eq!(
        std::fs::canonicalize(r.path("/p1.git")).unwrap(),
        r.path("/a.git")
    );
    assert!(is_repo(&r.path("/p7.git")), "{}", output_text(&out));
    assert_stderr_contains!(out, "not replacing the repository /p7.git with a symlink to /a.git: the origin lists it, in an entry that was rejected");
    for i in [0, 2, 3, 4, 5, 6, 8, 9] {
        assert!(is_repo(&r.path(&format!("/p{i}.git"))), "p{i}");
    }
}

#[test]
fn a_staging_area_that_is_a_symlink_or_not_ours_is_never_used_or_swept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    origin.project("/b/c.git", 2, 1_600_000_000);
    origin.manifest();
    let served = dir.join("served.js");
    serve(&served, &read_manifest_json(&origin.manifest));
    let r = replica(&dir, &origin.local_site(), &served, "", "");
    // Somebody points our staging name at a directory of theirs, with
    // something in it that looks like a leftover.
    let outside = dir.join("outside");
    std::fs::create_dir_all(outside.join("0123456789abcdef0123.git/refs")).unwrap();
    std::fs::write(outside.join("precious"), "do not touch").unwrap();
    let staging = r.top.join(".grok-pull.staging");
    std::os::unix::fs::symlink(&outside, &staging).unwrap();
    let before = snapshot(&outside);
    let out = r.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_stderr_contains!(out, &format!("{} is a symlink", staging.display()));
    assert_eq!(
        snapshot(&outside),
        before,
        "the outside directory was touched"
    );
    assert!(repos_under(&r.top).is_empty());

    // Somebody else's directory under our staging name.
    std::fs::remove_file(&staging).unwrap();
    std::fs::create_dir(&staging).unwrap();
    std::fs::create_dir_all(staging.join("theirs.git/refs")).unwrap();
    std::os::unix::fs::chown(&staging, Some(65534), Some(65534)).unwrap();
    let out = r.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_stderr_contains!(out, "is not a directory owned by this user");
    assert!(
        staging.join("theirs.git/refs").is_dir(),
        "swept somebody else's staging"
    );

    // Once it is ours again, the mirror catches up.
    std::fs::remove_dir_all(&staging).unwrap();
    let out = r.pull(&[]);
    assert_success!(out);
    for k in ["/a.git", "/b/c.git"] {
        assert_mirrored(&origin.path(k), &r.path(k), "Grokmirror");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&staging).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn keys_that_name_the_replicas_own_files_are_rejected_however_the_config_spells_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/good.git", 2, 1_600_000_000);
    origin.manifest();
    let honest = read_manifest_json(&origin.manifest);
    let served = dir.join("served.js");
    let top = dir.join("replica");
    std::fs::create_dir_all(top.join("state")).unwrap();
    // The object storage and the status file reached through a symlink
    // that leads back into the top level.
    std::os::unix::fs::symlink(&top, dir.join("alias")).unwrap();
    let core = format!(
        "manifest = {top}/state/local.js.gz\nobjstore = {dir}/alias/objs\n",
        top = top.display(),
        dir = dir.display()
    );
    let pull = format!(
        "projectslist = {top}/projects.list\n\n[fsck]\nstatusfile = {dir}/alias/state/../state/fsck.json\n",
        top = top.display(),
        dir = dir.display()
    );
    let r = replica(&dir, &origin.local_site(), &served, &core, &pull);
    serve(&served, &honest);
    let out = r.pull(&[]);
    assert_success!(out);
    let local = top.join("state/local.js.gz");
    assert!(local.is_file());

    let good = honest["/good.git"].clone();
    let own = [
        "/state/local.js.gz",
        "/state/.local.js.gz.remote",
        "/state/.local.js.gz.lock",
        "/state/fsck.json",
        "/state",
        "/projects.list",
        "/objs/evil.git",
        "/.grok-pull.staging/x.git",
    ];
    let mut hostile = Map::new();
    hostile.insert("/good.git".into(), good.clone());
    for k in own {
        hostile.insert(k.into(), good.clone());
    }
    serve(&served, &Value::Object(hostile));
    let out = r.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let err = stderr(&out);
    for k in own {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("rejected {k}:")))
            .unwrap_or_else(|| panic!("{k} was not rejected:\n{}", output_text(&out)));
        assert!(line.contains("belongs to this replica"), "{line}");
    }
    // Our files are still ours and still files; the local manifest reads.
    for f in ["state/local.js.gz", "projects.list"] {
        assert!(top.join(f).is_file(), "{f}");
    }
    assert_missing!(top.join("objs/evil.git"));
    let keys = support::manifest_keys(&local);
    assert_eq!(keys, vec!["/good.git"]);
    assert_eq!(repos_under(&top), vec!["/good.git"]);

    // The replica keeps working.
    serve(&served, &honest);
    let out = r.pull(&[]);
    assert_success!(out);
}

/// A small deterministic generator (xorshift), so a failing sequence can
/// be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One hostile change to a manifest, chosen by `rng`.
fn corrupt(rng: &mut Rng, m: &mut Map<String, Value>, keys: &[String]) -> String {
    let victim = keys[rng.below(keys.len())].clone();
    let record = m
        .get(&victim)
        .cloned()
        .unwrap_or_else(|| m.values().next().unwrap().clone());
    let other = keys[rng.below(keys.len())].clone();
    match rng.below(9) {
        0 => {
            m.insert("/../outside/escape.git".into(), record);
            "escape".into()
        }
        1 => {
            m.insert("/sneaky/through.git".into(), record);
            "through a symlink".into()
        }
        2 => {
            m.insert("/manifest.js.gz".into(), record.clone());
            m.insert("/projects.list".into(), record);
            "own files".into()
        }
        3 => {
            m.insert("/.grok-pull.staging/x.git".into(), record.clone());
            m.insert("/objstore/x.git".into(), record);
            "staging and objstore".into()
        }
        4 => {
            if let Some(e) = m.get_mut(&victim) {
                e["head"] = json!("ref: ../../../etc/passwd");
            }
            format!("bad head on {victim}")
        }
        5 => {
            // A symlink where another repository stands, that one dropped.
            if victim != other {
                m.remove(&other);
                if let Some(e) = m.get_mut(&victim) {
                    e["symlinks"] = json!([other.clone()]);
                }
            }
            format!("symlink {other} -> {victim}")
        }
        6 => {
            m.insert(format!("{victim}/nested.git"), record);
            "nested".into()
        }
        7 => {
            if let Some(e) = m.get_mut(&victim) {
                e["fingerprint"] = json!(42);
            }
            format!("wrong type on {victim}")
        }
        _ => {
            m.remove(&victim);
            format!("dropped {victim}")
        }
    }
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    #[test]
    fn random_manifest_sequences_keep_the_promises() {
        let seeds: Vec<u64> = match std::env::var("GROK_TRUST_SEED") {
            Ok(s) => vec![s.parse().expect("GROK_TRUST_SEED is a number")],
            Err(_) => vec![0x9e3779b97f4a7c15, 0xdeadbeef12345, 0x1234_5678_9abc, 42],
        };
        for seed in seeds {
            let tmp = tempfile::tempdir().unwrap();
            let dir = std::fs::canonicalize(tmp.path()).unwrap();
            let origin = Origin::new(&dir);
            let keys: Vec<String> = (0..8).map(|i| format!("/g{}/r{i}.git", i % 3)).collect();
            for (i, k) in keys.iter().enumerate() {
                origin.project(k, 1, 1_600_000_000 + i as i64);
            }
            origin.manifest();
            let honest = read_manifest_json(&origin.manifest);
            let served = dir.join("served.js");
            let mut rng = Rng(seed);
            let purge = rng.chance(50);
            let nopurge = &keys[rng.below(keys.len())];
            let pull = if purge {
                format!("purge = yes\npurgeprotect = 60\nnopurge = {nopurge}\nprojectslist = ${{core:toplevel}}/projects.list")
            } else {
                "purge = no\nprojectslist = ${core:toplevel}/projects.list".to_string()
            };
            let r = replica(&dir, &origin.local_site(), &served, "", &pull);
            let outside = dir.join("outside");
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::write(outside.join("precious"), "x").unwrap();
            std::os::unix::fs::symlink(&outside, r.top.join("sneaky")).unwrap();
            let outside_before = snapshot(&outside);
            serve(&served, &honest);
            let out = r.pull(&[]);
            assert_success!(out, "seed {seed}");
            let around = names(&dir);
            let mut history = Vec::new();
            for step in 0..5 {
                let mut m = honest.as_object().unwrap().clone();
                let hostile = rng.chance(70);
                if hostile {
                    for _ in 0..1 + rng.below(3) {
                        history.push(corrupt(&mut rng, &mut m, &keys));
                    }
                } else {
                    history.push("good".into());
                }
                let on_disk_before = repos_under(&r.top);
                serve(&served, &Value::Object(m.clone()));
                let out = r.pull(&[]);
                let ctx = || {
                    format!(
                        "seed {seed}, step {step}, {history:?}\n{}",
                        output_text(&out)
                    )
                };
                assert!(out.status.code().is_some_and(|c| c <= 1), "{}", ctx());
                assert_eq!(
                    snapshot(&outside),
                    outside_before,
                    "outside changed: {}",
                    ctx()
                );
                assert_eq!(
                    names(&dir),
                    around,
                    "the parent directory changed: {}",
                    ctx()
                );
                // What the purge rules keep never vanishes.
                for k in &on_disk_before {
                    // Listed, even in an entry that is rejected, or protected.
                    let kept = !purge || k == nopurge || m.contains_key(k);
                    if kept {
                        assert!(
                            is_repo(&r.path(k)),
                            "{k} vanished though the purge rules keep it: {}",
                            ctx()
                        );
                    }
                }
            }
            // A good manifest again: the replica equals the origin.
            serve(&served, &honest);
            let out = r.pull(&[]);
            assert_success!(out, "seed {seed}, {history:?}");
            for k in &keys {
                assert_mirrored(&origin.path(k), &r.path(k), "Grokmirror");
                assert!(!is_symlink(&r.path(k)), "seed {seed}: {k} is a symlink");
            }
            let listed: BTreeSet<String> = read_manifest_json(&r.manifest())
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(
                listed,
                keys.iter().cloned().collect::<BTreeSet<_>>(),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn swapping_a_directory_for_a_symlink_never_leads_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let origin = Origin::new(&dir);
        let keys: Vec<String> = (0..24).map(|i| format!("/pub/r{i:02}.git")).collect();
        for (i, k) in keys.iter().enumerate() {
            origin.project(k, 2, 1_600_000_000 + i as i64);
        }
        origin.manifest();
        let served = dir.join("served.js");
        let r = replica(&dir, &origin.local_site(), &served, "", "");
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("precious"), "do not touch").unwrap();
        // The attacker can rename inside /pub (say, it is group-writable).
        std::fs::create_dir_all(r.top.join("pub")).unwrap();
        let before = snapshot(&outside);
        let mut total_swaps = 0;
        let mut refused = 0;
        for round in 0..3 {
            if round > 0 {
                // New commits at the origin, so the next run fetches.
                for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 2 == round % 2) {
                    support::fixture::commits(
                        &origin.path(k),
                        "main",
                        1,
                        1_700_000_000 + i as i64 + round as i64 * 100,
                    );
                }
                origin.manifest();
            }
            serve(&served, &read_manifest_json(&origin.manifest));
            let (out, swaps) = under_attack(
                &r.top.join("pub"),
                &outside,
                std::time::Duration::from_secs(120),
                || r.pull(&[]),
            );
            total_swaps += swaps;
            // The attack met our code: a lookup refused the symlink.
            refused += String::from_utf8_lossy(&out.stderr)
                .matches("refusing to follow it")
                .count();
            assert_eq!(
                snapshot(&outside),
                before,
                "round {round}: something appeared outside the top level\n{}",
                output_text(&out)
            );
        }
        assert!(
            total_swaps >= 3 && refused > 0,
            "the attack did not meet the runs ({total_swaps} swaps, {refused} refusals)"
        );
        eprintln!("{total_swaps} swaps, {refused} lookups refused a symlink");
        // Without the attack, the replica catches up and equals the origin.
        serve(&served, &read_manifest_json(&origin.manifest));
        let out = r.pull(&[]);
        assert_success!(out);
        for k in &keys {
            assert_mirrored(&origin.path(k), &r.path(k), "Grokmirror");
        }
        assert_eq!(snapshot(&outside), before);
    }
}
