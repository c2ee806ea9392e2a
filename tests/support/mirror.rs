//! An origin and a replica for grok-pull tests: origin repositories built
//! in a temp dir, their manifest made by our grok-manifest (or the
//! reference's), replica configs, and the checks that a replica repository
//! equals its origin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::fixture;
use super::{git, git_cmd, grok, oracle, run, show_ref};

/// The origin side: `root/` holds the repositories (`root` is also the
/// top level its manifest is made for).
pub struct Origin {
    /// Top level of the origin's repositories.
    pub root: PathBuf,
    /// The manifest file (gzip), inside `root` so HTTP can serve it.
    pub manifest: PathBuf,
}

impl Origin {
    /// An empty origin under `dir/origin`.
    pub fn new(dir: &Path) -> Origin {
        let root = dir.join("origin");
        std::fs::create_dir_all(&root).unwrap();
        Origin {
            manifest: root.join("manifest.js.gz"),
            root,
        }
    }

    /// The origin as a `[remote] site` of plain local paths.
    pub fn local_site(&self) -> String {
        self.root.display().to_string()
    }

    /// The manifest as a `file://` `[remote] manifest`.
    pub fn file_manifest_url(&self) -> String {
        format!("file://{}", self.manifest.display())
    }

    /// Full path of a repository.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key.trim_start_matches('/'))
    }

    /// A small project at `key`, its commits dated from `start`.
    pub fn project(&self, key: &str, commits: usize, start: i64) -> PathBuf {
        fixture::project(&self.path(key), commits, start)
    }

    /// Set description and owner of an origin repository.
    pub fn describe(&self, key: &str, description: &str, owner: Option<&str>) {
        let p = self.path(key);
        std::fs::write(p.join("description"), format!("{description}\n")).unwrap();
        if let Some(o) = owner {
            git(Some(&p), &["config", "gitweb.owner", o]);
        }
    }

    /// (Re)generate the manifest with our grok-manifest (full walk).
    pub fn manifest(&self) {
        super::run_ok(
            grok("grok-manifest")
                .args(["-m"])
                .arg(&self.manifest)
                .arg("-t")
                .arg(&self.root),
        );
    }

    /// Update the manifest for some repositories, as a post-receive hook
    /// would.
    pub fn manifest_hook(&self, keys: &[&str]) {
        let mut cmd = grok("grok-manifest");
        cmd.arg("-m").arg(&self.manifest).arg("-t").arg(&self.root);
        for k in keys {
            cmd.arg(self.path(k));
        }
        super::run_ok(&mut cmd);
    }

    /// (Re)generate the manifest with the reference grok-manifest.
    pub fn manifest_by_oracle(&self) {
        super::run_ok(
            oracle("grok-manifest")
                .args(["-m"])
                .arg(&self.manifest)
                .arg("-t")
                .arg(&self.root),
        );
    }

    /// Bump the manifest's mtime by `secs` (HTTP dates have one-second
    /// resolution, so tests that change it within the same second say so).
    pub fn age_manifest(&self, secs: i64) {
        bump_mtime(&self.manifest, secs);
    }
}

/// Set a file's mtime to `secs` after the Unix epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

/// Move a file's mtime by `secs` relative to now.
pub fn bump_mtime(path: &Path, secs: i64) {
    let when = std::time::SystemTime::now()
        .checked_add(std::time::Duration::from_secs(secs.unsigned_abs()))
        .unwrap();
    let when = if secs < 0 {
        std::time::SystemTime::now() - std::time::Duration::from_secs(secs.unsigned_abs())
    } else {
        when
    };
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(when).unwrap();
}

/// A replica config file.
pub struct Replica {
    /// The replica's top level.
    pub top: PathBuf,
    /// Its config file.
    pub config: PathBuf,
}

impl Replica {
    /// Write a config for a replica under `dir/<name>` pulling `manifest`
    /// (a URL) with repositories at `site`; `pull_extra` is appended to
    /// `[pull]`, `remote_extra` to `[remote]`.
    pub fn new(dir: &Path, name: &str, site: &str, manifest: &str, pull_extra: &str) -> Replica {
        Replica::with_remote(dir, name, site, manifest, pull_extra, "")
    }

    /// Like [`Replica::new`], with more `[remote]` options.
    pub fn with_remote(
        dir: &Path,
        name: &str,
        site: &str,
        manifest: &str,
        pull_extra: &str,
        remote_extra: &str,
    ) -> Replica {
        let top = dir.join(name);
        std::fs::create_dir_all(&top).unwrap();
        let top = std::fs::canonicalize(&top).unwrap();
        let config = dir.join(format!("{name}.conf"));
        let text = format!(
            "[core]\ntoplevel = {top}\nlog = {dir}/{name}.log\n\n[remote]\nsite = {site}\nmanifest = {manifest}\n{remote_extra}\n\n[pull]\npull_threads = 2\nprojectslist = ${{core:toplevel}}/projects.list\n{pull_extra}\n",
            top = top.display(),
            dir = dir.display(),
        );
        std::fs::write(&config, text).unwrap();
        Replica { top, config }
    }

    /// Full path of a replica repository.
    pub fn path(&self, key: &str) -> PathBuf {
        self.top.join(key.trim_start_matches('/'))
    }

    /// The local manifest.
    pub fn manifest(&self) -> PathBuf {
        self.top.join("manifest.js.gz")
    }

    /// Run our grok-pull with extra flags.
    pub fn pull(&self, flags: &[&str]) -> Output {
        let mut cmd = grok("grok-pull");
        no_proxy(&mut cmd);
        cmd.arg("-v").args(flags).arg("-c").arg(&self.config);
        run(&mut cmd)
    }

    /// Run the reference grok-pull with extra flags.
    pub fn pull_oracle(&self, flags: &[&str]) -> Output {
        let mut cmd = oracle("grok-pull");
        no_proxy(&mut cmd);
        cmd.arg("-v").args(flags).arg("-c").arg(&self.config);
        run(&mut cmd)
    }
}

/// Tests only talk to 127.0.0.1: keep proxies from the environment out.
pub fn no_proxy(cmd: &mut Command) {
    for v in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("NO_PROXY", "*");
}

/// stdout and stderr of a run, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The description as the manifest sees it (stripped; None for git's
/// placeholder).
pub fn description(repo: &Path) -> Option<String> {
    let raw = std::fs::read_to_string(repo.join("description")).ok()?;
    let t = raw.trim();
    (!t.is_empty() && !t.contains("edit this file")).then(|| t.to_string())
}

/// `gitweb.owner`, if set.
pub fn owner(repo: &Path) -> Option<String> {
    let out = run(git_cmd(Some(repo)).args(["config", "--get", "gitweb.owner"]));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// HEAD, stripped.
pub fn head(repo: &Path) -> String {
    std::fs::read_to_string(repo.join("HEAD"))
        .unwrap()
        .trim()
        .to_string()
}

/// Assert that the replica repository equals the origin's: refs, HEAD,
/// description, and owner (`default_owner` where the origin has none).
pub fn assert_mirrored(origin: &Path, replica: &Path, default_owner: &str) {
    assert!(replica.is_dir(), "{} was not mirrored", replica.display());
    assert_eq!(
        show_ref(replica),
        show_ref(origin),
        "refs of {}",
        replica.display()
    );
    assert_eq!(head(replica), head(origin), "HEAD of {}", replica.display());
    assert_eq!(
        description(replica),
        description(origin),
        "description of {}",
        replica.display()
    );
    assert_eq!(
        owner(replica),
        Some(owner(origin).unwrap_or_else(|| default_owner.to_string())),
        "owner of {}",
        replica.display()
    );
}

/// Every bare repository under `top` (our walk's rules), as manifest keys.
pub fn repos_under(top: &Path) -> Vec<String> {
    let mut found = Vec::new();
    walk(top, top, &mut found);
    found.sort();
    found
}

fn walk(top: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        if p.join("objects").is_dir() && p.join("refs").is_dir() && p.join("HEAD").is_file() {
            found.push(format!("/{}", p.strip_prefix(top).unwrap().display()));
        } else {
            walk(top, &p, found);
        }
    }
}
