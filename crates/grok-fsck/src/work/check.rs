//! `git fsck` on one repository, and its commit-graph: written after a
//! repack (a split chain where git can), and rebuilt when `git fsck` finds
//! it stale (listing commits the object store no longer holds, which is
//! what a prune leaves behind, not corruption).
//!
//! The caller holds the repository's lock for all of it.

use grokmirror::git::GitOutput;
use grokmirror::repo::alternates::RepoRole;
use grokmirror::repo::repack::{self, GraphWrite};
use tracing::{info, warn};

use super::maintain::{strings, Maintenance, Repo};

impl Maintenance<'_> {
    /// Write the commit-graph of `repo` (turning `core.commitGraph` on).
    pub(super) fn write_commit_graph(&self, repo: &Repo, mode: GraphWrite) -> bool {
        if grokmirror::repo::git_config::config_bool(&repo.io(), "core.commitGraph") != Some(true) {
            let args = strings(&["config", "core.commitgraph", "true"]);
            if let Some(out) = self.run(repo, &args) {
                if !out.success() {
                    warn!(
                        "{}: cannot set core.commitgraph: {}",
                        repo.path().display(),
                        out.stderr_str()
                    );
                }
            }
        }
        let args = repack::commit_graph_args(mode, self.settings.policy.commit_graph_split);
        match (mode, self.settings.policy.commit_graph_split) {
            (GraphWrite::Incremental, true) => {
                info!("    graph: adding a commit-graph layer")
            }
            (GraphWrite::Replace, true) => info!("    graph: rewriting the commit-graph chain"),
            _ => info!("    graph: writing commit-graph"),
        }
        match self.run(repo, &args) {
            Some(out) if out.success() => true,
            Some(out) => {
                warn!(
                    "{}: commit-graph write failed: {}",
                    repo.path().display(),
                    out.stderr_str()
                );
                false
            }
            None => false,
        }
    }

    /// `git fsck` (connectivity only when asked, and always for
    /// object-storage members, whose objects are checked in their object
    /// storage). Returns whether it came out clean. A stale commit-graph
    /// is removed and, where the repository gets one, written anew; it is
    /// logged, not reported.
    pub fn fsck(&self, repo: &Repo, role: &RepoRole, connectivity_only: bool) -> bool {
        let mut args = strings(&["fsck", "--no-progress", "--no-dangling", "--no-reflogs"]);
        let uses_objstore = matches!(role, RepoRole::ObjstoreMember { .. })
            || grokmirror::objstore::objstore_of(&repo.io()).is_some();
        if connectivity_only || uses_objstore {
            args.push("--connectivity-only".into());
            info!("     fsck: checking connectivity");
        } else {
            info!("     fsck: running full checks");
        }
        let Some(out) = self.run(repo, &args) else {
            return false;
        };
        let out = self.set_stale_graph_aside(repo, role, out);
        // git fsck's exit code follows its messages; the messages are what
        // ignore_errors speaks about.
        let clean = self.judge(repo, role, &args, &out, false, true);
        if clean && out.code() < 0 {
            self.report
                .critical(format!("{}: git fsck was killed", repo.path().display()));
            return false;
        }
        clean
    }

    /// When `git fsck` complained about the commit-graph, rebuild it and
    /// return what it said without those lines (the rest is judged as
    /// usual).
    fn set_stale_graph_aside(&self, repo: &Repo, role: &RepoRole, out: GitOutput) -> GitOutput {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let err_lines: Vec<&str> = stderr.lines().collect();
        let out_lines: Vec<&str> = stdout.lines().collect();
        let (stale_err, kept_err) = repack::split_stale_graph_complaints(&err_lines);
        let (stale_out, kept_out) = repack::split_stale_graph_complaints(&out_lines);
        if stale_err.is_empty() && stale_out.is_empty() {
            return out;
        }
        info!(
            "    graph: {}: the commit-graph lists {} commit(s) that are gone (stale, not corrupt); rebuilding it",
            repo.path().display(),
            stale_err.len().max(stale_out.len()).div_ceil(2)
        );
        if let Err(e) = repack::drop_commit_graph(&repo.io()) {
            warn!(
                "{}: cannot remove its stale commit-graph: {e}",
                repo.path().display()
            );
            return out;
        }
        let rebuilt = role.borrows_objects()
            || !self.settings.policy.commit_graph
            || self.write_commit_graph(repo, GraphWrite::Replace);
        if !rebuilt {
            return out;
        }
        let join = |lines: Vec<&str>| {
            let mut text = lines.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            text.into_bytes()
        };
        let mut status = out.status;
        if kept_err.is_empty() && kept_out.is_empty() {
            use std::os::unix::process::ExitStatusExt;
            status = std::process::ExitStatus::from_raw(0);
        }
        GitOutput {
            status,
            stdout: join(kept_out),
            stderr: join(kept_err),
        }
    }
}
