//! Many replicas as one mirror (`[pull] shard`): three replicas of one
//! origin split it between them with fork groups kept together; going
//! from three shards to four deletes nothing before the new owner has it,
//! and then only under the purge rules; and a real nginx and a real
//! HAProxy loading `grok-manifest --shard-map` route every clone to the
//! right shard.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::forks::{self, Spec};
use crate::support::haproxy::Front;
use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, output_text, repos_under, Origin, Replica};
use crate::support::nginx::Router;
use crate::support::{grok, read_manifest_json, run, run_ok, show_ref};

/// The test collection: projects with forks (even projects grouped by the
/// `forkgroup` an origin's grok-fsck publishes, odd ones by `reference`,
/// as a grokmirror 1.x origin has it), a 1.x alternates child, a repository
/// of unrelated history and a few lone repositories. Returns the origin,
/// the manifest URL to pull (a plain JSON file) and each key's fork group
/// as the test sees it.
fn collection(dir: &Path) -> (Origin, String, BTreeMap<String, String>) {
    let origin = Origin::new(dir);
    let spec = Spec {
        projects: 8,
        forks: 3,
        private_every: 0,
        chain: true,
        unrelated: true,
        base_commits: 3,
    };
    let built = forks::build(&origin.root, &spec);
    for i in 0..6 {
        origin.project(&format!("/solo/s{i}.git"), 1, 1_600_000_000 + i);
    }
    // Names a front must not confuse: a path that is a suffix of others
    // (`/base.git` ends `/projN/base.git`) and one that another extends.
    origin.project("/base.git", 1, 1_600_000_100);
    origin.project("/solo/s1.gitx.git", 1, 1_600_000_200);
    origin.manifest();
    let mut json = read_manifest_json(&origin.manifest);
    let mut groups = BTreeMap::new();
    let repos = json.as_object_mut().unwrap();
    for (key, entry) in repos.iter_mut() {
        let e = entry.as_object_mut().unwrap();
        let project = key
            .strip_prefix("/proj")
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<usize>().ok());
        let group = match project {
            _ if key.ends_with("/unrelated.git") => key.clone(),
            Some(p) if p % 2 == 0 => {
                e.insert("forkgroup".into(), format!("objstore-{p}").into());
                format!("proj{p}")
            }
            Some(p) => {
                let base = forks::fork_key(&spec, p, 0);
                if *key != base {
                    e.insert("reference".into(), base.into());
                }
                format!("proj{p}")
            }
            None => key.clone(),
        };
        groups.insert(key.clone(), group);
    }
    assert!(built.keys.iter().all(|k| groups.contains_key(k)));
    let path = origin.root.join("sharded.js");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let url = format!("file://{}", path.display());
    (origin, url, groups)
}

/// `grok-manifest --shard-map N` of the pulled manifest: key to shard.
fn shard_map(manifest_url: &str, count: u32) -> BTreeMap<String, usize> {
    let path = manifest_url.strip_prefix("file://").unwrap();
    let out = run_ok(
        grok("grok-manifest")
            .args(["--shard-map", &count.to_string(), "-m", path])
            .args(["--shard-map-format", "haproxy"]),
    );
    out.lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// A replica `shard<k>` under `dir` with `[pull] shard = k/n` and `extra`.
fn replica(dir: &Path, origin: &Origin, url: &str, k: u32, n: u32, extra: &str) -> Replica {
    Replica::new(
        dir,
        &format!("shard{k}"),
        &origin.local_site(),
        url,
        &format!("shard = {k}/{n}\n{extra}"),
    )
}

/// Rewrite a replica's `[pull] shard` line (and add `extra` to `[pull]`).
fn reshard(r: &Replica, k: u32, n: u32, extra: &str) {
    let text = std::fs::read_to_string(&r.config).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("shard = ") {
                format!("shard = {k}/{n}\n{extra}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&r.config, text + "\n").unwrap();
}

/// Pull; the output of the run (stderr and the new part of the log
/// file), and whether it succeeded.
fn pull(r: &Replica, flags: &[&str]) -> (bool, String) {
    let log = r.config.with_extension("log");
    let seen = std::fs::read_to_string(&log).unwrap_or_default().len();
    let out = r.pull(flags);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let text = format!("{}\n--- log\n{}", output_text(&out), &logged[seen..]);
    (out.status.success(), text)
}

fn pull_ok(r: &Replica, flags: &[&str]) -> String {
    let (ok, text) = pull(r, flags);
    assert!(ok, "{}: {text}", r.config.display());
    text
}

/// The repositories of a replica's tree, without its object storage
/// (`${toplevel}/objstore`, where grok-pull puts the forks' shared
/// objects).
fn repos(r: &Replica) -> Vec<String> {
    repos_under(&r.top)
        .into_iter()
        .filter(|k| !k.starts_with("/objstore/"))
        .collect()
}

fn keys_of(map: &BTreeMap<String, usize>, shard: usize) -> Vec<String> {
    map.iter()
        .filter(|(_, s)| **s == shard)
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn three_shards_split_the_origin_with_forks_together() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let (origin, url, groups) = collection(&dir);
    let replicas: Vec<Replica> = (0..3)
        .map(|k| replica(&dir, &origin, &url, k, 3, ""))
        .collect();
    for r in &replicas {
        pull_ok(r, &[]);
    }
    let trees: Vec<Vec<String>> = replicas.iter().map(repos).collect();
    let mut union = BTreeSet::new();
    for (k, t) in trees.iter().enumerate() {
        assert!(!t.is_empty(), "shard {k} got nothing: {trees:?}");
        for key in t {
            assert!(union.insert(key.clone()), "{key} is on two shards");
        }
    }
    let all: BTreeSet<String> = groups.keys().cloned().collect();
    assert_eq!(union, all, "the shards together are the origin");
    let map = shard_map(&url, 3);
    for (k, (t, r)) in trees.iter().zip(&replicas).enumerate() {
        assert_eq!(*t, keys_of(&map, k), "shard {k} holds what the map says");
        for key in t {
            assert_mirrored(&origin.path(key), &r.path(key), "Grokmirror");
        }
        // Its local manifest lists exactly what it holds.
        let listed: Vec<String> = read_manifest_json(&r.manifest())
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(listed, *t);
    }
    let mut group_shard: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, group) in &groups {
        let shard = map[key];
        assert_eq!(
            *group_shard.entry(group).or_insert(shard),
            shard,
            "{key} is apart from its fork group {group}"
        );
    }
    // A pod of a StatefulSet: no [pull] shard, GROKMIRROR_SHARD=ordinal/3
    // and its name in HOSTNAME; it holds what shard 1 holds.
    let pod = Replica::new(&dir, "pod", &origin.local_site(), &url, "");
    let mut cmd = grok("grok-pull");
    crate::support::mirror::no_proxy(&mut cmd);
    cmd.args(["-v", "-c"])
        .arg(&pod.config)
        .env("GROKMIRROR_SHARD", "ordinal/3")
        .env("HOSTNAME", "grok-shard-1");
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(repos(&pod), trees[1]);
    // A host name without an ordinal is refused before anything is done.
    let mut cmd = grok("grok-pull");
    cmd.args(["-c"])
        .arg(&pod.config)
        .env("GROKMIRROR_SHARD", "ordinal/3")
        .env("HOSTNAME", "mirror");
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GROKMIRROR_SHARD=\"ordinal/3\""),
        "{}",
        output_text(&out)
    );
    // The forks of an even project share the object storage named by
    // their forkgroup, on their shard only.
    for p in (0..8).step_by(2) {
        let shard = map[&format!("/proj{p}/base.git")];
        for (k, r) in replicas.iter().enumerate() {
            let store = r.top.join(format!("objstore/objstore-{p}.git"));
            assert_eq!(
                store.is_dir(),
                k == shard,
                "{} on shard {k}",
                store.display()
            );
        }
    }
    // Fork groups do spread: more than one shard holds a project.
    let project_shards: BTreeSet<usize> = groups
        .iter()
        .filter(|(_, g)| g.starts_with("proj"))
        .map(|(k, _)| map[k])
        .collect();
    assert!(project_shards.len() > 1, "{project_shards:?}");
}

#[test]
fn going_from_three_to_four_shards_deletes_nothing_before_the_new_owner_has_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let (origin, url, _) = collection(&dir);
    // The shards read each other's manifests over HTTP, as in
    // contrib/kubernetes/shards (one server for all of them here).
    let http = HttpServer::serve(&dir);
    let peers = format!(
        "purge = yes\nshard_peers = {}",
        http.url("/shard{K}/manifest.js.gz")
    );
    let old: Vec<Replica> = (0..3)
        .map(|k| replica(&dir, &origin, &url, k, 3, &peers))
        .collect();
    for r in &old {
        pull_ok(r, &[]);
    }
    let before: Vec<Vec<String>> = old.iter().map(repos).collect();
    let (map3, map4) = (shard_map(&url, 3), shard_map(&url, 4));
    let moved: Vec<String> = map3
        .keys()
        .filter(|k| map3[*k] != map4[*k])
        .cloned()
        .collect();
    assert!(!moved.is_empty(), "the collection must move something");
    assert!(moved.iter().all(|k| map4[k] == 3), "only to the new shard");
    assert!(
        moved.len() * 2 < map3.len(),
        "{} of {} moved",
        moved.len(),
        map3.len()
    );
    // One moved repository is protected by nopurge.
    let protected = moved[0].clone();
    let extra = format!("nopurge = {protected}");

    // The old shards learn of four shards before the new one has pulled:
    // everything stays (even with purgeprotect lifted), and each says why
    // in one line.
    for (k, r) in old.iter().enumerate() {
        reshard(r, k as u32, 4, &extra);
        let log = pull_ok(r, &["--force-purge"]);
        assert_eq!(repos(r), before[k], "shard {k} lost something");
        if moved.iter().any(|m| map3[m] == k) {
            assert!(
                log.contains("cannot read shard 3's manifest"),
                "shard {k}: {log}"
            );
            assert!(
                log.contains("keeping") && log.contains("moved to other shards"),
                "shard {k}: {log}"
            );
        }
    }

    // The new shard pulls what moved to it.
    let new = replica(&dir, &origin, &url, 3, 4, &peers);
    pull_ok(&new, &[]);
    assert_eq!(repos(&new), keys_of(&map4, 3));
    assert_eq!(keys_of(&map4, 3), {
        let mut m = moved.clone();
        m.sort();
        m
    });

    // Now the old shards may purge what moved, but only under the purge
    // rules: a quarter of a shard is over purgeprotect (5%), so a plain
    // run refuses and deletes nothing...
    for (k, r) in old.iter().enumerate() {
        let leaving = moved
            .iter()
            .filter(|m| map3[*m] == k && **m != protected)
            .count();
        let (ok, log) = pull(r, &[]);
        assert_eq!(repos(r), before[k], "shard {k}");
        if leaving > 0 {
            assert!(!ok && log.contains("Refusing to purge"), "shard {k}: {log}");
        } else {
            assert!(ok, "shard {k}: {log}");
        }
    }
    // ... and --force-purge deletes them, all but the nopurge one.
    for (k, r) in old.iter().enumerate() {
        pull_ok(r, &["--force-purge"]);
        let mut expected = keys_of(&map4, k);
        if map3[&protected] == k {
            expected.push(protected.clone());
            expected.sort();
        }
        assert_eq!(repos(r), expected, "shard {k}");
        for key in keys_of(&map4, k) {
            assert_mirrored(&origin.path(&key), &r.path(&key), "Grokmirror");
        }
    }
    for key in keys_of(&map4, 3) {
        assert_mirrored(&origin.path(&key), &new.path(&key), "Grokmirror");
    }
    // Only the new owner's manifest was asked for: 404 before it pulled,
    // then read.
    let asked: BTreeSet<(String, u16)> = http
        .requests()
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    let expected: BTreeSet<(String, u16)> = [404, 200]
        .into_iter()
        .map(|status| ("/shard3/manifest.js.gz".to_string(), status))
        .collect();
    assert_eq!(asked, expected);
}

#[test]
fn a_real_nginx_and_haproxy_route_every_clone_to_its_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let (origin, url, groups) = collection(&dir);
    let replicas: Vec<Replica> = (0..3)
        .map(|k| replica(&dir, &origin, &url, k, 3, ""))
        .collect();
    for r in &replicas {
        pull_ok(r, &[]);
    }
    let map_file = dir.join("shards.map");
    let path = url.strip_prefix("file://").unwrap();
    let nginx_map = run_ok(grok("grok-manifest").args(["--shard-map", "3", "-m", path]));
    std::fs::write(&map_file, &nginx_map).unwrap();
    let tops: Vec<PathBuf> = replicas.iter().map(|r| r.top.clone()).collect();
    let router = Router::start(&dir, &tops, &map_file);
    let map = shard_map(&url, 3);
    let clones = dir.join("clones");
    for (i, key) in groups.keys().enumerate() {
        let dest = clones.join(i.to_string());
        let out = run(crate::support::git_cmd(None)
            .args(["clone", "-q", "--bare", &router.url(key)])
            .arg(&dest)
            .env("GIT_TERMINAL_PROMPT", "0"));
        assert!(
            out.status.success(),
            "clone of {key}: {}",
            output_text(&out)
        );
        assert_eq!(show_ref(&dest), show_ref(&origin.path(key)), "{key}");
        let owner = map[key];
        for shard in 0..3 {
            let asked = router
                .requests_to(shard)
                .iter()
                .any(|p| p.starts_with(&format!("{key}/")));
            assert_eq!(
                asked,
                shard == owner,
                "{key} (shard {owner}) at shard {shard}"
            );
        }
    }
    // A repository no shard holds is not found, not sent anywhere.
    let out = run(crate::support::git_cmd(None)
        .args(["clone", "-q", "--bare", &router.url("/nowhere.git")])
        .arg(clones.join("nowhere"))
        .env("GIT_TERMINAL_PROMPT", "0"));
    assert!(!out.status.success());

    // The same shards behind HAProxy with the haproxy form of the map.
    let haproxy_map = dir.join("shards.haproxy.map");
    let text = run_ok(grok("grok-manifest").args([
        "--shard-map",
        "3",
        "--shard-map-format",
        "haproxy",
        "-m",
        path,
    ]));
    std::fs::write(&haproxy_map, text).unwrap();
    let ports: Vec<u16> = (0..3).map(|i| router.shard_port(i)).collect();
    let front = Front::start(&dir, &ports, &haproxy_map);
    let asked_for = |key: &str, shard: usize| {
        router
            .requests_to(shard)
            .iter()
            .filter(|p| p.starts_with(&format!("{key}/")))
            .count()
    };
    for (i, key) in groups.keys().enumerate() {
        let before: Vec<usize> = (0..3).map(|s| asked_for(key, s)).collect();
        let dest = clones.join(format!("haproxy-{i}"));
        let out = run(crate::support::git_cmd(None)
            .args(["clone", "-q", "--bare", &front.url(key)])
            .arg(&dest)
            .env("GIT_TERMINAL_PROMPT", "0"));
        assert!(
            out.status.success(),
            "clone of {key}: {}",
            output_text(&out)
        );
        assert_eq!(show_ref(&dest), show_ref(&origin.path(key)), "{key}");
        for (shard, earlier) in before.iter().enumerate() {
            let more = asked_for(key, shard) > *earlier;
            assert_eq!(
                more,
                shard == map[key],
                "{key} (shard {}) at shard {shard}",
                map[key]
            );
        }
    }
    let out = run(crate::support::git_cmd(None)
        .args(["clone", "-q", "--bare", &front.url("/nowhere.git")])
        .arg(clones.join("haproxy-nowhere"))
        .env("GIT_TERMINAL_PROMPT", "0"));
    assert!(!out.status.success());
    drop(front);
    drop(router);
}
