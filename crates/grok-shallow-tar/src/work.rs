//! Doing it: list a repository's branches, make the shallow clone of each
//! one due, pack it into a tarball beside the old ones, write its sidecar,
//! move the `latest` links, then prune.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use grokmirror::git::{self, Git};
use grokmirror::tree::{self, fsutil, Dir, Tree};
use tracing::{debug, error, info, warn};

use crate::plan::{self, Branch};
use crate::Settings;

/// The prefix of the temporary clone directories under the output directory.
pub const TEMP_PREFIX: &str = ".shallowtar-";
/// Temporary clone directories older than this are swept by the next run.
pub const TEMP_MAX_AGE: Duration = Duration::from_secs(86_400);
/// The most branches read from one repository.
pub const MAX_BRANCHES_LISTED: usize = 100_000;

/// Why a repository or a branch could not be published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest key is refused.
    #[error(
        "manifest entry {key} is refused: {reason}; fix the manifest (grok-manifest rebuilds it)"
    )]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The manifest names a repository that is not on disk.
    #[error("{}: not a bare git repository; regenerate the manifest with grok-manifest or fix --branches", .0.display())]
    NotARepo(PathBuf),
    /// git failed.
    #[error("{what}: {source}")]
    Git {
        /// What was being done.
        what: String,
        /// What failed.
        source: git::Error,
    },
    /// tar could not be run or failed.
    #[error("cannot pack {}: {detail}; install GNU tar or check the output directory", .path.display())]
    Tar {
        /// The tarball being written.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A directory of the output tree is unusable.
    #[error("{0}; check the output directory")]
    Tree(#[from] tree::Error),
    /// Writing a file failed.
    #[error("cannot write {}: {source}; check the space and permissions of the output directory", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How the branches of a run ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// New tarballs made.
    pub made: usize,
    /// Branches whose tarball was already of their tip.
    pub current: usize,
    /// Branches or repositories that failed.
    pub failed: usize,
}

/// The branches of the repository at `repo` (an I/O path), bounded.
pub fn list_branches(git: &Git, repo: &Path, shown: &Path) -> Result<Vec<Branch>, Error> {
    let out = git
        .run_ok(
            Some(repo),
            [
                "for-each-ref",
                "--format=%(refname:strip=2)%00%(objectname)%00%(committerdate:unix)",
                "refs/heads/",
            ],
        )
        .map_err(|source| Error::Git {
            what: format!("cannot list the branches of {}", shown.display()),
            source,
        })?;
    let text = out.stdout_str();
    let mut branches = Vec::new();
    for line in text.lines().take(MAX_BRANCHES_LISTED) {
        let mut parts = line.split('\0');
        let (Some(name), Some(tip), Some(time)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        // A branch that is not a commit (committerdate empty) has no tree
        // to publish.
        let Ok(time) = time.parse::<i64>() else {
            continue;
        };
        branches.push(Branch {
            name: name.to_string(),
            tip: tip.to_string(),
            time,
        });
    }
    Ok(branches)
}

/// Publish every due branch of the repository `key`; count into `summary`.
pub fn publish_repo(
    settings: &Settings,
    git: &Git,
    tree: &Tree,
    out: &Dir,
    key: &str,
    summary: &mut Summary,
) {
    if let Err(e) = publish_repo_inner(settings, git, tree, out, key, summary) {
        error!("{e}");
        summary.failed += 1;
    }
}

fn publish_repo_inner(
    settings: &Settings,
    git: &Git,
    tree: &Tree,
    out: &Dir,
    raw: &str,
    summary: &mut Summary,
) -> Result<(), Error> {
    let key = tree.key(raw).map_err(|reason| Error::BadKey {
        key: raw.to_string(),
        reason,
    })?;
    let shown = tree.path_of(&key);
    let parent = tree
        .parent_of(&key, false)
        .map_err(|_| Error::NotARepo(shown.clone()))?;
    let repo = parent
        .open_dir(key.name())
        .map_err(|_| Error::NotARepo(shown.clone()))?;
    if !repo.looks_like_bare_repo() {
        return Err(Error::NotARepo(shown));
    }
    let branches = list_branches(git, &repo.io_path(), &shown)?;
    let now = chrono::Utc::now().timestamp();
    let chosen = plan::choose(
        key.as_str(),
        &branches,
        &settings.specs,
        now,
        settings.max_ref_age,
        settings.max_branches,
    );
    for (file, names) in &chosen.collisions {
        error!(
            "CRITICAL: {}: branches {} all want the name {file}; none of them is published, rename one",
            key.as_str(),
            names.join(", ")
        );
        summary.failed += 1;
    }
    if chosen.publish.is_empty() {
        debug!("{}: no branch to publish", key.as_str());
        return Ok(());
    }
    let dest = out.create_dir_all(key.parent())?;
    for (branch, file_branch) in &chosen.publish {
        if grokmirror::stop::requested().is_some() {
            return Ok(());
        }
        let job = BranchJob {
            settings,
            git,
            key: key.as_str(),
            repo: &repo,
            out,
            dest: &dest,
            branch,
            stem: plan::stem(&plan::repo_stem(key.as_str()), file_branch),
        };
        match job.publish() {
            Ok(true) => summary.made += 1,
            Ok(false) => summary.current += 1,
            Err(e) => {
                error!("{}: branch {}: {e}", key.as_str(), branch.name);
                summary.failed += 1;
            }
        }
    }
    Ok(())
}

/// One branch of one repository.
struct BranchJob<'a> {
    settings: &'a Settings,
    git: &'a Git,
    key: &'a str,
    repo: &'a Dir,
    out: &'a Dir,
    dest: &'a Dir,
    branch: &'a Branch,
    stem: String,
}

impl BranchJob<'_> {
    /// Make the tarball if its tip has none; whether one was made.
    fn publish(&self) -> Result<bool, Error> {
        let names = utf8_names(self.dest)?;
        if let Some(have) = plan::existing_for_tip(&self.stem, &self.branch.tip, &names) {
            debug!(
                "{}: {} is current",
                self.key,
                self.dest.shown_join(have).display()
            );
            // A run killed between the tarball and the links left them
            // behind; catch up without rewriting anything.
            let have = have.to_string();
            self.point_links(&have)?;
            return Ok(false);
        }
        let tmp_name = format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let tmp = self.out.create_dir_all(&tmp_name)?;
        let made = self.build(&tmp);
        drop(tmp);
        if let Err(e) = self.out.remove_tree(OsStr::new(&tmp_name)) {
            warn!(
                "cannot remove {}: {e}",
                self.out.shown_join(&tmp_name).display()
            );
        }
        let name = made?;
        self.point_links(&name)?;
        self.prune(&name)?;
        Ok(true)
    }

    /// Clone into `tmp`, pack, write the sidecar; the tarball's name.
    fn build(&self, tmp: &Dir) -> Result<String, Error> {
        let top = plan::repo_stem(self.key);
        let source = format!("file://{}", self.repo.io_path().display());
        let depth = self.settings.depth.to_string();
        let clone = tmp.io_path().join(&top);
        let git_err = |what: &str| {
            let what = format!("{what} of {}", self.repo.shown().display());
            move |source| Error::Git { what, source }
        };
        let mut args: Vec<&OsStr> = vec![
            "clone".as_ref(),
            "--quiet".as_ref(),
            "--no-checkout".as_ref(),
            "--no-tags".as_ref(),
            // No template: no sample hooks shipped to every CI node.
            "--template=".as_ref(),
            "--single-branch".as_ref(),
            "--depth".as_ref(),
            depth.as_ref(),
            "--branch".as_ref(),
        ];
        args.push(self.branch.name.as_ref());
        args.push("--".as_ref());
        args.push(source.as_ref());
        args.push(clone.as_os_str());
        self.git
            .run_ok(None, args)
            .map_err(git_err("cannot make a shallow clone"))?;
        let head = self
            .git
            .run_ok(
                Some(&clone.join(".git")),
                ["show", "-s", "--format=%H %ct", "HEAD^{commit}"],
            )
            .map_err(git_err("cannot read the tip of the clone"))?
            .stdout_str();
        // The tip cloned, which is the listed one unless the branch moved
        // meanwhile: the name and the timestamps follow what is inside.
        let (tip, time) = head.trim().split_once(' ').unwrap_or((head.trim(), ""));
        let (tip, time) = (tip.to_string(), time.parse().unwrap_or(self.branch.time));
        let url = format!("{}{}", self.settings.url_base, self.key);
        let gitdir = clone.join(".git");
        for (k, v) in [
            ("remote.origin.url", url.as_str()),
            ("remote.origin.tagOpt", "--no-tags"),
        ] {
            self.git
                .run_ok(Some(&gitdir), ["config", k, v])
                .map_err(git_err("cannot configure the clone"))?;
        }
        let now = chrono::Utc::now();
        let created = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let notes = crate::notes::Notes {
            url: &url,
            branch: &self.branch.name,
            tip: &tip,
            created: &created,
            depth: self.settings.depth,
        };
        for (file, text) in [
            ("description", notes.description()),
            ("shallow-tar.readme", notes.readme()),
        ] {
            let path = gitdir.join(file);
            std::fs::write(&path, text).map_err(|source| Error::Write {
                path: tmp.shown_join(&top).join(".git").join(file),
                source,
            })?;
        }
        let name = plan::dated_name(&self.stem, &now.format("%Y%m%d").to_string(), &tip);
        let (size, sha256) = self.pack(tmp, &top, &name, time)?;
        let sidecar = serde_json::json!({
            "repo": self.key,
            "branch": self.branch.name,
            "tip": tip,
            "created": created,
            "depth": self.settings.depth,
            "size": size,
            "sha256": sha256,
            "tarball": name,
        });
        let mut text = serde_json::to_string_pretty(&sidecar).unwrap_or_default();
        text.push('\n');
        let json = plan::sidecar_name(&name);
        fsutil::write_atomic(&self.dest.io_path().join(&json), text.as_bytes()).map_err(
            |source| Error::Write {
                path: self.dest.shown_join(&json),
                source,
            },
        )?;
        info!(
            "{}: published {} ({size} bytes)",
            self.key,
            self.dest.shown_join(&name).display()
        );
        Ok(name)
    }

    /// `tar` the clone `top` in `tmp` into `name` atomically, every entry
    /// stamped with the tip's commit time `time`; its size and SHA-256.
    fn pack(&self, tmp: &Dir, top: &str, name: &str, time: i64) -> Result<(u64, String), Error> {
        let shown = self.dest.shown_join(name);
        let tar_err = |detail: String| Error::Tar {
            path: shown.clone(),
            detail,
        };
        let mut child = Command::new("tar")
            .arg("--sort=name")
            .arg("--owner=0")
            .arg("--group=0")
            .arg("--numeric-owner")
            .arg(format!("--mtime=@{time}"))
            .arg("-C")
            .arg(tmp.io_path())
            .arg("-cf")
            .arg("-")
            .arg("--")
            .arg(top)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| tar_err(format!("cannot run tar: {e}")))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text);
            String::from_utf8_lossy(&text).trim().to_string()
        });
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut size = 0u64;
        let written = fsutil::write_atomic_with(&self.dest.io_path().join(name), |file| {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                if grokmirror::stop::requested().is_some() {
                    // Asked to stop: no tarball, the temp file goes.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::io::Error::other(
                        "stopped before the tarball was complete",
                    ));
                }
                let n = stdout.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                file.write_all(&buf[..n])?;
                size += n as u64;
            }
            let status = child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!("tar exited with {status}")));
            }
            Ok(())
        });
        let said = errors.join().unwrap_or_default();
        written.map_err(|e| {
            if said.is_empty() {
                tar_err(e.to_string())
            } else {
                tar_err(format!("{e}: {said}"))
            }
        })?;
        Ok((size, hex(hash.finish().as_ref())))
    }

    /// Move `latest` (and its sidecar) to `name`, unless it names it already.
    fn point_links(&self, name: &str) -> Result<(), Error> {
        let latest = plan::latest_name(&self.stem);
        point_link(self.dest, &latest, name)?;
        point_link(
            self.dest,
            &plan::sidecar_name(&latest),
            &plan::sidecar_name(name),
        )
    }

    /// Remove the dated tarballs (and sidecars) beyond the current one and
    /// the one before it.
    fn prune(&self, current: &str) -> Result<(), Error> {
        let names = utf8_names(self.dest)?;
        let with_mtime: Vec<(String, i64)> = names
            .into_iter()
            .filter(|n| plan::parse_dated(&self.stem, n).is_some())
            .map(|n| {
                let mtime = std::fs::symlink_metadata(self.dest.io_path().join(&n))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(0);
                (n, mtime)
            })
            .collect();
        for old in plan::to_prune(&self.stem, current, &with_mtime) {
            for file in [plan::sidecar_name(&old), old] {
                self.dest.remove_file(OsStr::new(&file))?;
                info!(
                    "{}: removed {}",
                    self.key,
                    self.dest.shown_join(&file).display()
                );
            }
        }
        Ok(())
    }
}

/// Make `link` in `dir` point at `target` by a rename, so a reader sees the
/// old link or the new one; nothing is touched when it points there.
fn point_link(dir: &Dir, link: &str, target: &str) -> Result<(), Error> {
    let at = dir.io_path().join(link);
    if std::fs::read_link(&at).is_ok_and(|t| t == Path::new(target)) {
        return Ok(());
    }
    let tmp = format!(".{link}.tmp-{}", std::process::id());
    let tmp = OsStr::new(&tmp);
    dir.remove_file(tmp)?;
    dir.symlink(Path::new(target), tmp)?;
    if dir.kind_of(link)?.is_some() {
        dir.exchange(tmp, dir, OsStr::new(link))?;
        dir.remove_file(tmp)?;
    } else {
        dir.rename_new(tmp, dir, OsStr::new(link))?;
    }
    Ok(())
}

/// The names in `dir` that are UTF-8 (ours all are).
fn utf8_names(dir: &Dir) -> Result<Vec<String>, Error> {
    Ok(dir
        .names()?
        .into_iter()
        .filter_map(|n| String::from_utf8(n).ok())
        .collect())
}

/// Remove the temporary clone directories a killed run left in `out` more
/// than [`TEMP_MAX_AGE`] ago; how many.
pub fn sweep_temps(out: &Dir) -> usize {
    let Ok(names) = utf8_names(out) else {
        return 0;
    };
    let mut removed = 0;
    for name in names.iter().filter(|n| n.starts_with(TEMP_PREFIX)) {
        let old = std::fs::symlink_metadata(out.io_path().join(name))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > TEMP_MAX_AGE);
        if old {
            match out.remove_tree(OsStr::new(name)) {
                Ok(()) => removed += 1,
                Err(e) => warn!("cannot remove {}: {e}", out.shown_join(name).display()),
            }
        }
    }
    removed
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
