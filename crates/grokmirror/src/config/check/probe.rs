//! The disk's side of `--config-check`: whether the paths the options name
//! are what they must be. Looks only (`stat`, `access`): nothing is created,
//! opened for writing or locked.

use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

use super::{read_by, Problem, Severity};
use crate::config::ini::{self, Ini};
use crate::config::options::{pi_piper_options, Kind, PathUse};
use crate::config::{expand_user, Error};

/// Read and parse a config file, or the one problem that stops the check.
pub fn read_config(file: &Path) -> Result<Ini, Box<Problem>> {
    let whole =
        |message: String| Box::new(Problem::new(file, "", "", None, Severity::Error, message));
    let text = match std::fs::read(file) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(whole(Error::NotFound(file.to_path_buf()).to_string()))
        }
        Err(e) => return Err(whole(format!("cannot read it: {e}"))),
    };
    Ini::parse(&text).map_err(|e| whole(format!("{e}; fix the syntax (configparser's)")))
}

fn writable(path: &Path) -> bool {
    access(path, AccessFlags::W_OK).is_ok()
}

/// Whether the user this runs as may write into directory `dir`.
fn writable_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "its directory {} does not exist; create it",
            dir.display()
        ));
    }
    if !writable(dir) || access(dir, AccessFlags::X_OK).is_err() {
        return Err(format!(
            "its directory {} cannot be written to by the user this runs as; fix its permissions",
            dir.display()
        ));
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The program a command names, looked up in `PATH` when it has no `/`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| p.is_file() && access(p, AccessFlags::X_OK).is_ok();
    if program.contains('/') {
        let p = expand_user(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
}

/// What is wrong with `path` for `use_`, `None` when nothing is.
pub fn probe_path(path: &Path, use_: PathUse) -> Option<String> {
    match use_ {
        PathUse::WritableDir => {
            if !path.exists() {
                return Some("it does not exist; create it, or fix the path".into());
            }
            let probe = crate::tree::toplevel::probe(path);
            crate::tree::toplevel::unusable(probe, crate::tree::toplevel::Need::ReadWrite).map(
                |why| format!("{why}; fix the path, or its permissions for the user this runs as"),
            )
        }
        PathUse::DirOrCreatable => {
            if path.is_dir() {
                (!writable(path)).then(|| {
                    "it cannot be written to by the user this runs as; fix its permissions".into()
                })
            } else if path.exists() {
                Some("it is not a directory".into())
            } else {
                writable_dir(&parent_of(path)).err()
            }
        }
        PathUse::WrittenFile => {
            if path.is_dir() {
                Some("it is a directory; name a file".into())
            } else if path.exists() {
                (!writable(path)).then(|| {
                    "it cannot be written to by the user this runs as; fix its permissions".into()
                })
            } else {
                writable_dir(&parent_of(path)).err()
            }
        }
        PathUse::Executable => find_program(&path.to_string_lossy())
            .is_none()
            .then(|| "it is not an executable program; install it, or fix the path".into()),
    }
}

/// The first word of each command line that is not an executable program.
fn missing_programs(value: &str, path_lookup: bool) -> Option<String> {
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let expanded = expand_user(line);
        let Some(words) = shlex::split(&expanded.to_string_lossy()) else {
            continue; // the value check reports it
        };
        let Some(program) = words.first() else {
            continue;
        };
        let found = if path_lookup || program.contains('/') {
            find_program(program).is_some()
        } else {
            false
        };
        if !found {
            return Some(format!(
                "{program} is not an executable program; install it, or fix the command"
            ));
        }
    }
    None
}

fn probe_option(file: &Path, ini: &Ini, section: &str, key: &str, kind: Kind) -> Option<Problem> {
    let value = ini.get(section, key).ok().flatten()?;
    if value.trim().is_empty() {
        return None;
    }
    let why = match kind {
        Kind::Path(use_) => probe_path(&expand_user(value.trim()), use_),
        // grok-pull runs hooks by path, as grokmirror does.
        Kind::Commands => missing_programs(&value, false),
        Kind::CommandLine if value != "None" => missing_programs(&value, true),
        _ => None,
    }?;
    Some(Problem::new(
        file,
        section,
        key,
        Some(&value),
        Severity::Error,
        why,
    ))
}

/// Look at every path and program the options `program` reads name.
pub fn probe_paths(ini: &Ini, file: &Path, program: &str) -> Vec<Problem> {
    read_by(program)
        .filter(|o| ini.has_section(o.section))
        .filter_map(|o| probe_option(file, ini, o.section, o.key, o.kind))
        .collect()
}

/// Look at the paths and programs of a grok-pi-piper config, in every
/// section where they are written.
pub fn probe_pi_piper_paths(ini: &Ini, file: &Path) -> Vec<Problem> {
    let names = std::iter::once(ini::DEFAULT_SECTION).chain(ini.sections());
    let mut problems = Vec::new();
    for section in names {
        for key in ini.own_keys(section) {
            if let Some(opt) = pi_piper_options().iter().find(|o| o.key == key) {
                problems.extend(probe_option(file, ini, section, opt.key, opt.kind));
            }
        }
    }
    problems
}

/// Whether a `file://` origin manifest exists; the message says what to
/// do when it does not.
pub fn probe_file_url(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(_) => Some(format!("{} is not a file", path.display())),
        Err(e) => Some(format!(
            "{} cannot be read ({e}); is the origin's file system mounted?",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn paths_by_use() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(probe_path(d, PathUse::WritableDir), None);
        assert!(probe_path(&d.join("nope"), PathUse::WritableDir)
            .unwrap()
            .contains("does not exist"));
        assert_eq!(probe_path(&d.join("new"), PathUse::DirOrCreatable), None);
        assert!(probe_path(&d.join("a/b"), PathUse::DirOrCreatable).is_some());
        assert_eq!(probe_path(&d.join("m.js.gz"), PathUse::WrittenFile), None);
        assert!(probe_path(d, PathUse::WrittenFile)
            .unwrap()
            .contains("is a directory"));
        assert!(probe_path(&d.join("x/m.js"), PathUse::WrittenFile)
            .unwrap()
            .contains("does not exist"));
        assert_eq!(probe_path(Path::new("sh"), PathUse::Executable), None);
        assert!(probe_path(&d.join("tool"), PathUse::Executable).is_some());
        let ro = d.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        if !writable(&ro) {
            // (root writes anywhere: then there is nothing to see)
            assert!(probe_path(&ro, PathUse::WritableDir)
                .unwrap()
                .contains("cannot be written"));
            assert!(probe_path(&ro.join("log"), PathUse::WrittenFile).is_some());
        }
    }

    #[test]
    fn options_are_probed_by_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[core]\ntoplevel = {d}/missing\nlog = {d}/log\n[pull]\npost_update_hook = {d}/hook --x\n  /bin/sh -c true\n",
            d = dir.path().display()
        );
        let ini = Ini::parse(&text).unwrap();
        let p = probe_paths(&ini, Path::new("g.conf"), "grok-pull");
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["toplevel", "post_update_hook"], "{p:?}");
        assert!(p[1].message.contains("/hook is not an executable"), "{p:?}");
        assert!(probe_file_url(&dir.path().join("m.js")).is_some());
    }
}
