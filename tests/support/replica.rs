//! A replica tree for grok-fsck tests: a top level with bare repositories,
//! a manifest (written by our grok-manifest), a config with an `[fsck]`
//! section, and helpers to look at and damage objects.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{git, grok, oracle, run};

/// A temporary replica tree.
pub struct Replica {
    /// Keeps the tree alive.
    pub dir: tempfile::TempDir,
    /// The top level (real path).
    pub top: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// The status file.
    pub status_file: PathBuf,
}

impl Replica {
    /// A new empty tree; `fsck` is appended to the `[fsck]` section (which
    /// already sets `statusfile`). `extra` is appended after it (other
    /// sections).
    pub fn new(fsck: &str, extra: &str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap().join("top");
        std::fs::create_dir_all(&top).unwrap();
        let config = dir.path().join("grokmirror.conf");
        let status_file = top.join("fsck.status.js");
        std::fs::write(
            &config,
            format!(
                "[core]\ntoplevel = {}\nmanifest = ${{toplevel}}/manifest.js.gz\n[fsck]\nstatusfile = ${{core:toplevel}}/fsck.status.js\n{fsck}\n{extra}\n",
                top.display()
            ),
        )
        .unwrap();
        Replica {
            dir,
            top,
            config,
            status_file,
        }
    }

    /// Full path of a repository in the tree.
    pub fn repo(&self, name: &str) -> PathBuf {
        self.top.join(name)
    }

    /// Write the manifest of what is on disk (our grok-manifest).
    pub fn manifest(&self) {
        write_manifest(&self.top);
    }

    /// Run our grok-fsck (verbose) with extra flags.
    pub fn fsck(&self, args: &[&str]) -> Output {
        fsck_with(grok("grok-fsck"), &self.config, args)
    }

    /// Run the reference grok-fsck (verbose) with extra flags.
    pub fn oracle_fsck(&self, args: &[&str]) -> Output {
        fsck_with(oracle("grok-fsck"), &self.config, args)
    }

    /// The status file as JSON.
    pub fn status(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.status_file)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.status_file.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// One repository's status record.
    pub fn status_of(&self, name: &str) -> serde_json::Value {
        let key = self.repo(name).to_string_lossy().into_owned();
        self.status()
            .get(&key)
            .unwrap_or_else(|| panic!("no status for {key}"))
            .clone()
    }

    /// Rewrite one field of a repository's status record.
    pub fn set_status_field(&self, name: &str, field: &str, value: serde_json::Value) {
        let mut st = self.status();
        let key = self.repo(name).to_string_lossy().into_owned();
        st[&key][field] = value;
        std::fs::write(
            &self.status_file,
            serde_json::to_string_pretty(&st).unwrap(),
        )
        .unwrap();
    }
}

/// Give a repository made by a fixture the remote a replica's repository
/// has (grok-pull's `_grokmirror`), so grok-fsck treats it as mirrored (it
/// asks for re-clones only of repositories with a remote).
pub fn as_mirrored(repo: &Path) -> &Path {
    git(
        Some(repo),
        &[
            "remote",
            "add",
            "--mirror=fetch",
            "_grokmirror",
            "git://origin.invalid/mirrored.git",
        ],
    );
    repo
}

/// Write `<top>/manifest.js.gz` from what is on disk (our grok-manifest).
pub fn write_manifest(top: &Path) {
    super::run_ok(
        grok("grok-manifest")
            .arg("-m")
            .arg(top.join("manifest.js.gz"))
            .arg("-t")
            .arg(top),
    );
}

/// Run a grok-fsck (ours or the reference's, as `program`) verbosely with
/// `config` and extra flags.
pub fn fsck_with(mut program: Command, config: &Path, args: &[&str]) -> Output {
    run(program.arg("-v").arg("-c").arg(config).args(args))
}

/// Today's local date as the status file writes it.
pub fn today() -> String {
    let out = Command::new("date").arg("+%F").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git count-objects -v` as a map.
pub fn count_objects(repo: &Path) -> HashMap<String, u64> {
    git(Some(repo), &["count-objects", "-v"])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Disk use of objects (KiB), as count-objects reports it.
pub fn object_kib(repo: &Path) -> u64 {
    let c = count_objects(repo);
    c["size"] + c["size-pack"]
}

/// Make every object of `repo` loose (unpack and remove all packs).
pub fn explode(repo: &Path) {
    let pack_dir = repo.join("objects/pack");
    let packs: Vec<PathBuf> = std::fs::read_dir(&pack_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    for pack in packs {
        let data = std::fs::read(&pack).unwrap();
        for ext in ["pack", "idx", "rev", "bitmap"] {
            let _ = std::fs::remove_file(pack.with_extension(ext));
        }
        super::git_stdin(Some(repo), &["unpack-objects", "-q"], &data);
    }
    // A multi-pack index (and its bitmap) would name the packs just removed.
    for entry in std::fs::read_dir(&pack_dir).unwrap().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("multi-pack-index")
        {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}

/// The loose-object file of `oid`.
pub fn loose_path(repo: &Path, oid: &str) -> PathBuf {
    repo.join("objects").join(&oid[..2]).join(&oid[2..])
}

/// Set a file's modification time `days` days into the past.
pub fn age(path: &Path, days: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    // Explicit times need ownership, not write permission (loose objects
    // are read-only).
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.set_modified(when).unwrap();
}

/// Age every loose object of `repo` by `days` days.
pub fn age_loose_objects(repo: &Path, days: u64) {
    for fan in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
        let name = fan.file_name().to_string_lossy().into_owned();
        if name.len() != 2 {
            continue;
        }
        for obj in std::fs::read_dir(fan.path()).unwrap().flatten() {
            age(&obj.path(), days);
        }
    }
}

/// Names of the pack files of `repo`.
pub fn packs(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pack"))
        .collect();
    v.sort();
    v
}

/// Whether git considers `oid` present in `repo` (alternates included).
pub fn has_object(repo: &Path, oid: &str) -> bool {
    run(super::git_cmd(Some(repo)).args(["cat-file", "-e", oid]))
        .status
        .success()
}

/// `git fsck` of a repo passes without complaints.
pub fn fsck_clean(repo: &Path) -> bool {
    let out = run(super::git_cmd(Some(repo)).args(["fsck", "--no-dangling", "--no-progress"]));
    out.status.success()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether `repo` has a commit-graph, whole (git < 2.27) or as a split
/// chain.
pub fn has_commit_graph(repo: &Path) -> bool {
    repo.join("objects/info/commit-graph").exists()
        || repo
            .join("objects/info/commit-graphs/commit-graph-chain")
            .exists()
}
