//! contrib/selinux: the policy module compiles with the reference policy's
//! devel Makefile (Debian's selinux-policy-dev; EL's selinux-policy-devel
//! ships the same Makefile), the file contexts packed into it label every
//! program, the log folder and the mirror user's home, and it loads into a
//! scratch copy of Debian's whole policy (selinux-policy-default), with and
//! without the git module that EL's targeted policy enables, where the
//! rules it claims are checked with sesearch and selabel_lookup.

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
    assert_eq!(
        daemons,
        ["grok-fsck", "grok-pull"],
        "a unit starts another program: give it the domain in grokmirror.fc \
         (grokmirror_exec_t) and check grokmirror.te covers what it does"
    );
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

    // Loaded into Debian's policy as shipped (git module disabled, so the
    // optional block on git_sys_content_t drops out), then with the git
    // module enabled as on EL.
    let root = tmp.path().join("root");
    scratch_policy(&root);
    semodule(&root, &["-i", pp.to_str().unwrap()]);
    check_loaded_policy(&root, false);
    semodule(&root, &["-e", "git"]);
    check_loaded_policy(&root, true);

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

/// A copy of the installed policy store and policy under `root`, for
/// `semodule -p root`: what a `semodule -i` on the machine would build,
/// without touching the machine's own store.
fn scratch_policy(root: &Path) {
    let store = Path::new("/var/lib/selinux/default");
    assert!(
        store.join("active").is_dir(),
        "{} IS NOT INSTALLED (Debian: apt-get install selinux-policy-default) — \
         scripts/setup-test-tools does this as root",
        store.display()
    );
    for (from, to) in [
        ("/var/lib/selinux/default", "var/lib/selinux"),
        ("/etc/selinux/default", "etc/selinux"),
        ("/etc/selinux/semanage.conf", "etc/selinux"),
    ] {
        let to = root.join(to);
        std::fs::create_dir_all(&to).unwrap();
        run_ok(Command::new("cp").arg("-a").arg(from).arg(&to));
    }
}

fn semodule(root: &Path, args: &[&str]) {
    let out = run(Command::new(tool("semodule"))
        .arg("-p")
        .arg(root)
        .args(["-s", "default", "-n"])
        .args(args));
    assert_success!(out, "semodule {args:?}");
}

/// What the policy built in `root` says, checked against what
/// grokmirror.te claims; `git`: whether the git module is enabled.
fn check_loaded_policy(root: &Path, git: bool) {
    let policy_dir = root.join("etc/selinux/default/policy");
    let policy = std::fs::read_dir(&policy_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("policy.")
        })
        .expect("semodule built no policy");
    let sesearch = |args: &[&str]| run_ok(Command::new(tool("sesearch")).args(args).arg(&policy));
    // The units (init) and system cron jobs enter the domain.
    for caller in ["init_t", "system_cronjob_t"] {
        let t = sesearch(&[
            "-T",
            "-s",
            caller,
            "-t",
            "grokmirror_exec_t",
            "-c",
            "process",
        ]);
        assert!(
            t.contains("grokmirror_t"),
            "{caller} does not enter grokmirror_t:\n{t}"
        );
    }
    let logs = sesearch(&[
        "-A",
        "-s",
        "grokmirror_t",
        "-t",
        "grokmirror_log_t",
        "-c",
        "file",
    ]);
    assert!(logs.contains("create") && logs.contains("append"), "{logs}");
    let permissive = run_ok(
        Command::new(tool("seinfo"))
            .args(["--permissive", "-x"])
            .arg(&policy),
    );
    assert!(permissive.contains("grokmirror_t"), "{permissive}");
    let mirror_args = [
        "-A",
        "-s",
        "grokmirror_t",
        "-t",
        "git_sys_content_t",
        "-c",
        "file",
    ];
    if git {
        let mirror = sesearch(&mirror_args);
        assert!(
            mirror.contains("create") && mirror.contains("write"),
            "{mirror}"
        );
    } else {
        // The module linked although the type it manages is missing: the
        // optional block was left out, as meant.
        let out = run(Command::new(tool("sesearch"))
            .args(mirror_args)
            .arg(&policy));
        let text = output_text(&out);
        assert!(
            text.contains("git_sys_content_t is not a valid type"),
            "{text}"
        );
    }
    let file_contexts = root.join("etc/selinux/default/contexts/files/file_contexts");
    let lookup = |path: &str| {
        run_ok(
            Command::new(tool("selabel_lookup"))
                .args(["-b", "file", "-k", path, "-f"])
                .arg(&file_contexts),
        )
    };
    for (path, t) in [
        ("/usr/bin/grok-pull", "grokmirror_exec_t"),
        ("/usr/bin/grok-manifest", "bin_t"),
        ("/var/log/grokmirror/mirror.log", "grokmirror_log_t"),
        ("/var/lib/grokmirror/.netrc", "grokmirror_var_lib_t"),
        // The mirrors, the example config's top level: the git module's.
        (
            "/var/lib/git/mirror/pub/a.git",
            if git {
                "git_sys_content_t"
            } else {
                "var_lib_t"
            },
        ),
    ] {
        let found = lookup(path);
        assert!(found.contains(&format!(":{t}:")), "{path}: {found}");
    }
}

fn spec_path() -> PathBuf {
    contrib("rpm/grokmirror-rs.spec")
}
