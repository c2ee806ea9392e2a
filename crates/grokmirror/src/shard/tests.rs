//! The shard rules, and the balance and movement figures the README
//! quotes (`cargo test -p grokmirror --lib shard -- --nocapture` prints
//! them).

use super::*;

fn entry(forkgroup: Option<&str>, reference: Option<&str>) -> RepoEntry {
    RepoEntry {
        forkgroup: forkgroup.map(str::to_string),
        reference: reference.map(str::to_string),
        ..RepoEntry::default()
    }
}

/// A cheap deterministic generator, so the collection is the same on
/// every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `projects` projects, each a fork group of 1 to 12 repositories (most
/// of them alone, as on kernel.org), some grouped by `forkgroup`, some by
/// `reference`; with a size in KiB per repository, shared by the group's
/// forks in the way object storage shares it.
fn collection(projects: usize) -> (BTreeMap<String, RepoEntry>, BTreeMap<String, u64>) {
    let mut rng = Lcg(18);
    let mut repos = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for p in 0..projects {
        let forks = match rng.next() % 10 {
            0..=5 => 1,
            6..=8 => 2 + (rng.next() % 4) as usize,
            _ => 6 + (rng.next() % 7) as usize,
        };
        let base = format!("/pub/scm/proj{p}/base.git");
        let group = format!("group-{p:05}");
        let by_forkgroup = forks > 1 && rng.next() % 2 == 0;
        let kib = 100 + rng.next() % 50_000;
        repos.insert(
            base.clone(),
            entry(by_forkgroup.then_some(group.as_str()), None),
        );
        sizes.insert(base.clone(), kib);
        for f in 1..forks {
            let key = format!("/pub/scm/proj{p}/fork{f}.git");
            let e = if by_forkgroup {
                entry(Some(&group), None)
            } else {
                entry(None, Some(&base))
            };
            repos.insert(key.clone(), e);
            sizes.insert(key, 10 + rng.next() % 500);
        }
    }
    (repos, sizes)
}

#[test]
fn parsing() {
    let none = || None;
    assert_eq!(Shard::parse("1/3", none), Ok(Shard::new(1, 3).unwrap()));
    assert_eq!(Shard::parse(" 0 / 1 ", none).unwrap().to_string(), "0/1");
    for bad in ["", "1", "a/3", "1/b", "-1/3", "1/3/4", "+1/3"] {
        assert!(
            matches!(Shard::parse(bad, none), Err(Error::Syntax(_))),
            "{bad}"
        );
    }
    assert!(matches!(Shard::parse("0/0", none), Err(Error::Count(_))));
    assert!(matches!(Shard::parse("0/5000", none), Err(Error::Count(_))));
    assert!(matches!(
        Shard::parse("3/3", none),
        Err(Error::Index { index: 3, .. })
    ));
    let host = || Some("grok-pull-2.grok-pull.mirror.svc".to_string());
    assert_eq!(Shard::parse("ordinal/4", host).unwrap().index(), 2);
    assert_eq!(Shard::parse("ORDINAL/4", host).unwrap().index(), 2);
    assert!(matches!(
        Shard::parse("ordinal/2", host),
        Err(Error::Index { index: 2, .. })
    ));
    let plain = || Some("mirror".to_string());
    let err = Shard::parse("ordinal/2", plain).unwrap_err();
    assert!(err.to_string().contains("\"mirror\""), "{err}");
    assert!(matches!(
        Shard::parse("ordinal/2", none),
        Err(Error::NoOrdinal { .. })
    ));
    assert_eq!(ordinal_of("web-10"), Some(10));
    assert_eq!(ordinal_of("web-"), None);
    assert_eq!(ordinal_of("web10"), None);
}

#[test]
fn deterministic_and_pinned() {
    // The hash is part of the contract between the shards and the router
    // (and between versions): pin a few values.
    assert_eq!(weight("/a.git", 0), weight("/a.git", 0));
    assert_ne!(weight("/a.git", 0), weight("/a.git", 1));
    let digest = Sha1::digest(b"/pub/scm/linux.git\x001");
    assert_eq!(
        weight("/pub/scm/linux.git", 1),
        u64::from_be_bytes(digest[..8].try_into().unwrap())
    );
    let pinned: Vec<u32> = ["/a.git", "/b.git", "/c.git", "/d.git", "/e.git"]
        .iter()
        .map(|g| owner(g, 3))
        .collect();
    assert_eq!(pinned, PINNED_OWNERS_OF_3);
    assert_eq!(owner("/anything.git", 1), 0);
}

/// `owner` of `/a.git` .. `/e.git` among 3 shards (checked against
/// Python: `hashlib.sha1(group + b"\0" + str(i)).digest()[:8]`).
const PINNED_OWNERS_OF_3: [u32; 5] = [1, 2, 0, 2, 0];

#[test]
fn groups() {
    let mut repos = BTreeMap::new();
    repos.insert("/base.git".to_string(), entry(None, None));
    repos.insert("/fork.git".to_string(), entry(None, Some("/base.git")));
    repos.insert("/g1.git".to_string(), entry(Some("grp"), None));
    repos.insert("/g2.git".to_string(), entry(Some("grp"), Some("/base.git")));
    repos.insert("/g3.git".to_string(), entry(None, Some("/g1.git")));
    repos.insert("/lost.git".to_string(), entry(None, Some("/gone.git")));
    let g = |k: &str| group_of(k, &repos[k], &repos).to_string();
    assert_eq!(g("/base.git"), "/base.git");
    assert_eq!(g("/fork.git"), "/base.git");
    assert_eq!(g("/g1.git"), "grp");
    assert_eq!(g("/g2.git"), "grp");
    assert_eq!(g("/g3.git"), "grp");
    assert_eq!(g("/lost.git"), "/gone.git");
    let empty = entry(Some(""), None);
    assert_eq!(group_of("/x.git", &empty, &repos), "/x.git");
    // A 1.x chain is one group; so is a loop, whoever is asked.
    repos.insert("/c1.git".to_string(), entry(None, Some("/fork.git")));
    repos.insert("/c2.git".to_string(), entry(None, Some("/c1.git")));
    repos.insert("/c3.git".to_string(), entry(None, Some("/g3.git")));
    repos.insert("/l1.git".to_string(), entry(None, Some("/l2.git")));
    repos.insert("/l2.git".to_string(), entry(None, Some("/l3.git")));
    repos.insert("/l3.git".to_string(), entry(None, Some("/l1.git")));
    repos.insert("/l4.git".to_string(), entry(None, Some("/l3.git")));
    repos.insert("/self.git".to_string(), entry(None, Some("/self.git")));
    let g = |k: &str| group_of(k, &repos[k], &repos).to_string();
    assert_eq!(g("/c2.git"), "/base.git");
    assert_eq!(g("/c3.git"), "grp");
    for k in ["/l1.git", "/l2.git", "/l3.git", "/l4.git"] {
        assert_eq!(g(k), "/l1.git", "{k}");
    }
    assert_eq!(g("/self.git"), "/self.git");
}

#[test]
fn peers() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(peer_urls(&[], 3), Ok(vec![]));
    assert_eq!(
        peer_urls(&lines(&["http://grok-pull-{K}.grok/manifest.js.gz"]), 2).unwrap(),
        vec![
            "http://grok-pull-0.grok/manifest.js.gz",
            "http://grok-pull-1.grok/manifest.js.gz"
        ]
    );
    assert_eq!(
        peer_urls(&lines(&["file:///a", " ", "file:///b"]), 2).unwrap(),
        vec!["file:///a", "file:///b"]
    );
    assert_eq!(
        peer_urls(&lines(&["file:///a"]), 2),
        Err(Error::Peers {
            listed: 1,
            count: 2
        })
    );
}

/// Per shard: repositories, KiB (a group's forks counted with their own
/// size only, as object storage keeps them), and fork groups.
fn loads(
    repos: &BTreeMap<String, RepoEntry>,
    sizes: &BTreeMap<String, u64>,
    count: u32,
) -> Vec<(usize, u64)> {
    let owners = owners(repos, count);
    let mut loads = vec![(0usize, 0u64); count as usize];
    for (k, o) in &owners {
        loads[*o as usize].0 += 1;
        loads[*o as usize].1 += sizes[k];
    }
    loads
}

fn spread<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    let max = v.iter().map(|x| (*x).into()).fold(f64::MIN, f64::max);
    let min = v.iter().map(|x| (*x).into()).fold(f64::MAX, f64::min);
    max / min - 1.0
}

#[test]
fn every_group_on_one_shard_and_forks_together() {
    let (repos, _) = collection(3000);
    let owners = owners(&repos, 3);
    let mut group_shard: BTreeMap<&str, u32> = BTreeMap::new();
    for (k, o) in &owners {
        let g = group_of(k, &repos[k], &repos);
        assert_eq!(
            *group_shard.entry(g).or_insert(*o),
            *o,
            "{k} apart from {g}"
        );
        let holders: Vec<u32> = (0..3)
            .filter(|i| Shard::new(*i, 3).unwrap().holds(g))
            .collect();
        assert_eq!(holders, vec![*o], "{k}");
    }
    assert_eq!(owners.len(), repos.len());
}

#[test]
fn balance_and_movement() {
    let (repos, sizes) = collection(4000);
    let groups: std::collections::BTreeSet<&str> =
        repos.iter().map(|(k, e)| group_of(k, e, &repos)).collect();
    for count in [3u32, 4] {
        let l = loads(&repos, &sizes, count);
        let (n, kib): (Vec<usize>, Vec<u64>) = l.iter().copied().unzip();
        let (n_spread, kib_spread) = (
            spread(&n.iter().map(|x| *x as u32).collect::<Vec<_>>()),
            spread(&kib.iter().map(|x| *x as f64).collect::<Vec<_>>()),
        );
        println!(
            "shards: {} repositories in {} fork groups over {count} shards: repositories {n:?} \
             (max/min - 1 = {:.1}%), KiB {kib:?} ({:.1}%)",
            repos.len(),
            groups.len(),
            n_spread * 100.0,
            kib_spread * 100.0
        );
        assert!(n_spread < 0.20, "repositories {n:?}");
        assert!(kib_spread < 0.20, "KiB {kib:?}");
    }
    let before = owners(&repos, 3);
    let after = owners(&repos, 4);
    let moved: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    let share = moved.len() as f64 / repos.len() as f64;
    let moved_kib: u64 = moved.iter().map(|k| sizes[*k]).sum();
    let kib_share = moved_kib as f64 / sizes.values().sum::<u64>() as f64;
    println!(
        "shards: 3 -> 4 moves {} of {} repositories ({:.1}%), {:.1}% of the KiB, all to the new shard",
        moved.len(),
        repos.len(),
        share * 100.0,
        kib_share * 100.0
    );
    assert!(moved.iter().all(|k| after[*k] == 3));
    assert!((0.20..0.30).contains(&share), "{share}");
    // Going back (4 -> 3) moves exactly those back.
    assert!(after.iter().all(|(k, o)| *o == 3 || before[k] == *o));
}
