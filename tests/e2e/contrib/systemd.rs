//! The systemd units and the logrotate snippet.

use super::*;

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let units = tmp.path().join("units");
    std::fs::create_dir(&units).unwrap();
    let names = units_for_verify(&units);

    // Documentation=man:... references resolve against our own pages.
    let manpath = tmp.path().join("man");
    let mut missing = Vec::new();
    for n in &names {
        let text = read(&units.join(n.replace("@mirror.", "@.")));
        for line in text.lines().filter(|l| l.starts_with("Documentation=")) {
            for r in line["Documentation=".len()..].split_whitespace() {
                let page = r.strip_prefix("man:").expect("only man: references");
                let (name, section) = page.trim_end_matches(')').split_once('(').unwrap();
                let file = format!("{name}.{section}");
                let src = support::workspace_root().join("man").join(&file);
                if src.is_file() {
                    let dir = manpath.join(format!("man{section}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::copy(&src, dir.join(&file)).unwrap();
                } else {
                    assert!(
                        PENDING_MAN_PAGES.contains(&file.as_str()),
                        "{n} refers to man:{page}, which man/ does not have"
                    );
                    missing.push(file);
                }
            }
        }
    }
    let out = verify(&units, &names, missing.is_empty(), &manpath);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify complains about contrib/systemd:\n{}",
        output_text(&out)
    );

    // The check can fail: a misspelt directive is reported.
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let names_b = units_for_verify(&broken);
    let f = broken.join("grok-pull@.service");
    std::fs::write(
        &f,
        read(&f).replace("ProtectSystem=strict", "ProtectSystme=strict"),
    )
    .unwrap();
    let out = verify(&broken, &names_b, false, &manpath);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ProtectSystme"),
        "verify did not notice a misspelt directive:\n{}",
        output_text(&out)
    );

    // The offline security review rates both services at most 2.0
    // ("OK"; 10 means no hardening at all).
    for service in ["grok-pull@mirror.service", "grok-fsck@mirror.service"] {
        let out = run(Command::new(tool("systemd-analyze"))
            .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
            .arg(format!("./{service}"))
            .current_dir(&units));
        assert!(
            out.status.success(),
            "{service} is less hardened than expected:\n{}",
            output_text(&out)
        );
    }
}

/// The settings the daemon and the operator rely on are there (verify only
/// says the units are well-formed, not that they say the right things).
#[test]
fn systemd_units_say_what_the_daemon_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let names = units_for_verify(tmp.path());
    let dump = |unit: &str| -> String {
        let text = read(&tmp.path().join(unit));
        let mut settings = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') && !line.starts_with('[') {
                settings.push(line.to_string());
            }
        }
        settings.join("\n")
    };
    let pull = dump("grok-pull@.service");
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/git/%i",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "User=mirror",
    ] {
        assert!(
            pull.lines().any(|l| l == want),
            "grok-pull@.service lacks {want}"
        );
    }
    assert!(pull.contains("WatchdogSec=") && pull.contains("TimeoutStopSec="));
    assert!(pull.contains(" -o -c /etc/grokmirror/%i.conf"));
    let fsck = dump("grok-fsck@.service");
    for want in [
        "Type=oneshot",
        "IOSchedulingClass=idle",
        "ProtectSystem=strict",
    ] {
        assert!(
            fsck.lines().any(|l| l == want),
            "grok-fsck@.service lacks {want}"
        );
    }
    let timer = dump("grok-fsck@.timer");
    for want in ["OnCalendar=weekly", "Persistent=true"] {
        assert!(
            timer.lines().any(|l| l == want),
            "grok-fsck@.timer lacks {want}"
        );
    }
    assert!(timer.contains("RandomizedDelaySec="));
    // systemd agrees "weekly" is a valid calendar spec.
    run_ok(Command::new(tool("systemd-analyze")).args(["calendar", "weekly"]));
    assert_eq!(names.len(), 3);
}

#[test]
fn logrotate_rotates_a_log_our_writer_follows() {
    use grokmirror_cli::logging::WatchedFile;

    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("log");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("mirror.log");

    // The shipped snippet, pointed at the temp dir and at the user running
    // the test (there is no "mirror" user here).
    let shipped = read(&contrib("logrotate/grokmirror"));
    assert!(shipped.contains("/var/log/grokmirror/*.log {"));
    let directives: Vec<&str> = shipped
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(!directives.iter().any(|l| l.starts_with("copytruncate")));
    assert!(directives.contains(&"delaycompress"));
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid).unwrap().unwrap().name;
    let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
        .unwrap()
        .unwrap()
        .name;
    let mut conf = shipped.replace(
        "/var/log/grokmirror/*.log",
        &format!("{}/*.log", logs.display()),
    );
    conf = if uid.is_root() {
        conf.replace("su mirror mirror", &format!("su {user} {group}"))
    } else {
        // Only root may switch users; a normal user rotates its own files.
        conf.replace("su mirror mirror", "")
    };
    let conf_file = tmp.path().join("logrotate.conf");
    std::fs::write(&conf_file, conf).unwrap();
    let state = tmp.path().join("state");
    let rotate = || {
        run_ok(
            Command::new(tool("logrotate"))
                .arg("--force")
                .arg("--state")
                .arg(&state)
                .arg(&conf_file),
        )
    };

    // A long-running writer (as the grok-pull daemon is) keeps its handle.
    let writer = WatchedFile::open(&log).unwrap();
    writer.write_line("line one\n").unwrap();
    rotate();
    writer.write_line("line two\n").unwrap();
    assert_eq!(read(&logs.join("mirror.log.1")), "line one\n");
    assert_eq!(
        read(&log),
        "line two\n",
        "the writer did not follow the rotation"
    );

    rotate();
    writer.write_line("line three\n").unwrap();
    assert_eq!(read(&log), "line three\n");
    assert_eq!(read(&logs.join("mirror.log.1")), "line two\n");
    // delaycompress: the older one is compressed one cycle later.
    let gz = std::fs::read(logs.join("mirror.log.2.gz")).unwrap();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "line one\n");
}
