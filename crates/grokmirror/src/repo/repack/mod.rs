//! Which `git repack` flags a repository gets, from its role among
//! repositories that share objects (see [`RepoRole`]), the repack level and
//! the `[fsck]` settings, and what must happen around the repack
//! (pruning, commit-graph, `preciousObjects`).
//!
//! The rules keep every object another repository may borrow: lenders are
//! repacked with `-k` (unreachable objects kept in the new pack) and never
//! pruned; borrowers repack with `-l`, so only objects their lender
//! already holds are dropped. With a `[fsck] consumer_grace`
//! ([`crate::repo::grace`]), what may be dropped goes into a cruft pack
//! first and leaves the disk only once the grace has passed.
//!
//! What a repack costs follows what changed: on a git that can
//! ([`GEOMETRIC_GIT`]), a quick repack of a repository that borrows
//! nothing is geometric (`--geometric=2`: only the packs that break a
//! doubling progression are rolled together, so a repository pays for its
//! recent pushes, not its whole history) and leaves a multi-pack index with
//! its bitmap; a full repack reuses the deltas the packs already have
//! unless asked to recompute them ([`Deltas::Recompute`]).

mod commit_graph;
pub mod delta_probe;
pub mod leftovers;

pub use commit_graph::{
    drop_commit_graph, split_stale_graph_complaints, write_args as commit_graph_args, GraphWrite,
    SPLIT_GIT,
};

use crate::git::GitVersion;
use crate::repo::alternates::RepoRole;
use crate::repo::grace::Unreachable;
use crate::repo::object_counts::RepackLevel;

/// The first git whose geometric repacks write a multi-pack index and its
/// bitmap reliably enough to serve clones from (upstream grokmirror draws
/// the line here too).
pub const GEOMETRIC_GIT: GitVersion = GitVersion(2, 41, 0);

/// Whether a full repack recomputes deltas (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deltas {
    /// Reuse the deltas the packs have (git still searches for the objects
    /// that have none, and drops a reused delta that would cross delta
    /// islands).
    #[default]
    Reuse,
    /// Recompute every delta: asked for with `grokmirror.repack` or
    /// `--repack-all-full`; it costs CPU in proportion to the whole history.
    Recompute,
}

/// The `[fsck] precious` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precious {
    /// Never set `extensions.preciousObjects`.
    No,
    /// Set it on repositories others borrow from, lifting it only while
    /// grok-fsck itself repacks them.
    #[default]
    Yes,
    /// Keep it on everywhere, even while repacking: nothing is ever
    /// deleted (no `-d`, no prune), so repositories only grow.
    Always,
}

impl Precious {
    /// Parse the setting: `always`, or a configparser boolean.
    pub fn parse(value: &str) -> Option<Precious> {
        if value.trim().eq_ignore_ascii_case("always") {
            return Some(Precious::Always);
        }
        match crate::config::ini::parse_bool(value.trim())? {
            true => Some(Precious::Yes),
            false => Some(Precious::No),
        }
    }
}

/// The settings that shape a repack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepackPolicy {
    /// `[fsck] prune`: prune unreachable objects where that is safe.
    pub prune: bool,
    /// `[fsck] precious`.
    pub precious: Precious,
    /// `[fsck] commitgraph` (and a git new enough to write one).
    pub commit_graph: bool,
    /// `[fsck] extra_repack_flags`, added to every repack.
    pub extra_flags: Vec<String>,
    /// `[fsck] extra_repack_flags_full`, added to full repacks.
    pub extra_full_flags: Vec<String>,
    /// `[fsck] consumer_grace` as it applies to this run and this git.
    pub unreachable: Unreachable,
    /// The git makes geometric repacks with a multi-pack bitmap
    /// ([`GEOMETRIC_GIT`]): quick repacks of repositories that borrow
    /// nothing are geometric.
    pub geometric: bool,
    /// The git writes split commit-graph chains ([`SPLIT_GIT`]).
    pub commit_graph_split: bool,
}

impl RepackPolicy {
    /// This policy as the git of `version` can carry it out (`None`: its
    /// version is unknown, so nothing that needs a newer git is done), with
    /// a line for the log about each thing it does differently because of
    /// that git.
    pub fn fit_to_git(mut self, version: Option<GitVersion>) -> (RepackPolicy, Vec<String>) {
        let mut said = Vec::new();
        let shown = version.map_or("of unknown version".to_string(), |v| v.to_string());
        let at_least = |min: GitVersion| version.is_some_and(|v| v >= min);
        if matches!(self.unreachable, Unreachable::CruftSince(_))
            && !at_least(crate::repo::grace::CRUFT_GIT)
        {
            said.push(format!(
                "git {shown} cannot write cruft packs (2.37+): consumer_grace keeps every unreachable object"
            ));
            self.unreachable = self.unreachable.without_cruft();
        }
        self.geometric = at_least(GEOMETRIC_GIT);
        if !self.geometric {
            said.push(format!(
                "git {shown}: quick repacks pack everything into one pack (geometric repacks with a multi-pack bitmap need 2.41+)"
            ));
        }
        if self.commit_graph && !at_least(GitVersion(2, 18, 0)) {
            said.push(format!(
                "git {shown} is too old to write commit-graphs; not writing them"
            ));
            self.commit_graph = false;
        }
        self.commit_graph_split = self.commit_graph && at_least(SPLIT_GIT);
        if self.commit_graph && !self.commit_graph_split {
            said.push(format!(
                "git {shown} writes no split commit-graphs (2.27+); writing one whole file each time"
            ));
        }
        (self, said)
    }
}

impl Default for RepackPolicy {
    fn default() -> Self {
        RepackPolicy {
            prune: true,
            precious: Precious::Yes,
            commit_graph: true,
            extra_flags: Vec::new(),
            extra_full_flags: Vec::new(),
            unreachable: Unreachable::GrokmirrorRules,
            geometric: false,
            commit_graph_split: false,
        }
    }
}

/// Everything to do to repack one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepackPlan {
    /// Arguments after `git repack` (without `-q`).
    pub args: Vec<String>,
    /// Run `git prune` afterwards.
    pub prune: bool,
    /// Write a commit-graph afterwards.
    pub commit_graph: bool,
    /// Remove a commit-graph left from before (the repository borrows
    /// objects; see [`drop_commit_graph`]).
    pub drop_commit_graph: bool,
    /// `extensions.preciousObjects` while repacking: `true` keeps it on
    /// (precious = always), `false` lifts it if set.
    pub precious_during: bool,
    /// Turn `extensions.preciousObjects` on afterwards.
    pub precious_after: bool,
    /// `git pack-refs --all` rather than plain `pack-refs`.
    pub pack_all_refs: bool,
    /// The repository borrows from another and others borrow from it: a
    /// setup that can lose objects further down (worth a warning).
    pub chained: bool,
    /// Freshen the objects that may have been reachable until now before
    /// repacking ([`crate::repo::grace::freshen`]): the repack writes a
    /// cruft pack whose expiry must count from now, not from when they
    /// were written. Should freshening fail, repack with
    /// [`RepackPlan::keeping_everything`] instead.
    pub freshen_first: bool,
    /// Add `--keep-pack=<name>` for each cruft pack
    /// ([`crate::repo::grace::cruft_packs`]): a geometric repack would
    /// otherwise roll cruft packs into an ordinary one, and their objects
    /// would lose the dates their grace counts from.
    pub keep_cruft_packs: bool,
    /// How the commit-graph is written afterwards.
    pub graph_write: GraphWrite,
    /// Recomputes every delta (`-f`), for the log.
    pub recomputes_deltas: bool,
}

impl RepackPlan {
    /// The same repack, keeping every unreachable object (packed with
    /// `-k`, no cruft pack, no prune): for when the grace cannot be
    /// honoured (freshening failed).
    pub fn keeping_everything(mut self) -> RepackPlan {
        let mut kept = Vec::with_capacity(self.args.len() + 1);
        let mut has_k = false;
        let mut had_cruft = false;
        for a in self.args.drain(..) {
            if a == "--cruft" || a.starts_with("--cruft-expiration=") {
                had_cruft = true;
                continue;
            }
            if a == "-k" {
                has_k = true;
            }
            kept.push(a);
        }
        if let Some(d) = kept.iter().position(|a| a == "-d") {
            if !has_k {
                kept.insert(d, "-k".into());
            }
            // `--cruft` implied `-a`.
            if had_cruft && !kept.iter().any(|a| a == "-a") {
                kept.insert(d, "-a".into());
            }
        }
        self.args = kept;
        self.prune = false;
        self.freshen_first = false;
        self
    }
}

/// Whether pruning `role` can never take an object another repository
/// needs. Object storage is never pruned here: deciding that needs its
/// member list (the object-storage work does that).
pub fn prune_is_safe(role: &RepoRole) -> bool {
    !role.lends_objects()
}

/// Whether a quick repack of `role` is geometric under `policy`: the git
/// can, the repository borrows no objects (a geometric repack cannot drop
/// what a lender holds, which is what a borrower's repack is for), and
/// objects may be deleted at all (`precious = always` repacks only on
/// schedule, keeping every old pack).
pub fn is_geometric(role: &RepoRole, level: RepackLevel, policy: &RepackPolicy) -> bool {
    level == RepackLevel::Quick
        && policy.geometric
        && policy.precious != Precious::Always
        && !role.borrows_objects()
}

/// A geometric quick repack: the new packs and the small ones rolled into
/// one, a multi-pack index over all of them with a bitmap. It never drops an
/// object (unreachable ones leave in full repacks), so nothing is pruned and
/// the commit-graph grows by a layer.
fn geometric_plan(role: &RepoRole, policy: &RepackPolicy) -> RepackPlan {
    let mut args = policy.extra_flags.clone();
    args.extend(
        [
            "--geometric=2",
            "-d",
            "--write-midx",
            "--write-bitmap-index",
        ]
        .map(String::from),
    );
    RepackPlan {
        args,
        prune: false,
        commit_graph: policy.commit_graph,
        drop_commit_graph: false,
        precious_during: false,
        precious_after: policy.precious == Precious::Yes && role.lends_objects(),
        pack_all_refs: false,
        chained: false,
        freshen_first: false,
        keep_cruft_packs: true,
        graph_write: GraphWrite::Incremental,
        recomputes_deltas: false,
    }
}

/// Plan a repack of a repository with `role` at `level`; `deltas` says
/// whether a full repack recomputes them.
pub fn plan(
    role: &RepoRole,
    level: RepackLevel,
    deltas: Deltas,
    policy: &RepackPolicy,
) -> RepackPlan {
    if is_geometric(role, level, policy) {
        return geometric_plan(role, policy);
    }
    let always = policy.precious == Precious::Always;
    let mut prune = policy.prune && !always && prune_is_safe(role);
    let grace = policy.unreachable;
    let mut freshen_first = false;
    let mut args: Vec<String> = policy.extra_flags.clone();
    let cruft_flags = grace.cruft_flags();
    let cruft: Vec<&str> = cruft_flags.iter().map(String::as_str).collect();
    let mut push = |flags: &[&str]| args.extend(flags.iter().map(|f| f.to_string()));
    let mut commit_graph = policy.commit_graph;
    let mut chained = false;
    match role {
        RepoRole::Objstore => {
            // Everything into one pack; unreachable objects are kept in it
            // (a member may still need them).
            push(&["-a"]);
            if !always {
                push(&["-k"]);
            }
        }
        RepoRole::Parent => {
            push(&["-a", "-b"]);
            if !always {
                push(&["-k"]);
            }
        }
        RepoRole::ParentAndChild { .. } => {
            // Loosen rather than drop what is unreachable: a borrower may
            // need it; objects the lender holds are left to the lender.
            chained = true;
            commit_graph = false;
            push(&["-A", "-l"]);
        }
        RepoRole::Child { .. } | RepoRole::ObjstoreMember { .. } => {
            commit_graph = false;
            // A local-only pack cannot have a bitmap; say so instead of
            // letting git warn about it on every repack.
            match grace {
                _ if !prune => push(&["-l", "-A", "--no-write-bitmap-index"]),
                Unreachable::GrokmirrorRules => push(&[
                    "-l",
                    "-A",
                    "--no-write-bitmap-index",
                    "--unpack-unreachable=yesterday",
                ]),
                Unreachable::CruftSince(_) => {
                    push(&["-l"]);
                    push(&cruft);
                    push(&["--no-write-bitmap-index"]);
                    freshen_first = true;
                    prune = false;
                }
                Unreachable::KeepAll => {
                    push(&["-l", "-a", "-k", "--no-write-bitmap-index"]);
                    prune = false;
                }
            }
        }
        RepoRole::Standalone => {
            push(&["-a", "-b"]);
            if prune {
                match grace {
                    Unreachable::GrokmirrorRules => push(&["--unpack-unreachable=yesterday"]),
                    Unreachable::CruftSince(_) => {
                        push(&cruft);
                        freshen_first = true;
                        prune = false;
                    }
                    Unreachable::KeepAll => {
                        push(&["-k"]);
                        prune = false;
                    }
                }
            } else if !always {
                // Not pruning: keep unreachable objects (packed) instead of
                // letting `-a -d` drop them at once.
                push(&["-k"]);
            }
        }
    }
    let recomputes_deltas = level == RepackLevel::Full && deltas == Deltas::Recompute;
    if level == RepackLevel::Full {
        if recomputes_deltas {
            push(&["-f"]);
        }
        push(&["--pack-kept-objects"]);
        args.extend(policy.extra_full_flags.iter().cloned());
    }
    if !always {
        args.push("-d".into());
    }
    let precious_after = match policy.precious {
        Precious::No => false,
        Precious::Yes => role.lends_objects(),
        Precious::Always => true,
    };
    RepackPlan {
        args,
        prune,
        commit_graph,
        drop_commit_graph: role.borrows_objects(),
        precious_during: always,
        precious_after,
        pack_all_refs: level == RepackLevel::Full,
        chained,
        freshen_first,
        keep_cruft_packs: false,
        graph_write: GraphWrite::Replace,
        recomputes_deltas,
    }
}

/// Plan the repack of an object-storage repository that may be pruned
/// this time: its caller established that every repository borrowing from
/// it is a member whose refs it holds up to date, and holds their locks
/// for the whole repack (see grok-fsck). Unreachable objects are then
/// dropped (`-a -d`, then `git prune`) instead of kept (`-k`), as
/// grokmirror does for object storage only public members use; with a
/// consumer grace they go into a cruft pack and are dropped once the grace
/// has passed.
///
/// A geometric quick repack drops nothing; it is planned as for any object
/// storage.
pub fn plan_pruned_objstore(
    level: RepackLevel,
    deltas: Deltas,
    policy: &RepackPolicy,
) -> RepackPlan {
    let mut plan = plan(&RepoRole::Objstore, level, deltas, policy);
    if is_geometric(&RepoRole::Objstore, level, policy) {
        return plan;
    }
    if policy.prune && policy.precious != Precious::Always {
        match policy.unreachable {
            Unreachable::GrokmirrorRules => {
                plan.args.retain(|a| a != "-k");
                plan.prune = true;
            }
            Unreachable::CruftSince(_) => {
                let k = plan.args.iter().position(|a| a == "-k");
                if let Some(k) = k {
                    plan.args.splice(k..=k, policy.unreachable.cruft_flags());
                }
                plan.freshen_first = true;
            }
            // Kept, as object storage that may not be pruned keeps it.
            Unreachable::KeepAll => {}
        }
    }
    plan
}

/// Which quick repack grok-pull runs after a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickRepack {
    /// `-Adl`: everything local into one pack, unreachable objects
    /// loosened (a borrower, or a git older than [`GEOMETRIC_GIT`]).
    AllInOne,
    /// `--geometric=2 -d` with a multi-pack index and its bitmap: only the
    /// new and small packs are rolled up, nothing is dropped.
    Geometric,
}

/// The quick repack grok-pull runs after a fetch when loose objects pile
/// up, plus `[fsck] extra_repack_flags`. The cruft packs in `cruft_packs`
/// (see [`crate::repo::grace::cruft_packs`]) are left as they are: their
/// objects keep the dates their grace counts from, which loosening them
/// would lose (and grok-fsck would then count the grace again from the
/// start, so that the disk never shrank).
pub fn quick_repack_args(
    kind: QuickRepack,
    extra_flags: &[String],
    cruft_packs: &[String],
) -> Vec<String> {
    let mut args = vec!["repack".to_string()];
    match kind {
        QuickRepack::AllInOne => args.push("-Adlq".into()),
        QuickRepack::Geometric => args.extend(
            [
                "--geometric=2",
                "-d",
                "--write-midx",
                "--write-bitmap-index",
                "-q",
            ]
            .map(String::from),
        ),
    }
    args.extend(cruft_packs.iter().map(|p| format!("--keep-pack={p}")));
    args.extend(extra_flags.iter().cloned());
    args
}

#[cfg(test)]
mod tests;
