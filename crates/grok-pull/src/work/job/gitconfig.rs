//! A repository's settings, written in-process: the mirror remote,
//! description, owner and HEAD.

use std::fs;
use std::path::Path;

use grokmirror::formats::manifest::RepoEntry;
use grokmirror::git::Git;
use grokmirror::repo;
use grokmirror::repo::git_config::{self, Remote};
use grokmirror::tree::fsutil;

use super::Error;

/// Point the mirror remote at `url` (`git remote add --mirror=fetch`, with
/// a fetch refspec without `+` for ffonly repos). With `reset`, or when the
/// remote is missing or points elsewhere, any old definition goes first.
/// Returns whether anything changed.
pub(super) fn set_remote(
    path: &Path,
    name: &str,
    url: &str,
    ffonly: bool,
    reset: bool,
) -> Result<bool, Error> {
    let mut cfg = git_config::open(path)?;
    let remote = Remote {
        name,
        url,
        fetch: if ffonly {
            "refs/*:refs/*"
        } else {
            "+refs/*:refs/*"
        },
        tagopt: None,
    };
    if !reset && remote.is_in(&cfg) {
        return Ok(false);
    }
    remote.write(&mut cfg, path)?;
    Ok(true)
}

/// Make description, owner and HEAD what the manifest says (the owner
/// falls back to `[pull] default_owner`). Returns whether anything changed.
pub(super) fn apply_params(
    git: &Git,
    path: &Path,
    entry: &RepoEntry,
    default_owner: &str,
) -> Result<bool, Error> {
    let mut changed = false;
    if let Some(desc) = &entry.description {
        let file = path.join("description");
        changed |= fsutil::write_if_changed(&file, desc.as_bytes()).map_err(|cause| Error::Io {
            what: "write",
            path: file.clone(),
            cause,
        })?;
    }
    let owner = entry.owner.as_deref().unwrap_or(default_owner);
    let mut cfg = git_config::open(path)?;
    changed |= git_config::set(&mut cfg, path, "gitweb.owner", owner)?;
    if let Some(head) = &entry.head {
        changed |= set_head(git, path, head)?;
    }
    Ok(changed)
}

/// Point HEAD where the manifest says (already validated as `ref:
/// refs/...` or an object id).
fn set_head(git: &Git, path: &Path, head: &str) -> Result<bool, Error> {
    if path.join("reftable").is_dir() {
        // The HEAD file of a reftable repository is a placeholder; ask git.
        let current = repo::read_head(git, path);
        if current.as_deref() == Some(head) {
            return Ok(false);
        }
        let out = match head.strip_prefix("ref: ") {
            Some(target) => git.run(Some(path), ["symbolic-ref", "HEAD", target]),
            None => git.run(Some(path), ["update-ref", "--no-deref", "HEAD", head]),
        }?;
        if !out.success() {
            return Err(Error::SetHead {
                path: path.to_path_buf(),
                stderr: out.stderr_str(),
            });
        }
        return Ok(true);
    }
    let file = path.join("HEAD");
    let current = fs::read_to_string(&file).unwrap_or_default();
    if current.trim_end() == head {
        return Ok(false);
    }
    fsutil::write_atomic(&file, format!("{head}\n").as_bytes()).map_err(|cause| Error::Io {
        what: "write",
        path: file,
        cause,
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_settings_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r.git");
        Git::from_env()
            .run_ok(None, ["init", "-q", "--bare", r.to_str().unwrap()])
            .unwrap();
        assert!(set_remote(&r, "_grokmirror", "https://o/x.git", false, false).unwrap());
        assert!(!set_remote(&r, "_grokmirror", "https://o/x.git", false, false).unwrap());
        assert!(set_remote(&r, "_grokmirror", "https://o/x.git", true, false).unwrap());
        let git = Git::from_env();
        let out = git
            .run_ok(
                Some(&r),
                ["config", "--get-all", "remote._grokmirror.fetch"],
            )
            .unwrap();
        assert_eq!(out.stdout_str(), "refs/*:refs/*");
        assert!(set_remote(&r, "_grokmirror", "https://n/x.git", false, false).unwrap());
        let out = git
            .run_ok(Some(&r), ["config", "--get", "remote._grokmirror.url"])
            .unwrap();
        assert_eq!(out.stdout_str(), "https://n/x.git");
        let out = git.run_ok(Some(&r), ["remote"]).unwrap();
        assert_eq!(out.stdout_str(), "_grokmirror");

        let entry = RepoEntry {
            description: Some("A \"quoted\" repo".into()),
            owner: None,
            head: Some("ref: refs/heads/trunk".into()),
            ..Default::default()
        };
        assert!(apply_params(&git, &r, &entry, "Mirror Admin").unwrap());
        assert!(!apply_params(&git, &r, &entry, "Mirror Admin").unwrap());
        let out = git
            .run_ok(Some(&r), ["config", "--get", "gitweb.owner"])
            .unwrap();
        assert_eq!(out.stdout_str(), "Mirror Admin");
        assert_eq!(
            fs::read_to_string(r.join("HEAD")).unwrap(),
            "ref: refs/heads/trunk\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("description")).unwrap(),
            "A \"quoted\" repo"
        );
    }
}
