//! The git work on one repository: repack (with reflog expiry, commit-graph,
//! pack-refs and prune around it), prune alone, and `git fsck`; and what
//! happens with their complaints (ignored, logged and reported, kept in
//! `grokmirror.fsck.err`, turned into a re-clone request).
//!
//! The caller holds the repository's lock for all of it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use grokmirror::git::{Git, GitOutput};
use grokmirror::repo::alternates::{AltMap, RepoRole};
use grokmirror::repo::object_counts::RepackLevel;
use grokmirror::repo::repack::{self, Deltas, Precious};
use grokmirror::repo::{FSCK_ERR_FILE, RECLONE_FILE};
use grokmirror::tree::fsutil;
use grokmirror::tree::{self, Dir, Tree};
use tracing::{debug, info, warn};

use crate::plan::reclone::{self, Reclone};
use crate::record::report::Report;
use crate::settings::Settings;

/// How many lines of one complaint go into the log and the report; the
/// rest are in `grokmirror.fsck.err`.
const SHOWN_LINES: usize = 10;

/// A repository as the maintenance works on it: its path, for messages
/// and for the map of who borrows from whom, and its directory handle,
/// through which everything that touches it goes (so a directory of the
/// tree renamed or swapped for a symlink meanwhile cannot redirect a
/// repack, a prune or a file we write).
#[derive(Debug)]
pub struct Repo {
    path: PathBuf,
    dir: Dir,
}

impl Repo {
    /// Open the repository at `path`: below the top level through `tree`
    /// (no symlink on the way), anywhere else (object storage kept outside
    /// the top level, a 1.x lender) by its path.
    pub fn open(tree: &Tree, path: &Path) -> Result<Repo, tree::Error> {
        Ok(Repo {
            path: path.to_path_buf(),
            dir: tree.pin(path)?,
        })
    }

    /// Where it is, for messages and records.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path through its handle, for git and for files in it.
    pub fn io(&self) -> PathBuf {
        self.dir.io_path()
    }

    /// Its handle, for files in it opened without following symlinks.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }
}

/// What a worker needs to work on repositories.
pub struct Maintenance<'a> {
    /// The git runner.
    pub git: &'a Git,
    /// The settings.
    pub settings: &'a Settings,
    /// The report of critical errors.
    pub report: &'a Report,
    /// Who borrows objects from whom.
    pub altmap: &'a AltMap,
    /// Today, for `grokmirror.fsck.err`.
    pub today: NaiveDate,
    /// The top level, repositories below it are opened through it.
    pub tree: &'a Tree,
}

/// Lines of git's output split into the ones `ignore_errors` covers and the
/// ones that matter.
fn split_ignored<'l>(lines: &[&'l str], ignore: &[String]) -> (Vec<&'l str>, Vec<&'l str>) {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| ignore.iter().any(|pat| l.contains(pat.as_str())))
}

impl Maintenance<'_> {
    /// Open the repository at `path` through the handles; a failure is a
    /// critical error in the report (the repository is skipped).
    pub fn open(&self, path: &Path) -> Option<Repo> {
        match Repo::open(self.tree, path) {
            Ok(r) => Some(r),
            Err(e) => {
                self.report.critical(format!("{}: {e}", path.display()));
                None
            }
        }
    }

    pub(super) fn run(&self, repo: &Repo, args: &[String]) -> Option<GitOutput> {
        match self.git.run(Some(&repo.io()), args) {
            Ok(out) => Some(out),
            Err(e) => {
                self.report.critical(format!(
                    "{}: cannot run git {}: {e}",
                    repo.path().display(),
                    args.join(" ")
                ));
                None
            }
        }
    }

    /// Judge what a git command printed. Returns whether it succeeded:
    /// no complaints outside `ignore_errors` and (when `exit_matters`) a
    /// zero exit.
    pub(super) fn judge(
        &self,
        repo: &Repo,
        role: &RepoRole,
        args: &[String],
        out: &GitOutput,
        exit_matters: bool,
        include_stdout: bool,
    ) -> bool {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines: Vec<&str> = Vec::new();
        if include_stdout {
            lines.extend(stdout.lines());
        }
        lines.extend(stderr.lines());
        let (ignored, kept) = split_ignored(&lines, &self.settings.ignore_errors);
        if !ignored.is_empty() {
            debug!(
                "{}: ignored: {}",
                repo.path().display(),
                ignored.join(" / ")
            );
        }
        if !kept.is_empty() {
            self.log_errors(repo, args, &kept);
            self.check_reclone(repo, role, &kept);
            return false;
        }
        if exit_matters && !out.success() {
            if ignored.is_empty() {
                self.report.critical(format!(
                    "{}: git {} exited with code {} and printed nothing",
                    repo.path().display(),
                    args.join(" "),
                    out.code()
                ));
            } else {
                warn!(
                    "{}: git {} exited with code {}; all it said is in ignore_errors",
                    repo.path().display(),
                    args.join(" "),
                    out.code()
                );
            }
            return false;
        }
        true
    }

    /// Log and report a repository's errors and keep them (all of them) in
    /// `grokmirror.fsck.err`.
    fn log_errors(&self, repo: &Repo, args: &[String], lines: &[&str]) {
        let mut block = vec![format!("{} reports errors:", repo.path().display())];
        block.extend(lines.iter().take(SHOWN_LINES).map(|l| format!("\t{l}")));
        if lines.len() > SHOWN_LINES {
            let name = repo
                .path()
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            block.push(format!(
                "\t [ {} more lines skipped ]",
                lines.len() - SHOWN_LINES
            ));
            block.push(format!("\t [ see {name}/{FSCK_ERR_FILE} ]"));
        }
        self.report.critical_block(&block);
        let mut text = format!(
            "# Date: {}\n# Cmd : git {}\n",
            grokmirror::formats::fsck_status::format_date(self.today),
            args.join(" ")
        );
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        if let Err(e) = fsutil::write_atomic(&repo.io().join(FSCK_ERR_FILE), text.as_bytes()) {
            warn!(
                "cannot write {}: {e}",
                repo.path().join(FSCK_ERR_FILE).display()
            );
        }
    }

    /// Ask grok-pull to re-clone the repository when an error matches
    /// `reclone_on_errors`, unless others borrow objects from it (a
    /// re-clone would pull them out from under the borrowers) or it has no
    /// remote to come from (an origin's repository).
    fn check_reclone(&self, repo: &Repo, role: &RepoRole, lines: &[&str]) {
        let patterns = &self.settings.reclone_on_errors;
        let Some(line) = lines
            .iter()
            .find(|l| patterns.iter().any(|p| l.contains(p.as_str())))
        else {
            return;
        };
        let lends = role.lends_objects() || self.altmap.is_borrowed(repo.path());
        let urls = match grokmirror::repo::git_config::remote_urls(&repo.io()) {
            Ok(urls) => Some(urls),
            Err(e) => {
                debug!("{}: {e}", repo.path().display());
                None
            }
        };
        match reclone::decide(lends, urls.as_deref()) {
            Reclone::Request => {}
            Reclone::LendsObjects => {
                self.report
                    .critical("\tused for alternates, not requesting auto-reclone");
                return;
            }
            Reclone::NoRemote => {
                self.report.critical(
                    "\tno remote to re-clone it from (a repository of an origin), \
                     not requesting auto-reclone",
                );
                return;
            }
        }
        request_reclone(
            repo,
            &format!("Requested by grok-fsck due to error: {line}"),
        );
        self.report.critical("\trequested auto-reclone");
    }

    fn set_precious(&self, repo: &Repo, on: bool) -> bool {
        match grokmirror::repo::git_config::set_precious(self.git, &repo.io(), on) {
            Ok(()) => true,
            Err(e) => {
                self.report.critical(format!(
                    "{}: cannot set extensions.preciousObjects={on}: {e}",
                    repo.path().display()
                ));
                false
            }
        }
    }

    /// Repack `repo` at `level` the way its role allows, then write its
    /// commit-graph, pack its refs and prune it where safe. Returns whether
    /// everything went cleanly.
    pub fn repack(&self, repo: &Repo, role: &RepoRole, level: RepackLevel, deltas: Deltas) -> bool {
        let plan = repack::plan(role, level, deltas, &self.settings.policy);
        self.repack_with_plan(repo, role, level, plan)
    }

    /// [`Maintenance::repack`] with a plan made elsewhere (object storage that may
    /// be pruned).
    pub fn repack_with_plan(
        &self,
        repo: &Repo,
        role: &RepoRole,
        level: RepackLevel,
        plan: repack::RepackPlan,
    ) -> bool {
        if plan.chained {
            warn!(
                " warning : {} uses alternates and others use it for alternates",
                repo.path().display()
            );
            warn!("         : objects it drops may be missed further down the chain");
        }
        let was_precious = grokmirror::repo::git_config::is_precious(&repo.io());
        let precious_in_the_end = plan.precious_after || was_precious;
        // Lift preciousObjects while we repack (git refuses `-d` with it),
        // unless precious = always.
        if plan.precious_during != was_precious && !self.set_precious(repo, plan.precious_during) {
            return false;
        }
        let plan = self.freshen_for_grace(repo, plan);
        let ok = self.repack_steps(repo, role, level, &plan);
        if precious_in_the_end != plan.precious_during {
            self.set_precious(repo, precious_in_the_end);
        }
        ok
    }

    /// Before a repack that writes a cruft pack, count the grace of what
    /// may have been reachable until now from now; when that cannot be
    /// done, keep every unreachable object this time.
    fn freshen_for_grace(&self, repo: &Repo, plan: repack::RepackPlan) -> repack::RepackPlan {
        if !plan.freshen_first {
            return plan;
        }
        match grokmirror::repo::grace::freshen(&repo.io()) {
            Ok(n) => {
                debug!(
                    "{}: freshened {n} packs and loose objects",
                    repo.path().display()
                );
                plan
            }
            Err(e) => {
                warn!(
                    "{}: cannot freshen its objects for consumer_grace ({e}); keeping every unreachable object this time",
                    repo.path().display()
                );
                plan.keeping_everything()
            }
        }
    }

    fn repack_steps(
        &self,
        repo: &Repo,
        role: &RepoRole,
        level: RepackLevel,
        plan: &repack::RepackPlan,
    ) -> bool {
        if repo.io().join("logs").is_dir() {
            info!("   reflog: expiring reflogs");
            let args = strings(&["reflog", "expire", "--all", "--stale-fix"]);
            if let Some(out) = self.run(repo, &args) {
                if !out.success() {
                    debug!(
                        "{}: reflog expire: {}",
                        repo.path().display(),
                        out.stderr_str()
                    );
                }
            }
        }
        if plan.drop_commit_graph {
            match repack::drop_commit_graph(&repo.io()) {
                Ok(removed) if !removed.is_empty() => {
                    info!("    graph: removing the commit-graph (objects are borrowed)")
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(
                        "{}: cannot remove its commit-graph: {e}",
                        repo.path().display()
                    );
                }
            }
        }
        if self.only_borrowed_objects_left(repo, role, level) {
            info!("   repack: nothing of its own left (all of it is in its object storage); nothing to repack");
        } else if !self.run_repack(repo, role, level, plan) {
            return false;
        }
        if plan.commit_graph {
            self.write_commit_graph(repo, plan.graph_write);
        }
        let mut refs_args = strings(&["pack-refs"]);
        if plan.pack_all_refs {
            info!(" packrefs: packing all refs");
            refs_args.push("--all".into());
        } else {
            info!(" packrefs: packing refs");
        }
        let Some(out) = self.run(repo, &refs_args) else {
            return false;
        };
        if only_refs_changed_meanwhile(&out.stderr_str()) {
            // A push (which takes no grokmirror lock) moved or deleted a
            // ref while it was being packed: git keeps the refs right and
            // says so; the loose ref is packed next time.
            info!(" packrefs: a ref changed while packing (a push?); packed next time");
        } else if !self.judge(repo, role, &refs_args, &out, true, false) {
            return false;
        }
        if plan.prune {
            return self.prune_now(repo, role);
        }
        true
    }

    /// `git repack` as `plan` says (cruft packs kept out of a geometric
    /// one). Returns whether it went cleanly.
    fn run_repack(
        &self,
        repo: &Repo,
        role: &RepoRole,
        level: RepackLevel,
        plan: &repack::RepackPlan,
    ) -> bool {
        match (level, plan.recomputes_deltas) {
            (RepackLevel::Full, true) => {
                // Why (asked for, or poor stored deltas) is on its "queued" line.
                info!("   repack: full repack, recomputing deltas")
            }
            (RepackLevel::Full, false) => info!("   repack: full repack, reusing deltas"),
            _ if plan.keep_cruft_packs => {
                info!(
                    "   repack: geometric repack (only the packs out of progression are rolled up)"
                )
            }
            _ => {}
        }
        let mut args = vec!["repack".to_string()];
        args.extend(plan.args.iter().cloned());
        if plan.keep_cruft_packs {
            let cruft = grokmirror::repo::grace::cruft_packs(&repo.io());
            args.extend(cruft.iter().map(|p| format!("--keep-pack={p}")));
        }
        info!("   repack: repacking with \"{}\"", args[1..].join(" "));
        args.push("-q".into());
        match self.run(repo, &args) {
            Some(out) => self.judge(repo, role, &args, &out, true, false),
            None => false,
        }
    }

    /// For a member of object storage: drop its packs that are the object
    /// storage's own files (hard-linked when the object storage was seeded
    /// from it), and say whether nothing else is left, so a repack (which
    /// would walk the whole history to drop what the object storage holds)
    /// has nothing to do.
    /// At a full repack (the one that follows joining object storage),
    /// also the packs whose every object the object storage holds, and the
    /// loose objects it holds (`git prune-packed`).
    fn only_borrowed_objects_left(&self, repo: &Repo, role: &RepoRole, level: RepackLevel) -> bool {
        let RepoRole::ObjstoreMember { objstore } = role else {
            return false;
        };
        match grokmirror::objstore::drop_packs_linked_into(&repo.io(), objstore) {
            Ok(0) => {}
            Ok(n) => info!("   repack: dropped {n} pack(s) that are also its object storage's"),
            Err(e) => {
                warn!("{}: {e}", repo.path().display());
                return false;
            }
        }
        if level != RepackLevel::Full {
            return false;
        }
        match grokmirror::objstore::drop_packs_contained_in(self.git, &repo.io(), objstore) {
            Ok(0) => {}
            Ok(n) => {
                info!("   repack: dropped {n} pack(s) whose every object its object storage holds")
            }
            Err(e) => {
                warn!("{}: {e}", repo.path().display());
                return false;
            }
        }
        if let Some(out) = self.run(repo, &strings(&["prune-packed", "-q"])) {
            if !out.success() {
                debug!(
                    "{}: prune-packed: {}",
                    repo.path().display(),
                    out.stderr_str()
                );
            }
        }
        grokmirror::repo::object_counts::scan(&repo.io())
            .is_ok_and(|c| c.packs == 0 && c.count == 0)
    }

    /// `git prune --expire=yesterday` (objects younger than a day are left
    /// alone: a push or fetch may be about to reference them). With a
    /// consumer grace the loose objects are freshened first, so only
    /// garbage (temporary files of interrupted work) goes: unreachable
    /// objects leave through cruft packs, once their grace has passed.
    fn prune_now(&self, repo: &Repo, role: &RepoRole) -> bool {
        if self.settings.policy.unreachable != grokmirror::repo::grace::Unreachable::GrokmirrorRules
        {
            if let Err(e) = grokmirror::repo::grace::freshen(&repo.io()) {
                warn!(
                    "{}: cannot freshen its objects for consumer_grace ({e}); not pruning",
                    repo.path().display()
                );
                return true;
            }
        }
        info!("    prune: pruning");
        let precious = grokmirror::repo::git_config::is_precious(&repo.io());
        if precious && !self.set_precious(repo, false) {
            return false;
        }
        let args = strings(&["prune", "--expire=yesterday"]);
        let ok = match self.run(repo, &args) {
            Some(out) => self.judge(repo, role, &args, &out, true, false),
            None => false,
        };
        if precious {
            self.set_precious(repo, true);
        }
        ok
    }

    /// Prune a repository whose object store holds garbage, where pruning
    /// is allowed and safe for its role.
    pub fn prune_if_safe(&self, repo: &Repo, role: &RepoRole) -> bool {
        let policy = &self.settings.policy;
        if !policy.prune || policy.precious == Precious::Always || !repack::prune_is_safe(role) {
            return false;
        }
        if self.altmap.is_borrowed(repo.path()) {
            return false;
        }
        self.prune_now(repo, role)
    }
}

/// Write `grokmirror.reclone` (unless a request is already there) for
/// grok-pull to act on.
pub fn request_reclone(repo: &Repo, reason: &str) {
    let file = repo.io().join(RECLONE_FILE);
    if file.exists() {
        debug!("{} already asks for a re-clone", repo.path().display());
        return;
    }
    if let Err(e) = fsutil::write_atomic(&file, reason.as_bytes()) {
        warn!(
            "cannot write {}: {e}",
            repo.path().join(RECLONE_FILE).display()
        );
    }
}

pub(super) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Make `FETCH_HEAD` a symlink to `/dev/null`: nothing reads it, and git
/// would otherwise rewrite it (with every ref) on each fetch.
pub fn fix_fetch_head(repo: &Repo) {
    let io = repo.io();
    let fetch_head = io.join("FETCH_HEAD");
    if std::fs::symlink_metadata(&fetch_head).is_ok_and(|m| m.file_type().is_symlink()) {
        return;
    }
    debug!(
        "{}: pointing FETCH_HEAD at /dev/null",
        repo.path().display()
    );
    // Build the link beside it and rename it over, so FETCH_HEAD never
    // goes missing.
    let tmp = io.join(".FETCH_HEAD.grok-fsck");
    let _ = std::fs::remove_file(&tmp);
    let made = std::os::unix::fs::symlink(OsString::from("/dev/null"), &tmp)
        .and_then(|_| std::fs::rename(&tmp, &fetch_head));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        warn!(
            "cannot point {} at /dev/null: {e}",
            repo.path().join("FETCH_HEAD").display()
        );
    }
}

/// Whether all `git pack-refs` complained about is refs another writer
/// changed or deleted while it ran (it then leaves those loose refs alone):
/// `error: cannot lock ref '<ref>': unable to resolve reference '<ref>'` or
/// `... is at <old> but expected <new>`.
fn only_refs_changed_meanwhile(stderr: &str) -> bool {
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|l| {
            l.starts_with("error: cannot lock ref '")
                && (l.contains("': unable to resolve reference '") || l.contains(" but expected "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_matching_is_by_substring_and_skips_blank_lines() {
        let lines = vec![
            "notice: HEAD points to an unborn branch (main)",
            "",
            "missing blob 45b9",
            "warning in tag 1: missingTaggerEntry: invalid format",
        ];
        let ignore = vec!["notice:".to_string(), "missingTaggerEntry".to_string()];
        let (ignored, kept) = split_ignored(&lines, &ignore);
        assert_eq!(ignored.len(), 2);
        assert_eq!(kept, vec!["missing blob 45b9"]);
        // No patterns: nothing is ignored (an empty pattern would match
        // everything).
        let (ignored, kept) = split_ignored(&lines, &[]);
        assert!(ignored.is_empty());
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn fetch_head_becomes_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("FETCH_HEAD"), "abc\n").unwrap();
        let tree = Tree::open(dir.path(), grokmirror::tree::Reserved::none()).unwrap();
        let repo = Repo::open(&tree, dir.path()).unwrap();
        fix_fetch_head(&repo);
        assert_eq!(
            std::fs::read_link(dir.path().join("FETCH_HEAD")).unwrap(),
            Path::new("/dev/null")
        );
        fix_fetch_head(&repo);
        assert!(!dir.path().join(".FETCH_HEAD.grok-fsck").exists());
    }

    #[test]
    fn refs_changed_under_pack_refs_are_not_errors() {
        assert!(only_refs_changed_meanwhile(
            "error: cannot lock ref 'refs/heads/topic32': unable to resolve reference 'refs/heads/topic32'\n"
        ));
        assert!(only_refs_changed_meanwhile(
            "error: cannot lock ref 'refs/heads/a': is at 1111 but expected 2222\n"
        ));
        assert!(!only_refs_changed_meanwhile(""));
        assert!(!only_refs_changed_meanwhile(
            "error: cannot lock ref 'refs/heads/a': unable to resolve reference 'refs/heads/a'\nfatal: bad object HEAD\n"
        ));
        assert!(!only_refs_changed_meanwhile(
            "error: cannot lock ref 'refs/heads/a': Unable to create '/x/refs/heads/a.lock': File exists.\n"
        ));
    }
}
