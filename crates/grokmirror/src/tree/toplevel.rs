//! Whether a top level is fit to be walked and written into.
//!
//! Every program walks its top level and writes into the git directories
//! it finds there (fingerprints, repacks, purges). A top level that is the
//! root of the file system, or that holds people's home directories, turns
//! that into an operation on every git directory of the machine, so such a
//! top level is refused unless `[core] allow_any_toplevel` says it is
//! meant. The decisions are pure functions; [`protected_homes`] and
//! [`probe`] are the I/O that feeds them.

use std::path::{Path, PathBuf};

/// The lowest uid of a person's account (login.defs' `UID_MIN` on every
/// common distribution); accounts below it, except root, are services.
const UID_MIN: u32 = 1000;
/// The uid of `nobody`, whose home is never a real one.
const UID_NOBODY: u32 = 65534;

/// What a program needs of its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Walking and reading only (grok-manifest given `-t`).
    Read,
    /// Walking and writing (grok-pull, grok-fsck, and every program
    /// reading `[core] toplevel` from a config, as grokmirror requires).
    ReadWrite,
}

/// What [`probe`] found out about an existing path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// It is a directory (after following symlinks).
    pub is_dir: bool,
    /// It can be listed and entered by the user this runs as.
    pub readable: bool,
    /// It can be written to by the user this runs as.
    pub writable: bool,
}

/// Look at `path` (which exists): the facts [`unusable`] decides on.
pub fn probe(path: &Path) -> Probe {
    use nix::unistd::{access, AccessFlags};
    Probe {
        is_dir: path.is_dir(),
        readable: access(path, AccessFlags::R_OK | AccessFlags::X_OK).is_ok(),
        writable: access(path, AccessFlags::W_OK).is_ok(),
    }
}

/// Why a top level with these properties cannot serve `need`, or `None`
/// when it can.
pub fn unusable(probe: Probe, need: Need) -> Option<&'static str> {
    if !probe.is_dir {
        Some("it is not a directory")
    } else if !probe.readable {
        Some("it cannot be read")
    } else if need == Need::ReadWrite && !probe.writable {
        Some("it cannot be written to")
    } else {
        None
    }
}

/// The home directories of root and of people's accounts (uid 0, or from
/// `UID_MIN` up, `nobody` excepted) in an `/etc/passwd` text. Service
/// accounts are left out on purpose: their home is usually their data
/// directory (a `mirror` system user living in `/var/lib/git/mirror`),
/// which is exactly where a top level belongs.
pub fn homes_from_passwd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let uid: u32 = fields.get(2)?.parse().ok()?;
            let home = fields.get(5)?;
            let person = uid == 0 || (UID_MIN..UID_NOBODY).contains(&uid);
            (person && home.starts_with('/')).then(|| PathBuf::from(home))
        })
        .collect()
}

/// Why `toplevel` (a real path, symlinks resolved) would reach far beyond
/// a mirror, given the `homes` no top level may contain: the root of the
/// file system, or a directory that is or contains one of them. `None`
/// when it is a normal top level.
pub fn too_wide(toplevel: &Path, homes: &[PathBuf]) -> Option<String> {
    if toplevel.parent().is_none() {
        return Some("it is the root of the file system".to_string());
    }
    let home = homes
        .iter()
        .filter(|h| h.parent().is_some())
        .find(|h| h.starts_with(toplevel))?;
    Some(if home == toplevel {
        "it is a home directory".to_string()
    } else {
        format!("it contains the home directory {}", home.display())
    })
}

/// Why a top level is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It cannot serve what the program needs ([`unusable`]).
    #[error("{0}")]
    Unusable(&'static str),
    /// It reaches far beyond a mirror ([`too_wide`]).
    #[error("{0}, so every git directory under it would be walked and written into")]
    TooWide(String),
}

/// Every check of an existing top level (a real path) on this machine:
/// [`unusable`] for `need`, then, unless `allow_any`, [`too_wide`] against
/// [`protected_homes`].
pub fn check(toplevel: &Path, need: Need, allow_any: bool) -> Result<(), Refusal> {
    if let Some(why) = unusable(probe(toplevel), need) {
        return Err(Refusal::Unusable(why));
    }
    match too_wide(toplevel, &protected_homes()) {
        Some(why) if !allow_any => Err(Refusal::TooWide(why)),
        _ => Ok(()),
    }
}

/// The home directories [`too_wide`] protects on this machine: those of
/// [`homes_from_passwd`] in `/etc/passwd`, and `$HOME` when this runs as
/// root or as a person (not a service account), each also as its real
/// path.
pub fn protected_homes() -> Vec<PathBuf> {
    let mut homes = std::fs::read_to_string("/etc/passwd")
        .map(|t| homes_from_passwd(&t))
        .unwrap_or_default();
    let uid = nix::unistd::getuid().as_raw();
    if uid == 0 || (UID_MIN..UID_NOBODY).contains(&uid) {
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            homes.push(PathBuf::from(home));
        }
    }
    let real: Vec<PathBuf> = homes
        .iter()
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .collect();
    homes.extend(real);
    homes.sort();
    homes.dedup();
    homes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_homes_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      # a comment\n\
                      mirror:x:998:998::/var/lib/git/mirror:/bin/sh\n\
                      alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      broken line\n\
                      bob:x:1001:1001::relative:/bin/sh\n";
        assert_eq!(
            homes_from_passwd(passwd),
            vec![PathBuf::from("/root"), PathBuf::from("/home/alice")]
        );
    }

    #[test]
    fn wide_top_levels_are_named() {
        let homes = [
            PathBuf::from("/root"),
            PathBuf::from("/home/alice"),
            PathBuf::from("/"),
        ];
        let wide = |p: &str| too_wide(Path::new(p), &homes);
        assert_eq!(wide("/").unwrap(), "it is the root of the file system");
        assert_eq!(wide("/root").unwrap(), "it is a home directory");
        assert_eq!(wide("/home/alice").unwrap(), "it is a home directory");
        assert_eq!(
            wide("/home").unwrap(),
            "it contains the home directory /home/alice"
        );
        // Below a home, or beside one, is a normal top level; a home of
        // "/" (some service accounts) does not make everything wide.
        assert_eq!(wide("/home/alice/mirror"), None);
        assert_eq!(wide("/home/alicia"), None);
        assert_eq!(wide("/var/lib/git/mirror"), None);
        assert_eq!(wide("/var/lib/git"), None);
        assert_eq!(too_wide(Path::new("/srv/git"), &[]), None);
    }

    #[test]
    fn unusable_top_levels() {
        let p = |is_dir, readable, writable| Probe {
            is_dir,
            readable,
            writable,
        };
        assert_eq!(unusable(p(true, true, true), Need::ReadWrite), None);
        assert_eq!(unusable(p(true, true, false), Need::Read), None);
        assert_eq!(
            unusable(p(true, true, false), Need::ReadWrite),
            Some("it cannot be written to")
        );
        assert_eq!(
            unusable(p(true, false, true), Need::Read),
            Some("it cannot be read")
        );
        assert_eq!(
            unusable(p(false, true, true), Need::Read),
            Some("it is not a directory")
        );
    }

    #[test]
    fn check_puts_it_together() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(check(&real, Need::ReadWrite, false), Ok(()));
        let file = real.join("f");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(
            check(&file, Need::Read, true),
            Err(Refusal::Unusable("it is not a directory"))
        );
        assert!(matches!(
            check(Path::new("/"), Need::Read, false),
            Err(Refusal::TooWide(_))
        ));
        assert_eq!(check(Path::new("/"), Need::Read, true), Ok(()));
    }

    #[test]
    fn probes_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let pr = probe(dir.path());
        assert!(pr.is_dir && pr.readable && pr.writable);
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(!probe(&file).is_dir);
    }
}
