//! contrib/selinux: the policy module compiles with the reference policy's
//! devel Makefile (Debian's selinux-policy-dev; EL's selinux-policy-devel
//! ships the same Makefile), and the file contexts packed into it label
//! every program, the log folder and the mirror user's home.

use super::*;

/// `make -f /usr/share/selinux/devel/Makefile grokmirror.pp` on copies of
/// the module's files in `dir`, with `edit` applied to the .te first.
fn compile(dir: &Path, edit: impl Fn(String) -> String) -> Output {
    install_tools();
    let makefile = Path::new("/usr/share/selinux/devel/Makefile");
    assert!(
        makefile.is_file(),
        "{} IS NOT INSTALLED (Debian: apt-get install selinux-policy-dev) — \
         scripts/setup-test-tools does this as root",
        makefile.display()
    );
    tool("checkpolicy");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["grokmirror.te", "grokmirror.fc", "grokmirror.if"] {
        let mut text = read(&contrib(&format!("selinux/{f}")));
        if f.ends_with(".te") {
            text = edit(text);
        }
        std::fs::write(dir.join(f), text).unwrap();
    }
    run(Command::new("make")
        .arg("-f")
        .arg(makefile)
        .arg("grokmirror.pp")
        .current_dir(dir))
}

/// The file contexts inside a compiled module: (path regex, context).
fn packed_file_contexts(pp: &Path, dir: &Path) -> Vec<(String, String)> {
    let (module, fc) = (dir.join("unpacked.mod"), dir.join("unpacked.fc"));
    run_ok(
        Command::new(tool("semodule_unpackage"))
            .arg(pp)
            .arg(&module)
            .arg(&fc),
    );
    assert!(
        std::fs::metadata(&module).unwrap().len() > 0,
        "empty policy module"
    );
    read(&fc)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields[0].to_string(), fields.last().unwrap().to_string())
        })
        .collect()
}

#[test]
fn selinux_module_compiles_and_labels_every_program() {
    let shipped = Shipped::read();
    let tmp = tempfile::tempdir().unwrap();
    let out = compile(&tmp.path().join("ok"), |te| te);
    assert_success!(out, "compiling contrib/selinux");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.to_lowercase().contains("warning"), "{stderr}");
    let pp = tmp.path().join("ok/grokmirror.pp");
    assert!(
        pp.is_file(),
        "make made no grokmirror.pp:\n{}",
        output_text(&out)
    );

    let contexts = packed_file_contexts(&pp, tmp.path());
    let label = |path: &str| {
        contexts
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.as_str())
            .unwrap_or_else(|| panic!("grokmirror.fc does not label {path}: {contexts:?}"))
    };
    // The programs the units start get the domain; every other one is
    // named too, so a new program is a decision, not an accident.
    let daemons: Vec<String> = shipped
        .units
        .iter()
        .filter_map(|u| {
            read(&contrib(&format!("systemd/{u}")))
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/"))
                .map(|cmd| cmd.split_whitespace().next().unwrap().to_string())
        })
        .collect();
    assert_eq!(daemons, ["grok-fsck", "grok-pull"]);
    for p in &shipped.programs {
        let want = if daemons.contains(p) {
            "grokmirror_exec_t"
        } else {
            "bin_t"
        };
        assert_eq!(
            label(&format!("/usr/bin/{p}")),
            format!("system_u:object_r:{want}:s0"),
            "/usr/bin/{p}"
        );
    }
    // The folders the packages make: the mirror user's home and the logs.
    assert_eq!(
        label("/var/log/grokmirror(/.*)?"),
        "system_u:object_r:grokmirror_log_t:s0"
    );
    assert_eq!(
        label("/var/lib/grokmirror(/.*)?"),
        "system_u:object_r:grokmirror_var_lib_t:s0"
    );
    for script in [contrib("debian/postinst"), spec_path()] {
        assert!(
            read(&script).contains("--home-dir /var/lib/grokmirror")
                || read(&script).contains("--home-dir %{_localstatedir}/lib/grokmirror"),
            "{} makes the mirror user's home somewhere grokmirror.fc does not label",
            script.display()
        );
    }

    // The compile can fail: an interface the policy does not have is an error.
    let out = compile(&tmp.path().join("broken"), |te| {
        te.replace(
            "corecmd_exec_bin(grokmirror_t)",
            "corecmd_exec_bni(grokmirror_t)",
        )
    });
    assert!(
        !out.status.success() && !tmp.path().join("broken/grokmirror.pp").exists(),
        "a misspelt interface compiled:\n{}",
        output_text(&out)
    );
}

fn spec_path() -> PathBuf {
    contrib("rpm/grokmirror-rs.spec")
}
