//! Fork collections for object-storage tests: projects with many forks
//! (some private, a grokmirror 1.x alternates chain, a fork with unrelated
//! history), configs for our grok-fsck and the reference's, and a
//! comparable description of the resulting object-storage layout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{fixture, git, git_cmd, grok, oracle, run};

/// What to build.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Number of projects (`proj<i>/`).
    pub projects: usize,
    /// Forks per project, the project's base repository included.
    pub forks: usize,
    /// Every fork whose index is a multiple of this lives under
    /// `private/` (0: none).
    pub private_every: usize,
    /// Project 0 gets `child.git`, borrowing from its base through
    /// alternates (grokmirror 1.x style).
    pub chain: bool,
    /// Project 1 (or 0) gets `unrelated.git`, sharing no history.
    pub unrelated: bool,
    /// Commits in each base.
    pub base_commits: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            projects: 2,
            forks: 6,
            private_every: 5,
            chain: true,
            unrelated: true,
            base_commits: 30,
        }
    }
}

/// A built collection.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    /// Manifest keys of every repository.
    pub keys: Vec<String>,
    /// Keys of the private forks.
    pub private: Vec<String>,
    /// Objects only each private fork has (by key).
    pub private_objects: BTreeMap<String, Vec<String>>,
}

/// The key of fork `f` of project `p` (`f == 0` is the base).
pub fn fork_key(spec: &Spec, p: usize, f: usize) -> String {
    if f == 0 {
        format!("/proj{p}/base.git")
    } else if is_private_fork(spec, f) {
        format!("/proj{p}/private/fork{f:02}.git")
    } else {
        format!("/proj{p}/fork{f:02}.git")
    }
}

fn is_private_fork(spec: &Spec, f: usize) -> bool {
    f > 0 && spec.private_every > 0 && f % spec.private_every == 0
}

/// Build the collection under `top` (same object ids every time).
pub fn build(top: &Path, spec: &Spec) -> Collection {
    let mut c = Collection::default();
    for p in 0..spec.projects {
        let base_key = fork_key(spec, p, 0);
        let base = top.join(base_key.trim_start_matches('/'));
        fixture::init_bare(&base);
        let tip = fixture::commits(
            &base,
            "main",
            spec.base_commits,
            1_500_000_000 + p as i64 * 1_000_000,
        );
        fixture::tag(&base, "v1", &tip, None);
        git(Some(&base), &["config", "gc.auto", "0"]);
        c.keys.push(base_key);
        for f in 1..spec.forks {
            let key = fork_key(spec, p, f);
            let path = top.join(key.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let out = Command::new("cp")
                .arg("-a")
                .arg(&base)
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let branch = if is_private_fork(spec, f) {
                "secret"
            } else {
                "work"
            };
            // The fork's own work starts from the project's history.
            git(Some(&path), &["branch", branch, "main"]);
            fixture::commits(
                &path,
                branch,
                2,
                1_600_000_000 + (p * 100 + f) as i64 * 1000,
            );
            if is_private_fork(spec, f) {
                let own = git(
                    Some(&path),
                    &[
                        "rev-list",
                        "--objects",
                        "--no-object-names",
                        "secret",
                        "^main",
                    ],
                );
                c.private_objects
                    .insert(key.clone(), own.lines().map(str::to_string).collect());
                c.private.push(key.clone());
            }
            c.keys.push(key);
        }
    }
    if spec.chain {
        let base = top.join("proj0/base.git");
        let child = top.join("proj0/child.git");
        git(
            None,
            &[
                "clone",
                "-q",
                "--bare",
                "--shared",
                base.to_str().unwrap(),
                child.to_str().unwrap(),
            ],
        );
        git(Some(&child), &["remote", "remove", "origin"]);
        fixture::commits(&child, "kid", 3, 1_650_000_000);
        c.keys.push("/proj0/child.git".into());
    }
    if spec.unrelated {
        let p = spec.projects.min(2) - 1;
        let key = format!("/proj{p}/unrelated.git");
        let path = top.join(key.trim_start_matches('/'));
        fixture::project(&path, 8, 1_700_000_000);
        c.keys.push(key);
    }
    c.keys.sort();
    c
}

/// A tree with its config, for both grok-fscks.
pub struct Tree {
    /// Keeps it alive.
    pub dir: tempfile::TempDir,
    /// The top level (real path).
    pub top: PathBuf,
    /// The config file.
    pub config: PathBuf,
}

impl Tree {
    /// An empty tree whose config has `core` and `fsck` appended to those
    /// sections (`[core] private = */private/*` is always set).
    pub fn new(core: &str, fsck: &str) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap().join("top");
        std::fs::create_dir_all(&top).unwrap();
        let config = dir.path().join("grokmirror.conf");
        std::fs::write(
            &config,
            format!(
                "[core]\ntoplevel = {}\nmanifest = ${{toplevel}}/manifest.js.gz\nprivate = */private/*\n{core}\n\
                 [fsck]\nstatusfile = ${{core:toplevel}}/fsck.status.js\nignore_errors = notice:\n    warning: disabling bitmap writing\n{fsck}\n",
                top.display()
            ),
        )
        .unwrap();
        Tree { dir, top, config }
    }

    /// Full path of a repository.
    pub fn repo(&self, key: &str) -> PathBuf {
        self.top.join(key.trim_start_matches('/'))
    }

    /// Write the manifest (our grok-manifest).
    pub fn manifest(&self) {
        super::replica::write_manifest(&self.top);
    }

    /// Our grok-fsck, verbose.
    pub fn fsck(&self, args: &[&str]) -> Output {
        super::replica::fsck_with(grok("grok-fsck"), &self.config, args)
    }

    /// The reference grok-fsck, verbose.
    pub fn oracle_fsck(&self, args: &[&str]) -> Output {
        super::replica::fsck_with(oracle("grok-fsck"), &self.config, args)
    }

    /// The object storage directory.
    pub fn objstore(&self) -> PathBuf {
        self.top.join("objstore")
    }
}

/// One object storage as the tests compare it (paths relative to the top
/// level, so two trees can be compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// Its directory name.
    pub name: String,
    /// Config keys and values from its own config file, remotes left out.
    pub config: BTreeSet<(String, String)>,
    /// Per member (remote URL, relative): its remote's keys and values
    /// (the virtref in them replaced by `V`).
    pub remotes: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Per member: the ref names under its `refs/virtual/<virtref>/`.
    pub virtual_refs: BTreeMap<String, BTreeSet<String>>,
    /// `refs/virtual/` names that match no member.
    pub stray_virtual: BTreeSet<String>,
    /// `grokmirror.objstore`, top level replaced by `TOP`.
    pub marker: String,
    /// Members with a `grokmirror.<virtref>.fingerprint`.
    pub fingerprinted: BTreeSet<String>,
}

/// The object-storage layout of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Object storage by its member set.
    pub stores: BTreeMap<BTreeSet<String>, Store>,
    /// Every repository of the tree (relative) -> the object storage it
    /// borrows from (by name), or the repository it borrows from, or "".
    pub borrows: BTreeMap<String, String>,
    /// `core.alternateRefsPrefixes` of repositories that have it, member
    /// names in place of virtrefs.
    pub alternate_refs: BTreeMap<String, String>,
}

fn rel(top: &Path, p: &str) -> String {
    Path::new(p)
        .strip_prefix(top)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| p.to_string())
}

fn own_config(repo: &Path) -> Vec<(String, String)> {
    let out = run(git_cmd(None)
        .args(["config", "--file"])
        .arg(repo.join("config"))
        .arg("-l"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Describe the object storage of `top`.
pub fn layout(top: &Path) -> Layout {
    let mut layout = Layout::default();
    let mut virtrefs: BTreeMap<String, String> = BTreeMap::new();
    let obst_dir = top.join("objstore");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&obst_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for o in names {
        if o.extension().is_none_or(|x| x != "git") || !o.join("HEAD").exists() {
            continue;
        }
        let mut store = Store {
            name: o.file_name().unwrap().to_string_lossy().into_owned(),
            config: BTreeSet::new(),
            remotes: BTreeMap::new(),
            virtual_refs: BTreeMap::new(),
            stray_virtual: BTreeSet::new(),
            marker: std::fs::read_to_string(o.join("grokmirror.objstore"))
                .unwrap_or_default()
                .replace(&top.to_string_lossy().into_owned(), "TOP"),
            fingerprinted: BTreeSet::new(),
        };
        let mut by_virtref: BTreeMap<String, String> = BTreeMap::new();
        let mut raw: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (k, v) in own_config(&o) {
            if let Some(rest) = k.strip_prefix("remote.") {
                let (name, key) = rest.rsplit_once('.').unwrap();
                if key == "url" {
                    by_virtref.insert(name.to_string(), rel(top, &v));
                }
                raw.entry(name.to_string())
                    .or_default()
                    .push((key.to_string(), v));
            } else {
                store.config.insert((k, v));
            }
        }
        for (virtref, kv) in raw {
            let member = by_virtref.get(&virtref).cloned().unwrap_or(virtref.clone());
            let set = kv
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.replace(&virtref, "V")
                            .replace(&top.to_string_lossy().into_owned(), "TOP"),
                    )
                })
                .collect();
            store.remotes.insert(member.clone(), set);
            if o.join(format!("grokmirror.{virtref}.fingerprint")).exists() {
                store.fingerprinted.insert(member);
            }
        }
        let refs = git(
            Some(&o),
            &["for-each-ref", "--format=%(refname)", "refs/virtual/"],
        );
        for r in refs.lines() {
            let mut parts = r.splitn(4, '/');
            let (_, _, v, rest) = (
                parts.next(),
                parts.next(),
                parts.next().unwrap(),
                parts.next(),
            );
            match by_virtref.get(v) {
                Some(member) => {
                    store
                        .virtual_refs
                        .entry(member.clone())
                        .or_default()
                        .insert(rest.unwrap_or("").to_string());
                }
                None => {
                    store.stray_virtual.insert(v.to_string());
                }
            }
        }
        // Values naming a member by virtref (pack.islandCore) name it by
        // path instead.
        store.config = store
            .config
            .into_iter()
            .map(|(k, v)| match by_virtref.get(&v) {
                Some(member) => (k, format!("<{member}>")),
                None => (k, v),
            })
            .collect();
        virtrefs.extend(by_virtref.clone());
        let members: BTreeSet<String> = by_virtref.values().cloned().collect();
        layout.stores.insert(members, store);
    }
    for repo in super::mirror::repos_under(top) {
        let repo = repo.trim_start_matches('/').to_string();
        if repo.starts_with("objstore/") {
            continue;
        }
        let path = top.join(&repo);
        let alt = std::fs::read_to_string(path.join("objects/info/alternates")).unwrap_or_default();
        let alt = alt.trim().trim_end_matches("/objects");
        let lender = if alt.is_empty() {
            String::new()
        } else {
            rel(top, alt)
        };
        let prefixes = own_config(&path)
            .into_iter()
            .find(|(k, _)| k == "core.alternaterefsprefixes")
            .map(|(_, v)| v);
        if let Some(mut v) = prefixes {
            for (virtref, member) in &virtrefs {
                v = v.replace(&format!("/{virtref}/"), &format!("/<{member}>/"));
            }
            layout.alternate_refs.insert(repo.clone(), v);
        }
        layout.borrows.insert(repo, lender);
    }
    layout
}

impl Layout {
    /// The differences from `other`, one line each (empty when equal).
    pub fn diff(&self, other: &Layout) -> Vec<String> {
        let mut out = Vec::new();
        for (members, s) in &self.stores {
            match other.stores.get(members) {
                None => out.push(format!("only left: store of {members:?}")),
                Some(o) if o != s => out.push(format!("store of {members:?}:\n  {s:?}\n  {o:?}")),
                Some(_) => {}
            }
        }
        for members in other.stores.keys() {
            if !self.stores.contains_key(members) {
                out.push(format!("only right: store of {members:?}"));
            }
        }
        for (repo, lender) in &self.borrows {
            let theirs = other.borrows.get(repo);
            if theirs != Some(lender) {
                out.push(format!("{repo}: borrows from {lender:?} / {theirs:?}"));
            }
        }
        for repo in other.borrows.keys() {
            if !self.borrows.contains_key(repo) {
                out.push(format!("only right: {repo}"));
            }
        }
        if self.alternate_refs != other.alternate_refs {
            out.push(format!(
                "alternateRefsPrefixes: {:?} / {:?}",
                self.alternate_refs, other.alternate_refs
            ));
        }
        out
    }

    /// The same layout with object storage names left out (they are
    /// random), so two trees built apart can be compared.
    pub fn anonymous(&self) -> Layout {
        let mut l = self.clone();
        let names: BTreeMap<String, String> = l
            .stores
            .iter()
            .map(|(members, s)| {
                let first = members.iter().next().cloned().unwrap_or_default();
                (
                    format!("objstore/{}", s.name),
                    format!("objstore/<{first}>"),
                )
            })
            .collect();
        for s in l.stores.values_mut() {
            s.name = String::new();
        }
        for v in l.borrows.values_mut() {
            if let Some(n) = names.get(v) {
                *v = n.clone();
            }
        }
        l
    }
}

/// The object-storage repositories (`*.git`) in `dir`, sorted; none when
/// `dir` does not exist.
pub fn objstore_repos(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "git"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// `git fsck` of every repository of the tree and of its object storage
/// (connectivity only where asked); the failures, with what git said.
pub fn fsck_all(top: &Path, connectivity_only: bool) -> Vec<String> {
    let mut repos: Vec<PathBuf> = super::mirror::repos_under(top)
        .into_iter()
        .filter(|r| !r.starts_with("/objstore/"))
        .map(|r| top.join(r.trim_start_matches('/')))
        .collect();
    repos.extend(objstore_repos(&top.join("objstore")));
    let mut bad = Vec::new();
    for repo in repos {
        let mut cmd = git_cmd(Some(&repo));
        cmd.args(["fsck", "--no-dangling", "--no-progress"]);
        if connectivity_only {
            cmd.arg("--connectivity-only");
        }
        let out = run(&mut cmd);
        if !out.status.success() {
            bad.push(format!(
                "{}: {}",
                repo.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    bad
}

/// Disk use of the tree in KiB (`du -sk`, hard links counted once).
pub fn disk_kib(top: &Path) -> u64 {
    let out = run(Command::new("du").arg("-sk").arg(top));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Whether any object storage of the tree holds `oid` itself.
pub fn in_any_objstore(top: &Path, oid: &str) -> bool {
    objstore_repos(&top.join("objstore")).iter().any(|p| {
        run(git_cmd(Some(p)).args(["cat-file", "-e", oid]))
            .status
            .success()
    })
}

/// Lines of a run's log that mean object storage was rewired: created,
/// joined, migrated, merged into or deleted.
pub fn rewiring(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            [
                "can use",
                "init: new objstore",
                "migrating to",
                "merging into",
                "deleting (no longer used",
                "moving:",
            ]
            .iter()
            .any(|m| l.contains(m))
        })
        .map(str::to_string)
        .collect()
}
