//! The .deb: built by cargo-deb from the binaries the tests use, its
//! contents and control fields checked, then installed with dpkg, used,
//! and purged.

use super::*;

const PACKAGE: &str = "grokmirror-rs";

/// Build the .deb into `out` with `cargo deb`, from stripped copies of the
/// debug binaries: cargo-deb takes `target/release/NAME` from the target
/// dir it is given, so a scratch target dir holding `release/NAME` stands
/// for a release build without making one (and without cargo-deb's
/// deprecated dev-profile mode).
fn build_deb(shipped: &Shipped, scratch: &Path, out: &Path) -> PathBuf {
    let target = scratch.join("target");
    stripped_binaries(shipped, &target.join("release"));
    install_tools();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let result = run(Command::new(&cargo)
        .args([
            "deb",
            "--no-build",
            "--no-strip",
            "--no-dbgsym",
            "--fast",
            "--quiet",
        ])
        .arg("--output")
        .arg(out)
        .current_dir(support::workspace_root())
        .env("CARGO_TARGET_DIR", &target));
    assert!(
        result.status.success(),
        "cargo deb failed (scripts/setup-test-tools installs cargo-deb):\n{}",
        output_text(&result)
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "cargo deb made {debs:?}");
    debs.into_iter().next().unwrap()
}

/// `dpkg-deb -c`: every file (not directory) in the package, as an
/// absolute path, with its mode string.
fn deb_files(deb: &Path) -> Vec<(String, String)> {
    let listing = run_ok(Command::new(tool("dpkg-deb")).arg("-c").arg(deb));
    listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let path = fields.last().unwrap().trim_start_matches('.');
            (path.to_string(), fields[0].to_string())
        })
        .collect()
}

fn deb_field(deb: &Path, field: &str) -> String {
    run_ok(Command::new(tool("dpkg-deb")).arg("-f").arg(deb).arg(field))
        .trim()
        .to_string()
}

/// dpkg's status of the package (`install ok installed`, ...), if it
/// knows the package at all.
fn status() -> Option<String> {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn installed() -> bool {
    status().is_some_and(|s| s == "install ok installed")
}

/// Anything of the package on the system: installed, half-configured
/// after a failed postinst, or its conffiles left by a removal.
fn present() -> bool {
    status().is_some_and(|s| !s.ends_with("not-installed"))
}

/// Run dpkg, waiting up to a minute for its lock while someone else's
/// apt or dpkg holds it (dpkg itself gives up at once).
fn dpkg(args: &[&std::ffi::OsStr]) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = run(Command::new(tool("dpkg"))
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        let locked = String::from_utf8_lossy(&out.stderr).contains("lock");
        if out.status.success() || !locked || std::time::Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// Purges the package when dropped, so a failed assertion or a failed
/// postinst after `dpkg -i` does not leave it on the test machine.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if present() {
            let _ = Command::new("dpkg")
                .args(["--purge", PACKAGE])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
        }
    }
}

#[test]
fn deb_ships_every_program_page_completion_and_unit_and_installs() {
    let shipped = Shipped::read();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let deb = build_deb(&shipped, tmp.path(), &out);

    // The contents: everything at the path Debian expects, man pages
    // gzipped (policy 12.1), nothing outside the expected folders.
    let files = deb_files(&deb);
    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let mut expected = shipped.layout(
        "/usr/share/zsh/vendor-completions",
        "/lib/systemd/system",
        ".gz",
    );
    expected.extend(
        [
            "README.md",
            "copyright",
            "changelog.Debian.gz",
            "examples/grokmirror.conf.example",
            "examples/pi-piper.conf.example",
            "examples/hooks/post-receive",
        ]
        .map(|f| format!("/usr/share/doc/{PACKAGE}/{f}")),
    );
    let absent = missing(&expected, &paths);
    assert!(
        absent.is_empty(),
        "the .deb lacks {absent:?}; it has {paths:#?}"
    );
    for (path, mode) in &files {
        assert!(
            [
                "/usr/bin/",
                "/usr/share/",
                "/lib/systemd/system/",
                "/etc/logrotate.d/"
            ]
            .iter()
            .any(|d| path.starts_with(d)),
            "{path} is outside the folders a package of ours writes"
        );
        let want = if path.starts_with("/usr/bin/")
            || path.contains("/examples/hooks/")
            || path.contains("/examples/gitolite/")
        {
            "-rwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert_eq!(mode, want, "{path}");
    }

    // The control fields operators and apt rely on.
    assert_eq!(deb_field(&deb, "Package"), PACKAGE);
    let depends = deb_field(&deb, "Depends");
    assert!(depends.contains("git (>= 1:2.39)"), "Depends: {depends}");
    assert!(
        depends.contains("libc6"),
        "no shared-library dependency: {depends}"
    );
    for field in ["Conflicts", "Replaces"] {
        let v = deb_field(&deb, field);
        assert!(
            v.contains("python3-grokmirror") && v.contains("grokmirror,"),
            "{field}: {v}"
        );
    }
    let control = tmp.path().join("control");
    run_ok(
        Command::new(tool("dpkg-deb"))
            .arg("-e")
            .arg(&deb)
            .arg(&control),
    );
    // The maintainer scripts made it in, executable.
    for script in ["postinst", "postrm"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(control.join(script))
            .unwrap_or_else(|e| panic!("the .deb has no {script}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is not executable");
        assert_eq!(
            read(&control.join(script)),
            read(&contrib(&format!("debian/{script}")))
        );
    }
    assert_eq!(
        read(&control.join("conffiles")).trim(),
        "/etc/logrotate.d/grokmirror"
    );

    // The changelog dpkg shows is this version's (cargo-deb's revision 1).
    let changelog = read(&contrib("debian/changelog"));
    let top = format!("{PACKAGE} ({}-1) ", env!("CARGO_PKG_VERSION"));
    assert!(
        changelog.starts_with(&top),
        "contrib/debian/changelog does not start with {top:?}: add an entry for the new version"
    );

    // Debian policy, as lintian checks it. Not for an upload to Debian's
    // archive: an initial upload closing no ITP bug does not apply.
    let out = run(Command::new(tool("lintian"))
        .args(["--no-cfg", "--fail-on", "error,warning"])
        .args(["--suppress-tags", "initial-upload-closes-no-bugs"])
        .arg(&deb));
    let text = output_text(&out);
    assert!(
        out.status.success() && !text.contains("\nE: ") && !text.contains("\nW: "),
        "lintian finds fault with the .deb:\n{text}"
    );

    install_and_purge(&deb, &shipped, &paths);
}

/// `dpkg -i`, look at what it put on the system, `dpkg --purge`, look
/// again. Root only (CI runs as root): anywhere else this fails, as a
/// check that cannot run must not pass.
fn install_and_purge(deb: &Path, shipped: &Shipped, paths: &[String]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "installing the .deb needs root (CI runs the tests as root): run the tests as root"
    );
    assert!(
        !present(),
        "{PACKAGE} is already installed on this machine; this test installs and purges it. \
         Remove it first (dpkg --purge {PACKAGE}) if it is a leftover of a killed run"
    );
    let dirs = ["/var/log/grokmirror", "/var/lib/grokmirror"];
    let dirs_before: Vec<bool> = dirs.iter().map(|d| Path::new(d).exists()).collect();
    let guard = Installed;
    // --path-include overrides a dpkg.cfg.d that drops man pages and docs
    // (minimal container images): the test looks for them below.
    let out = dpkg(&["--path-include=/*".as_ref(), "-i".as_ref(), deb.as_os_str()]);
    assert_success!(out, "dpkg -i");
    assert!(
        installed(),
        "dpkg -i succeeded but {PACKAGE} is not installed"
    );

    for p in paths {
        assert!(Path::new(p).is_file(), "dpkg -i did not install {p}");
    }
    for p in &shipped.programs {
        let out = run_ok(Command::new(format!("/usr/bin/{p}")).arg("--version"));
        assert!(
            out.starts_with(&format!("{p} {}", env!("CARGO_PKG_VERSION"))),
            "{p} --version: {out}"
        );
    }
    for page in shipped.man_pages.iter().filter_map(|m| m.rsplit_once('.')) {
        let (name, section) = page;
        let found = run_ok(Command::new(tool("man")).args(["-w", section, name]));
        assert_eq!(
            found.trim(),
            format!("/usr/share/man/man{section}/{name}.{section}.gz")
        );
    }
    // The bash completion, loaded as bash-completion loads it, registers
    // a completion for the program's name.
    let out =
        run_ok(Command::new("bash").arg("-c").arg(
            "source /usr/share/bash-completion/completions/grok-pull && complete -p grok-pull",
        ));
    assert!(out.contains("grok-pull"), "{out}");
    // postinst: the user the units run as, and its folders.
    let passwd = run_ok(Command::new("getent").args(["passwd", "mirror"]));
    assert!(passwd.starts_with("mirror:"), "{passwd}");
    for (d, existed) in dirs.iter().zip(&dirs_before) {
        if !existed {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let meta = std::fs::metadata(d).unwrap_or_else(|e| panic!("postinst made no {d}: {e}"));
            assert_eq!(meta.permissions().mode() & 0o7777, 0o750, "{d}");
            let uid = nix::unistd::User::from_name("mirror").unwrap().unwrap().uid;
            assert_eq!(meta.uid(), uid.as_raw(), "{d} is not the mirror user's");
        }
    }

    let out = dpkg(&["--purge".as_ref(), PACKAGE.as_ref()]);
    assert_success!(out, "dpkg --purge");
    assert!(
        !present(),
        "{PACKAGE} still known to dpkg after --purge: {:?}",
        status()
    );
    for p in paths {
        assert!(!Path::new(p).exists(), "{p} left behind by dpkg --purge");
    }
    for (d, existed) in dirs.iter().zip(&dirs_before) {
        if !existed {
            assert!(!Path::new(d).exists(), "postrm purge left the empty {d}");
        }
    }
    drop(guard);
}
