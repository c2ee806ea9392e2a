//! The packages operators install: the .deb that `cargo deb` builds from
//! Cargo.toml's `[package.metadata.deb]` (built from the debug binaries,
//! checked with dpkg-deb, installed with `dpkg -i` and purged), the RPM spec
//! (expanded with rpmspec and built with rpmbuild from the same binaries),
//! and the SELinux module (compiled against the reference policy's devel
//! Makefile). Each is checked against one list of what must ship: every
//! `[[bin]]` of Cargo.toml and every file in man/ and completions/, so a
//! new program that is not packaged fails here.

use super::*;

mod deb;
mod rpm;
mod selinux;

/// What every package must ship, read from the sources of truth: the
/// `[[bin]]` names of the root Cargo.toml, the generated man/ pages and
/// the completions/ files.
struct Shipped {
    programs: Vec<String>,
    /// File names in man/, e.g. `grok-pull.1`, `grokmirror.conf.5`.
    man_pages: Vec<String>,
    /// File names in completions/: `grok-pull.bash`, `_grok-pull`, `grok-pull.fish`.
    completions: Vec<String>,
    units: Vec<String>,
}

impl Shipped {
    fn read() -> Shipped {
        let root = support::workspace_root();
        let programs = bin_names(&read(&root.join("Cargo.toml")));
        assert!(
            programs.iter().any(|p| p == "grok-pull") && programs.len() >= 8,
            "Cargo.toml's [[bin]] list looks wrong: {programs:?}"
        );
        let shipped = Shipped {
            programs,
            man_pages: file_names(&root.join("man")),
            completions: file_names(&root.join("completions")),
            units: file_names(&contrib("systemd")),
        };
        // Every program has its page and its three completions, so the
        // package checks below cover every program through those too.
        for p in &shipped.programs {
            for f in [
                format!("{p}.1"),
                format!("{p}.bash"),
                format!("_{p}"),
                format!("{p}.fish"),
            ] {
                assert!(
                    shipped.man_pages.contains(&f) || shipped.completions.contains(&f),
                    "{p} has no {f} in man/ or completions/ (cargo xtask all)"
                );
            }
        }
        assert!(shipped.man_pages.iter().any(|m| m.ends_with(".5")));
        assert!(
            shipped.units.iter().any(|u| u == "grok-pull@.service"),
            "{:?}",
            shipped.units
        );
        shipped
    }

    /// Where each shipped file lands on a system, as absolute paths:
    /// `zsh` is the zsh completion folder of the distribution (Debian:
    /// vendor-completions, Fedora: site-functions), `units` the unit folder.
    fn layout(&self, zsh: &str, units: &str, man_suffix: &str) -> Vec<String> {
        let mut paths = Vec::new();
        for p in &self.programs {
            paths.push(format!("/usr/bin/{p}"));
        }
        for m in &self.man_pages {
            let section = m.rsplit('.').next().unwrap();
            paths.push(format!("/usr/share/man/man{section}/{m}{man_suffix}"));
        }
        for c in &self.completions {
            let path = if let Some(name) = c.strip_suffix(".bash") {
                // bash-completion loads completions/NAME for the command NAME.
                format!("/usr/share/bash-completion/completions/{name}")
            } else if c.ends_with(".fish") {
                format!("/usr/share/fish/vendor_completions.d/{c}")
            } else {
                assert!(c.starts_with('_'), "unexpected completions/{c}");
                format!("{zsh}/{c}")
            };
            paths.push(path);
        }
        for u in &self.units {
            paths.push(format!("{units}/{u}"));
        }
        paths.push("/etc/logrotate.d/grokmirror".to_string());
        paths
    }

    /// The directory holding the built binaries (the debug profile's).
    fn bindir() -> PathBuf {
        Path::new(env!("CARGO_BIN_EXE_grok-pull"))
            .parent()
            .unwrap()
            .to_path_buf()
    }
}

/// The `name`s of the `[[bin]]` tables of a Cargo.toml.
fn bin_names(cargo_toml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin {
            if let Some(v) = line.strip_prefix("name") {
                let v = v.trim_start().strip_prefix('=').expect("name = ...");
                names.push(v.trim().trim_matches('"').to_string());
                in_bin = false;
            }
        }
    }
    names
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{} is empty", dir.display());
    names
}

/// The expected paths missing from `have`.
fn missing<'a>(expected: &'a [String], have: &[String]) -> Vec<&'a String> {
    expected.iter().filter(|p| !have.contains(p)).collect()
}

/// Strip debug info off the built binaries into `dir` (the packages carry
/// what a release would: no debug sections; hundreds of MB less to
/// compress).
fn stripped_binaries(shipped: &Shipped, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for p in &shipped.programs {
        let built = Shipped::bindir().join(p);
        assert!(
            built.is_file(),
            "{} was not built: is it a [[bin]] of the root package?",
            built.display()
        );
        run_ok(
            Command::new(tool("strip"))
                .arg("-o")
                .arg(dir.join(p))
                .arg(&built),
        );
    }
}

#[test]
fn bin_names_reads_every_bin_table() {
    let toml = "[package]\nname = \"x\"\n[[bin]]\nname = \"a\"\npath = \"a.rs\"\n\n[[bin]]\npath = \"b.rs\"\nname = \"b\"\n[dependencies]\nname = \"no\"\n";
    assert_eq!(bin_names(toml), ["a", "b"]);
    let have = vec!["/usr/bin/a".to_string()];
    let expected = vec!["/usr/bin/a".to_string(), "/usr/bin/b".to_string()];
    assert_eq!(missing(&expected, &have), [&expected[1]]);
}
