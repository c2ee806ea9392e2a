//! Decisions free of I/O: which branches a repository publishes, the names
//! of the files, whether a tarball is due, and which old ones go.

use std::collections::BTreeMap;

use grokmirror::config::glob::Glob;

/// The longest `--branches` argument taken.
pub const MAX_SPEC_LEN: usize = 4096;

/// One `--branches REPOGLOB:BRANCHGLOB`.
#[derive(Debug, Clone)]
pub struct BranchSpec {
    /// Matched against the manifest key, with or without its leading `/`.
    pub repo: Glob,
    /// Matched against the branch name (without `refs/heads/`).
    pub branch: Glob,
}

impl BranchSpec {
    /// Split at the last colon (a branch name cannot hold one; a path can).
    pub fn parse(text: &str) -> Result<BranchSpec, String> {
        if text.len() > MAX_SPEC_LEN {
            return Err(format!(
                "a --branches pattern is limited to {MAX_SPEC_LEN} bytes"
            ));
        }
        match text.rsplit_once(':') {
            Some((repo, branch)) if !repo.is_empty() && !branch.is_empty() => Ok(BranchSpec {
                repo: Glob::new(repo),
                branch: Glob::new(branch),
            }),
            _ => Err(format!(
                "{text:?} is not REPOGLOB:BRANCHGLOB; give e.g. '/pub/linux.git:master'"
            )),
        }
    }

    /// Whether the repository glob names the manifest key `key`.
    pub fn names_repo(&self, key: &str) -> bool {
        self.repo.is_match(key) || self.repo.is_match(key.trim_start_matches('/'))
    }
}

/// A branch of a repository, as `git for-each-ref` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Its name without `refs/heads/`.
    pub name: String,
    /// The full object name of its tip.
    pub tip: String,
    /// The tip's committer time, seconds since the epoch.
    pub time: i64,
}

/// What a repository publishes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    /// The branches to publish, each with its name as it appears in files.
    pub publish: Vec<(Branch, String)>,
    /// File names that two or more branches want; none of them is published.
    pub collisions: Vec<(String, Vec<String>)>,
}

/// A branch name as it appears in file names: `/` becomes `-`.
pub fn file_branch(name: &str) -> String {
    name.replace('/', "-")
}

/// The branches of `key` that `specs` name, newer than `max_age_days` (0:
/// any) at `now`, at most `max_branches` (0: any) of the newest tips, and
/// none of those whose file names collide.
pub fn choose(
    key: &str,
    branches: &[Branch],
    specs: &[BranchSpec],
    now: i64,
    max_age_days: u32,
    max_branches: u32,
) -> Chosen {
    let wanted: Vec<&BranchSpec> = specs.iter().filter(|s| s.names_repo(key)).collect();
    let mut picked: Vec<&Branch> = branches
        .iter()
        .filter(|b| wanted.iter().any(|s| s.branch.is_match(&b.name)))
        .filter(|b| max_age_days == 0 || now - b.time <= i64::from(max_age_days) * 86_400)
        .collect();
    // Newest first; the name breaks ties so the order is git's no matter.
    picked.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    if max_branches > 0 {
        picked.truncate(max_branches as usize);
    }
    let mut by_file: BTreeMap<String, Vec<&Branch>> = BTreeMap::new();
    for b in &picked {
        by_file.entry(file_branch(&b.name)).or_default().push(b);
    }
    let mut chosen = Chosen::default();
    for b in picked {
        let file = file_branch(&b.name);
        if by_file[&file].len() == 1 {
            chosen.publish.push((b.clone(), file));
        }
    }
    for (file, users) in by_file {
        if users.len() > 1 {
            let mut names: Vec<String> = users.iter().map(|b| b.name.clone()).collect();
            names.sort();
            chosen.collisions.push((file, names));
        }
    }
    chosen
}

/// The repository part of the file names: the key's last component without
/// `.git` (`/pub/linux.git` -> `linux`).
pub fn repo_stem(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or(key);
    last.strip_suffix(".git").unwrap_or(last).to_string()
}

/// `<repo>.<branch>.shallow`, the start of every file of a branch.
pub fn stem(repo: &str, file_branch: &str) -> String {
    format!("{repo}.{file_branch}.shallow")
}

/// The link to the newest tarball.
pub fn latest_name(stem: &str) -> String {
    format!("{stem}.latest.tar")
}

/// The sidecar of a tarball (or of a link).
pub fn sidecar_name(tarball: &str) -> String {
    format!("{tarball}.json")
}

/// The seven hex digits of a tip that the names carry.
pub fn short_tip(tip: &str) -> &str {
    &tip[..tip.len().min(7)]
}

/// `<stem>.<YYYYMMDD>.<tip7>.tar`.
pub fn dated_name(stem: &str, date: &str, tip: &str) -> String {
    format!("{stem}.{date}.{}.tar", short_tip(tip))
}

/// The date and short tip of a dated tarball of `stem`, if `name` is one.
pub fn parse_dated<'n>(stem: &str, name: &'n str) -> Option<(&'n str, &'n str)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let rest = rest.strip_suffix(".tar")?;
    let (date, tip) = rest.split_once('.')?;
    let date_ok = date.len() == 8 && date.bytes().all(|c| c.is_ascii_digit());
    let tip_ok = tip.len() == 7 && tip.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    (date_ok && tip_ok).then_some((date, tip))
}

/// The dated tarball of `stem` already made from `tip`, if one is among
/// `names`: then there is nothing to make.
pub fn existing_for_tip<'n>(stem: &str, tip: &str, names: &'n [String]) -> Option<&'n str> {
    names
        .iter()
        .filter(|n| parse_dated(stem, n).is_some_and(|(_, t)| t == short_tip(tip)))
        .max()
        .map(String::as_str)
}

/// The dated tarballs of `stem` to remove once `latest` names `current`:
/// every one but `current` and the newest other one (by modification time,
/// then name), kept so a reader that saw the previous `latest` on a
/// frontend not yet synced still finds its file.
pub fn to_prune(stem: &str, current: &str, names_and_mtimes: &[(String, i64)]) -> Vec<String> {
    let mut others: Vec<&(String, i64)> = names_and_mtimes
        .iter()
        .filter(|(n, _)| n != current && parse_dated(stem, n).is_some())
        .collect();
    others.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    others.into_iter().skip(1).map(|(n, _)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn br(name: &str, time: i64) -> Branch {
        Branch {
            name: name.into(),
            tip: format!("{:040x}", time),
            time,
        }
    }

    #[test]
    fn spec_splits_at_the_last_colon() {
        let s = BranchSpec::parse("/a:b/c.git:for-*").unwrap();
        assert_eq!(s.repo.as_str(), "/a:b/c.git");
        assert_eq!(s.branch.as_str(), "for-*");
        assert!(BranchSpec::parse("nocolon").is_err());
        assert!(BranchSpec::parse(":main").is_err());
        assert!(BranchSpec::parse("/a.git:").is_err());
        assert!(BranchSpec::parse(&"x".repeat(MAX_SPEC_LEN + 1)).is_err());
    }

    #[test]
    fn repo_glob_with_or_without_slash() {
        let s = BranchSpec::parse("pub/*.git:main").unwrap();
        assert!(s.names_repo("/pub/linux.git"));
        let s = BranchSpec::parse("/pub/*.git:main").unwrap();
        assert!(s.names_repo("/pub/linux.git"));
        assert!(!s.names_repo("/other/linux.git"));
    }

    #[test]
    fn choose_filters_by_pattern_age_and_count() {
        let specs = [
            BranchSpec::parse("/r.git:linux-*.y").unwrap(),
            BranchSpec::parse("/r.git:master").unwrap(),
            BranchSpec::parse("/other.git:*").unwrap(),
        ];
        let now = 100 * 86_400;
        let branches = [
            br("linux-6.1.y", now - 10),
            br("linux-5.4.y", now - 50 * 86_400),
            br("linux-4.9.y", now - 99 * 86_400),
            br("master", now - 5),
            br("next", now),
        ];
        let names =
            |c: &Chosen| -> Vec<String> { c.publish.iter().map(|(b, _)| b.name.clone()).collect() };
        let all = choose("/r.git", &branches, &specs, now, 0, 0);
        assert_eq!(
            names(&all),
            ["master", "linux-6.1.y", "linux-5.4.y", "linux-4.9.y"]
        );
        let young = choose("/r.git", &branches, &specs, now, 30, 0);
        assert_eq!(names(&young), ["master", "linux-6.1.y"]);
        let two = choose("/r.git", &branches, &specs, now, 0, 2);
        assert_eq!(names(&two), ["master", "linux-6.1.y"]);
        assert!(choose("/none.git", &branches, &specs, now, 0, 0)
            .publish
            .is_empty());
    }

    #[test]
    fn colliding_file_names_publish_neither() {
        let specs = [BranchSpec::parse("*:*").unwrap()];
        let branches = [
            br("for-next/core", 3),
            br("for-next-core", 2),
            br("main", 1),
        ];
        let c = choose("/r.git", &branches, &specs, 10, 0, 0);
        assert_eq!(c.publish.len(), 1);
        assert_eq!(c.publish[0].1, "main");
        assert_eq!(
            c.collisions,
            [(
                "for-next-core".to_string(),
                vec!["for-next-core".to_string(), "for-next/core".to_string()]
            )]
        );
    }

    #[test]
    fn names_like_upstream() {
        let s = stem(
            &repo_stem("/pub/stable/linux.git"),
            &file_branch("linux-6.18.y"),
        );
        assert_eq!(s, "linux.linux-6.18.y.shallow");
        let tip = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
        let name = dated_name(&s, "20260911", tip);
        assert_eq!(name, "linux.linux-6.18.y.shallow.20260911.a1b2c3d.tar");
        assert_eq!(sidecar_name(&name), format!("{name}.json"));
        assert_eq!(latest_name(&s), "linux.linux-6.18.y.shallow.latest.tar");
        assert_eq!(parse_dated(&s, &name), Some(("20260911", "a1b2c3d")));
        assert_eq!(parse_dated(&s, &latest_name(&s)), None);
        assert_eq!(parse_dated(&s, &sidecar_name(&name)), None);
        // Another branch whose stem starts the same is not ours.
        assert_eq!(
            parse_dated(
                "linux.linux-6.1.shallow",
                "linux.linux-6.18.y.shallow.20260911.a1b2c3d.tar"
            ),
            None
        );
        assert_eq!(repo_stem("/bare"), "bare");
    }

    #[test]
    fn a_tarball_of_the_tip_means_nothing_to_do() {
        let s = "r.main.shallow";
        let tip = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
        let names = vec![
            format!("{s}.20260101.0000000.tar"),
            format!("{s}.20260102.a1b2c3d.tar"),
            format!("{s}.latest.tar"),
        ];
        assert_eq!(
            existing_for_tip(s, tip, &names),
            Some(format!("{s}.20260102.a1b2c3d.tar").as_str())
        );
        assert_eq!(existing_for_tip(s, &"f".repeat(40), &names), None);
    }

    #[test]
    fn prune_keeps_current_and_the_one_before() {
        let s = "r.main.shallow";
        let n = |d: &str, t: &str| format!("{s}.{d}.{t}.tar");
        let files = vec![
            (n("20260101", "0000001"), 1),
            (n("20260102", "0000002"), 2),
            (n("20260103", "0000003"), 3),
            (n("20260104", "0000004"), 4),
            (format!("{s}.latest.tar"), 5),
            ("other.main.shallow.20260101.0000001.tar".to_string(), 0),
        ];
        let current = n("20260104", "0000004");
        assert_eq!(
            to_prune(s, &current, &files),
            [n("20260102", "0000002"), n("20260101", "0000001")]
        );
        assert!(to_prune(s, &current, &files[2..]).is_empty());
    }
}
