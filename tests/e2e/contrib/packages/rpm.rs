//! contrib/rpm/grokmirror-rs.spec: expanded with rpmspec, then built for
//! real with rpmbuild from the binaries the tests use (its `prebuilt`
//! mode), and the package's file list checked as the .deb's is.

use super::*;

fn spec() -> PathBuf {
    contrib("rpm/grokmirror-rs.spec")
}

/// The lines of one section (`%files`, `%install`, ...) of an expanded
/// spec, up to the next section.
fn section<'a>(expanded: &'a str, name: &str) -> Vec<&'a str> {
    const SECTIONS: &[&str] = &[
        "%prep",
        "%build",
        "%install",
        "%check",
        "%pre",
        "%post",
        "%preun",
        "%postun",
        "%files",
        "%changelog",
        "%description",
        "%package",
    ];
    expanded
        .lines()
        .skip_while(|l| l.trim() != name)
        .skip(1)
        .take_while(|l| !SECTIONS.contains(&l.split_whitespace().next().unwrap_or("")))
        .collect()
}

#[test]
fn rpm_spec_expands_and_builds_with_every_program_page_completion_and_unit() {
    let shipped = Shipped::read();
    let expanded = run_ok(Command::new(tool("rpmspec")).arg("-P").arg(spec()));

    // %install loops over %{programs}: it must be the [[bin]] list.
    let install = section(&expanded, "%install");
    let each = install
        .iter()
        .find_map(|l| l.trim().strip_prefix("for p in "))
        .expect("%install loops over the programs");
    let looped: Vec<&str> = each.trim_end_matches("; do").split_whitespace().collect();
    assert_eq!(
        looped, shipped.programs,
        "%{{programs}} in the spec is not Cargo.toml's [[bin]] list"
    );

    // %files names every file explicitly (globs only for the man pages'
    // compression suffix), at Fedora's paths.
    let files: Vec<String> = section(&expanded, "%files")
        .iter()
        .map(|l| {
            l.split_whitespace()
                .last()
                .unwrap_or("")
                .trim_end_matches('*')
                .to_string()
        })
        .collect();
    let expected = shipped.layout(
        "/usr/share/zsh/site-functions",
        "/usr/lib/systemd/system",
        "",
    );
    let absent = missing(&expected, &files);
    assert!(absent.is_empty(), "%files lacks {absent:?}:\n{files:#?}");
    assert!(
        expanded.contains("%config(noreplace) /etc/logrotate.d/grokmirror"),
        "the logrotate snippet is not a config file"
    );
    // The systemd scriptlets cover every unit (the macros are Fedora's;
    // Debian's rpm leaves them unexpanded, which shows their arguments).
    for scriptlet in ["%post", "%preun", "%postun"] {
        let body = section(&expanded, scriptlet).join("\n");
        for u in &shipped.units {
            assert!(body.contains(u), "{scriptlet} does not name {u}:\n{body}");
        }
    }

    // rpmbuild itself checks %files against %install: a file installed
    // but not listed, or listed but not installed, fails the build.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    stripped_binaries(&shipped, &bin);
    let out = run(Command::new(tool("rpmbuild"))
        .args(["-bb", "--build-in-place", "--nodeps", "--quiet"])
        .arg("--define")
        .arg(format!("_topdir {}", tmp.path().join("top").display()))
        .arg("--define")
        .arg(format!("prebuilt {}", bin.display()))
        // Fedora's systemd-rpm-macros are not on Debian: empty stand-ins.
        .args(["--define", "systemd_post() %{nil}"])
        .args(["--define", "systemd_preun() %{nil}"])
        .args(["--define", "systemd_postun() %{nil}"])
        .arg(spec())
        .current_dir(support::workspace_root()));
    assert_success!(out, "rpmbuild -bb");
    // RPMS/<arch>/NAME.rpm
    let rpms: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("top/RPMS"))
        .unwrap()
        .flat_map(|arch| std::fs::read_dir(arch.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rpms.len(), 1, "{rpms:?}");
    let rpm = &rpms[0];

    let query = |args: &[&str]| run_ok(Command::new(tool("rpm")).arg("-qp").args(args).arg(rpm));
    // Man pages may come out gzipped (Fedora's brp-compress) or not.
    let listed: Vec<String> = query(&["-l"])
        .lines()
        .map(|l| l.trim_end_matches(".gz").to_string())
        .collect();
    let absent = missing(&expected, &listed);
    assert!(
        absent.is_empty(),
        "the built RPM lacks {absent:?}:\n{listed:#?}"
    );
    assert_eq!(
        query(&["--configfiles"]).trim(),
        "/etc/logrotate.d/grokmirror"
    );
    let modes = query(&[
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]",
    ]);
    for d in ["/var/lib/grokmirror", "/var/log/grokmirror"] {
        assert!(
            modes
                .lines()
                .any(|l| l == format!("drwxr-x--- mirror:mirror {d}")),
            "{d} is not the mirror user's, mode 0750:\n{modes}"
        );
    }
    for p in &shipped.programs {
        assert!(
            modes
                .lines()
                .any(|l| l == format!("-rwxr-xr-x root:root /usr/bin/{p}")),
            "/usr/bin/{p} not an executable of root's:\n{modes}"
        );
    }
    let requires = query(&["--requires"]);
    assert!(
        requires.lines().any(|l| l == "git-core >= 2.39"),
        "{requires}"
    );
    assert!(query(&["--conflicts"]).contains("python3-grokmirror"));
    // %pre makes the user the units run as.
    let scripts = query(&["--scripts"]);
    assert!(
        scripts.contains("useradd --system --gid mirror"),
        "{scripts}"
    );
}
