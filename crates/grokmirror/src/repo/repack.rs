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

use crate::repo::alternates::RepoRole;
use crate::repo::grace::Unreachable;
use crate::repo::object_counts::RepackLevel;

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

/// Plan a repack of a repository with `role` at `level`.
pub fn plan(role: &RepoRole, level: RepackLevel, policy: &RepackPolicy) -> RepackPlan {
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
    if level == RepackLevel::Full {
        push(&["-f", "--pack-kept-objects"]);
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
pub fn plan_pruned_objstore(level: RepackLevel, policy: &RepackPolicy) -> RepackPlan {
    let mut plan = plan(&RepoRole::Objstore, level, policy);
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

/// Remove the commit-graph of a repository that borrows objects (through
/// alternates), before a repack that drops its copies of what the lender
/// holds. A commit-graph written while it stood alone lists commits that
/// then live only in the lender, which may later drop the ones no longer
/// reachable (object storage is pruned when its members no longer need
/// them); the repository's own `git fsck` would then fail on the
/// commit-graph ("Could not read `<commit>`") for good. Borrowers get no new
/// commit-graph (grokmirror writes none for them either), so the stale one
/// only goes. Returns the files removed. Caller holds the repository's lock.
pub fn drop_commit_graph(repo: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let info = repo.join("objects/info");
    let mut removed = Vec::new();
    let single = info.join("commit-graph");
    match std::fs::remove_file(&single) {
        Ok(()) => removed.push(single),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // A split commit-graph: the chain file first, so no reader follows it
    // to graph files that are gone.
    let chain_dir = info.join("commit-graphs");
    if chain_dir.is_dir() {
        let chain = chain_dir.join("commit-graph-chain");
        match std::fs::remove_file(&chain) {
            Ok(()) => removed.push(chain),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for entry in std::fs::read_dir(&chain_dir)?.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "graph") {
                std::fs::remove_file(&p)?;
                removed.push(p);
            }
        }
    }
    Ok(removed)
}

/// The quick repack grok-pull runs after a fetch when loose objects pile
/// up: everything local into one pack, unreachable objects loosened,
/// plus `[fsck] extra_repack_flags`. The cruft packs in `cruft_packs`
/// (see [`crate::repo::grace::cruft_packs`]) are left as they are: their
/// objects keep the dates their grace counts from, which loosening them
/// would lose (and grok-fsck would then count the grace again from the
/// start, so that the disk never shrank).
pub fn quick_repack_args(extra_flags: &[String], cruft_packs: &[String]) -> Vec<String> {
    let mut args = vec!["repack".to_string(), "-Adlq".to_string()];
    args.extend(cruft_packs.iter().map(|p| format!("--keep-pack={p}")));
    args.extend(extra_flags.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(role: &RepoRole, level: RepackLevel, policy: &RepackPolicy) -> String {
        plan(role, level, policy).args.join(" ")
    }

    #[test]
    fn flags_by_role() {
        let p = RepackPolicy::default();
        let q = RepackLevel::Quick;
        let parent = PathBuf::from("/t/p.git");
        assert_eq!(
            args(&RepoRole::Standalone, q, &p),
            "-a -b --unpack-unreachable=yesterday -d"
        );
        assert_eq!(args(&RepoRole::Parent, q, &p), "-a -b -k -d");
        assert_eq!(
            args(
                &RepoRole::Child {
                    parent: parent.clone()
                },
                q,
                &p
            ),
            "-l -A --no-write-bitmap-index --unpack-unreachable=yesterday -d"
        );
        assert_eq!(
            args(
                &RepoRole::ParentAndChild {
                    parent: parent.clone()
                },
                q,
                &p
            ),
            "-A -l -d"
        );
        assert_eq!(args(&RepoRole::Objstore, q, &p), "-a -k -d");
        assert_eq!(
            args(&RepoRole::ObjstoreMember { objstore: parent }, q, &p),
            "-l -A --no-write-bitmap-index --unpack-unreachable=yesterday -d"
        );
    }

    #[test]
    fn lenders_are_never_pruned_and_stay_precious() {
        let p = RepackPolicy::default();
        for role in [RepoRole::Parent, RepoRole::Objstore] {
            let plan = plan(&role, RepackLevel::Quick, &p);
            assert!(!plan.prune);
            assert!(plan.precious_after);
            assert!(plan.args.iter().any(|a| a == "-k"));
        }
        let solo = plan(&RepoRole::Standalone, RepackLevel::Quick, &p);
        assert!(solo.prune && !solo.precious_after && solo.commit_graph);
    }

    #[test]
    fn full_level_and_extra_flags() {
        let p = RepackPolicy {
            extra_flags: vec!["--threads=2".into()],
            extra_full_flags: vec!["--window=250".into(), "--depth=50".into()],
            ..Default::default()
        };
        let plan = plan(&RepoRole::Standalone, RepackLevel::Full, &p);
        assert_eq!(
            plan.args.join(" "),
            "--threads=2 -a -b --unpack-unreachable=yesterday -f --pack-kept-objects --window=250 --depth=50 -d"
        );
        assert!(plan.pack_all_refs);
    }

    #[test]
    fn precious_always_deletes_nothing() {
        let p = RepackPolicy {
            precious: Precious::Always,
            ..Default::default()
        };
        for role in [RepoRole::Standalone, RepoRole::Parent, RepoRole::Objstore] {
            let plan = plan(&role, RepackLevel::Full, &p);
            assert!(!plan.args.iter().any(|a| a == "-d"), "{:?}", plan.args);
            assert!(!plan.prune);
            assert!(plan.precious_during && plan.precious_after);
        }
    }

    #[test]
    fn no_prune_keeps_unreachable() {
        let p = RepackPolicy {
            prune: false,
            ..Default::default()
        };
        assert_eq!(
            args(&RepoRole::Standalone, RepackLevel::Quick, &p),
            "-a -b -k -d"
        );
        assert_eq!(
            args(
                &RepoRole::Child {
                    parent: "/p".into()
                },
                RepackLevel::Quick,
                &p
            ),
            "-l -A --no-write-bitmap-index -d"
        );
    }

    #[test]
    fn pruned_objstore_drops_only_when_allowed() {
        let p = RepackPolicy::default();
        let plan = plan_pruned_objstore(RepackLevel::Full, &p);
        assert_eq!(plan.args.join(" "), "-a -f --pack-kept-objects -d");
        assert!(plan.prune && plan.precious_after);
        for policy in [
            RepackPolicy {
                prune: false,
                ..Default::default()
            },
            RepackPolicy {
                precious: Precious::Always,
                ..Default::default()
            },
        ] {
            let plan = plan_pruned_objstore(RepackLevel::Quick, &policy);
            assert!(!plan.prune, "{policy:?}");
            assert_eq!(
                plan.args,
                super::plan(&RepoRole::Objstore, RepackLevel::Quick, &policy).args
            );
        }
    }

    #[test]
    fn precious_values() {
        assert_eq!(Precious::parse("always"), Some(Precious::Always));
        assert_eq!(Precious::parse("Yes"), Some(Precious::Yes));
        assert_eq!(Precious::parse("off"), Some(Precious::No));
        assert_eq!(Precious::parse("sometimes"), None);
    }

    #[test]
    fn pull_quick_repack() {
        assert_eq!(
            quick_repack_args(&["--threads=1".into()], &[]).join(" "),
            "repack -Adlq --threads=1"
        );
        assert_eq!(
            quick_repack_args(&[], &["pack-1.pack".into()]).join(" "),
            "repack -Adlq --keep-pack=pack-1.pack"
        );
    }

    #[test]
    fn borrowers_lose_their_commit_graph() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("objects/info");
        std::fs::create_dir_all(info.join("commit-graphs")).unwrap();
        for f in [
            "commit-graph",
            "commit-graphs/commit-graph-chain",
            "commit-graphs/graph-0123.graph",
            "alternates",
        ] {
            std::fs::write(info.join(f), "").unwrap();
        }
        let removed = drop_commit_graph(dir.path()).unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(info.join("alternates").exists());
        assert!(!info.join("commit-graph").exists());
        assert!(drop_commit_graph(dir.path()).unwrap().is_empty());
        let policy = RepackPolicy::default();
        let member = RepoRole::ObjstoreMember {
            objstore: PathBuf::from("/o.git"),
        };
        assert!(plan(&member, RepackLevel::Quick, &policy).drop_commit_graph);
        assert!(!plan(&RepoRole::Standalone, RepackLevel::Quick, &policy).drop_commit_graph);
    }

    #[test]
    fn a_consumer_grace_puts_what_may_go_into_cruft_packs() {
        let p = RepackPolicy {
            unreachable: Unreachable::CruftSince(1_700_000_000),
            ..Default::default()
        };
        let cruft = "--cruft --cruft-expiration=@1700000000";
        let q = RepackLevel::Quick;
        let solo = plan(&RepoRole::Standalone, q, &p);
        assert_eq!(solo.args.join(" "), format!("-a -b {cruft} -d"));
        assert!(solo.freshen_first && !solo.prune);
        let member = RepoRole::ObjstoreMember {
            objstore: PathBuf::from("/o.git"),
        };
        let m = plan(&member, q, &p);
        assert_eq!(
            m.args.join(" "),
            format!("-l {cruft} --no-write-bitmap-index -d")
        );
        assert!(m.freshen_first && !m.prune);
        let o = plan_pruned_objstore(RepackLevel::Full, &p);
        assert_eq!(
            o.args.join(" "),
            format!("-a {cruft} -f --pack-kept-objects -d")
        );
        assert!(o.freshen_first && !o.prune && o.precious_after);
        // Lenders and object storage that may not be pruned keep all, as
        // without a grace.
        for role in [RepoRole::Parent, RepoRole::Objstore] {
            let plan = plan(&role, q, &p);
            assert!(plan.args.iter().any(|a| a == "-k"), "{role:?}");
            assert!(!plan.freshen_first && !plan.prune);
        }
        // No prune asked: no cruft pack either (nothing is dropped).
        let no_prune = RepackPolicy {
            prune: false,
            ..p.clone()
        };
        let kept = plan(&RepoRole::Standalone, q, &no_prune);
        assert_eq!(kept.args.join(" "), "-a -b -k -d");
        assert!(!kept.freshen_first);
    }

    #[test]
    fn without_cruft_packs_a_grace_keeps_everything() {
        let p = RepackPolicy {
            unreachable: Unreachable::KeepAll,
            ..Default::default()
        };
        let q = RepackLevel::Quick;
        let solo = plan(&RepoRole::Standalone, q, &p);
        assert_eq!(solo.args.join(" "), "-a -b -k -d");
        assert!(!solo.prune && !solo.freshen_first);
        let child = RepoRole::Child {
            parent: PathBuf::from("/p.git"),
        };
        assert_eq!(
            plan(&child, q, &p).args.join(" "),
            "-l -a -k --no-write-bitmap-index -d"
        );
        let o = plan_pruned_objstore(q, &p);
        assert_eq!(o.args.join(" "), "-a -k -d");
        assert!(!o.prune);
    }

    #[test]
    fn a_grace_that_cannot_be_honoured_falls_back_to_keeping_everything() {
        let p = RepackPolicy {
            unreachable: Unreachable::CruftSince(1),
            ..Default::default()
        };
        let member = RepoRole::ObjstoreMember {
            objstore: PathBuf::from("/o.git"),
        };
        let m = plan(&member, RepackLevel::Quick, &p).keeping_everything();
        assert_eq!(m.args.join(" "), "-l --no-write-bitmap-index -a -k -d");
        assert!(!m.freshen_first && !m.prune);
        let o = plan_pruned_objstore(RepackLevel::Quick, &p).keeping_everything();
        assert_eq!(o.args.join(" "), "-a -k -d");
        let solo = plan(&RepoRole::Standalone, RepackLevel::Quick, &p).keeping_everything();
        assert_eq!(solo.args.join(" "), "-a -b -k -d");
    }
}
