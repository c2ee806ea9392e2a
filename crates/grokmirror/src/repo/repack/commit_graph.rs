//! Commit-graphs around a repack: how one is written (a split chain that
//! grows by a layer after a repack that dropped nothing, rewritten whole
//! after one that may have), removing the one of a repository that borrows
//! objects, and telling a stale commit-graph (it lists commits that are
//! gone) from corruption in what `git fsck` says.

use std::collections::HashSet;

use crate::git::GitVersion;

/// The first git that writes split commit-graphs with `--split=replace`.
pub const SPLIT_GIT: GitVersion = GitVersion(2, 27, 0);

/// How the commit-graph is written after a repack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphWrite {
    /// Add a layer for the new commits (`--split`): the repack dropped no
    /// object, so every commit the chain lists is still there, and git
    /// merges small layers as they pile up.
    Incremental,
    /// Write the chain anew (`--split=replace`): the repack may have dropped
    /// commits a layer still lists.
    Replace,
}

/// The arguments of `git commit-graph write` in `mode`; with a git older
/// than [`SPLIT_GIT`], one whole file from the reachable commits.
pub fn write_args(mode: GraphWrite, split_supported: bool) -> Vec<String> {
    let mut args = vec![
        "commit-graph".to_string(),
        "write".into(),
        "--reachable".into(),
    ];
    if split_supported {
        args.push(match mode {
            GraphWrite::Incremental => "--split".into(),
            GraphWrite::Replace => "--split=replace".into(),
        });
    }
    args
}

/// The lines of `git fsck` output that come from a stale commit-graph:
/// those that name the commit-graph, and the `Could not read <oid>` errors
/// about commits those lines name (git prints the pair for each commit the
/// graph lists but the object store no longer holds). Returns the stale
/// graph's lines and the others, in order.
pub fn split_stale_graph_complaints<'l>(lines: &[&'l str]) -> (Vec<&'l str>, Vec<&'l str>) {
    let names_graph = |l: &str| l.contains("commit-graph") || l.contains("commit graph");
    let graph_oids: HashSet<&str> = lines
        .iter()
        .filter(|l| names_graph(l))
        .flat_map(|l| l.split_whitespace())
        .filter(|w| is_hex_oid(w))
        .collect();
    lines.iter().partition(|l| {
        names_graph(l)
            || l.strip_prefix("error: Could not read ")
                .is_some_and(|oid| graph_oids.contains(oid.trim()))
    })
}

fn is_hex_oid(word: &str) -> bool {
    matches!(word.len(), 40 | 64) && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Remove the commit-graph of a repository that borrows objects (through
/// alternates), before a repack that drops its copies of what the lender
/// holds, or a stale one before it is written anew. A commit-graph written
/// while a repository stood alone lists commits that then live only in the
/// lender, which may later drop the ones no longer reachable (object
/// storage is pruned when its members no longer need them); the
/// repository's own `git fsck` would then fail on the commit-graph ("Could
/// not read `<commit>`") for good. Borrowers get no new commit-graph
/// (grokmirror writes none for them either), so the stale one only goes.
/// Returns the files removed. Caller holds the repository's lock.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_arguments() {
        assert_eq!(
            write_args(GraphWrite::Incremental, true).join(" "),
            "commit-graph write --reachable --split"
        );
        assert_eq!(
            write_args(GraphWrite::Replace, true).join(" "),
            "commit-graph write --reachable --split=replace"
        );
        assert_eq!(
            write_args(GraphWrite::Replace, false).join(" "),
            "commit-graph write --reachable"
        );
    }

    #[test]
    fn stale_graph_lines_are_told_from_corruption() {
        let a = "428101da9996967b04fcae2a98da93748e046a8b";
        let b = "9676c56316ef2a593a45f85b68276a1c45f594ad";
        let graph_a = format!("failed to parse commit {a} from object database for commit-graph");
        let read_a = format!("error: Could not read {a}");
        let read_b = format!("error: Could not read {b}");
        let lines = vec![
            read_a.as_str(),
            graph_a.as_str(),
            read_b.as_str(),
            "missing blob 45b983be36b73c0788dc9cbcb76cbb80fc7bb057",
        ];
        let (stale, other) = split_stale_graph_complaints(&lines);
        assert_eq!(stale, vec![read_a.as_str(), graph_a.as_str()]);
        // b is not named by the graph: a missing object like any other.
        assert_eq!(other, vec![read_b.as_str(), lines[3]]);
        let (stale, other) = split_stale_graph_complaints(&[lines[3]]);
        assert!(stale.is_empty() && other.len() == 1);
    }
}
