//! What ships in contrib/ works, checked with the real tools: the systemd
//! units pass `systemd-analyze verify` (and its offline security review),
//! logrotate rotates a log our writer keeps following, the origin hook runs
//! on a real `git push`, the gitolite manifest command speaks the
//! manifest_command protocol to the reference grok-pull, and the Kubernetes
//! manifests parse, keep to the single-writer pattern, and their consumer
//! script clones from a mirror for real; the Grafana dashboard's queries
//! are PromQL (promtool) naming only metrics grok-pull exports.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::support::fixture::{commits, init_bare};
use crate::support::{git, grok, read_manifest_json, run, run_ok, show_ref_sha1, stderr_of};
use yaml_rust2::{Yaml, YamlLoader};

fn contrib(rel: &str) -> PathBuf {
    support::workspace_root().join("contrib").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Install the system tools these tests drive (scripts/setup-test-tools,
/// once, under a lock) and return the path of `name`. Panics when the
/// tool cannot be had: these checks must never pass by not running.
fn tool(name: &str) -> PathBuf {
    static SETUP: OnceLock<()> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = support::workspace_root();
        let lock = root.join("target/.test-tools-install.lock");
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        let _guard = grokmirror::lock::acquire(&lock, grokmirror::lock::Wait::Forever)
            .expect("lock tool install");
        let status = Command::new(root.join("scripts/setup-test-tools"))
            .status()
            .expect("run scripts/setup-test-tools");
        assert!(
            status.success(),
            "scripts/setup-test-tools could not install the tools tests/e2e/contrib.rs needs"
        );
    });
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} IS NOT INSTALLED: the contrib checks that need it cannot run. \
                 Install it (Debian: apt-get install {}) — scripts/setup-test-tools \
                 does this as root",
                if name == "systemd-analyze" {
                    "systemd"
                } else {
                    name
                }
            )
        })
}

fn output_text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------------ systemd

/// Man pages the units name that are not generated yet because their
/// program's CLI is not in `xtask::programs()` yet (none left: every `man:`
/// reference is checked).
const PENDING_MAN_PAGES: &[&str] = &[];

/// The shipped units, copied into `dir` with ExecStart pointing at the
/// binaries cargo built (verify insists the command exists and is
/// executable; /usr/bin/grok-* is not installed on a test machine).
fn units_for_verify(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for (file, program, exe) in [
        (
            "grok-pull@.service",
            "grok-pull",
            env!("CARGO_BIN_EXE_grok-pull"),
        ),
        (
            "grok-fsck@.service",
            "grok-fsck",
            env!("CARGO_BIN_EXE_grok-fsck"),
        ),
        ("grok-fsck@.timer", "", ""),
    ] {
        let mut text = read(&contrib(&format!("systemd/{file}")));
        if !program.is_empty() {
            let shipped = format!("ExecStart=/usr/bin/{program} ");
            assert!(text.contains(&shipped), "{file}: expected {shipped:?}");
            text = text.replace(&shipped, &format!("ExecStart={exe} "));
        }
        std::fs::write(dir.join(file), text).unwrap();
        // verify checks instances of templates; "mirror" stands for %i.
        names.push(file.replace("@.", "@mirror."));
    }
    names
}

/// `systemd-analyze verify` on the units in `dir`. It exits 0 even for
/// unknown directives or unparsable values (it only warns), so anything it
/// prints counts as a failure too.
fn verify(dir: &Path, names: &[String], man: bool, manpath: &Path) -> Output {
    let mut cmd = Command::new(tool("systemd-analyze"));
    cmd.arg("verify")
        .arg(format!("--man={}", if man { "yes" } else { "no" }))
        .current_dir(dir)
        .env("MANPATH", manpath)
        .env("SYSTEMD_LOG_COLOR", "0");
    for n in names {
        cmd.arg(format!("./{n}"));
    }
    run(&mut cmd)
}

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

// ---------------------------------------------------------------- logrotate

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

// ------------------------------------------------------- origin post-receive

/// An origin: a top level with repositories, a config, and the shipped hook
/// linked into each repository.
struct Origin {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    config: PathBuf,
    source: PathBuf,
}

impl Origin {
    fn new(repos: &[&str]) -> Origin {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("top");
        let source = init_bare(&tmp.path().join("source.git"));
        commits(&source, "main", 3, 1_600_000_000);
        for r in repos {
            let repo = init_bare(&top.join(r));
            run_ok(support::git_cmd(Some(&source)).args([
                "push",
                "-q",
                repo.to_str().unwrap(),
                "main",
            ]));
        }
        let config = support::write_config(
            tmp.path(),
            "origin.conf",
            &format!(
                "[core]\ntoplevel = {}\nmanifest = ${{toplevel}}/manifest.js.gz\nlog = {}/grok.log\n",
                top.display(),
                tmp.path().display()
            ),
        );
        // The initial full manifest, as the hook's comments tell operators.
        run_ok(grok("grok-manifest").arg("--cfgfile").arg(&config));
        // One shared hook script, symlinked into every repository.
        for r in repos {
            let hook = top.join(r).join("hooks/post-receive");
            std::os::unix::fs::symlink(contrib("hooks/post-receive"), &hook).unwrap();
        }
        Origin {
            _tmp: tmp,
            top,
            config,
            source,
        }
    }

    /// `git push` from the source repo into `repo`, with the hook's
    /// environment; returns the push output.
    fn push(&self, repo: &str, branch: &str, config: &Path) -> Output {
        let bindir = Path::new(env!("CARGO_BIN_EXE_grok-manifest"))
            .parent()
            .unwrap();
        let path = format!(
            "{}:{}",
            bindir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        run(support::git_cmd(Some(&self.source))
            .args(["push", "-q"])
            .arg(self.top.join(repo))
            .arg(format!("{branch}:{branch}"))
            .env("PATH", path)
            .env("GITBIN", support::git_binary())
            .env("GROK_MANIFEST_CONFIG", config))
    }
}

#[test]
fn post_receive_hook_updates_the_manifest_on_push() {
    let mode = std::fs::metadata(contrib("hooks/post-receive")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert!(
        mode.permissions().mode() & 0o111 != 0,
        "hook is not executable"
    );

    let origin = Origin::new(&["a/one.git", "b/two.git"]);
    let before = read_manifest_json(&origin.top.join("manifest.js.gz"));
    let old_modified = before["/a/one.git"]["modified"].as_i64().unwrap();
    assert_eq!(old_modified, 1_600_000_120);

    // New work on two branches, pushed to both repositories at once: the
    // two hooks race for the manifest and neither update may be lost.
    commits(&origin.source, "topic", 2, 1_600_001_000);
    let pushes: Vec<Output> = std::thread::scope(|s| {
        let h1 = s.spawn(|| origin.push("a/one.git", "topic", &origin.config));
        let h2 = s.spawn(|| origin.push("b/two.git", "topic", &origin.config));
        vec![h1.join().unwrap(), h2.join().unwrap()]
    });
    for out in &pushes {
        assert!(out.status.success(), "push failed:\n{}", output_text(out));
        assert!(
            !stderr_of(out).contains("grokmirror:"),
            "hook complained:\n{}",
            output_text(out)
        );
    }
    let after = read_manifest_json(&origin.top.join("manifest.js.gz"));
    for repo in ["a/one.git", "b/two.git"] {
        let entry = &after[format!("/{repo}")];
        assert_eq!(
            entry["fingerprint"],
            show_ref_sha1(&origin.top.join(repo)),
            "{repo}: manifest not updated by the hook"
        );
        assert_ne!(
            entry["fingerprint"],
            before[format!("/{repo}")]["fingerprint"]
        );
        // -n: "modified" is the time of the push, not of the commits.
        assert!(entry["modified"].as_i64().unwrap() > 1_700_000_000);
    }
    assert_eq!(after.as_object().unwrap().len(), 2);
}

#[test]
fn post_receive_hook_failure_keeps_the_push_and_says_why() {
    let origin = Origin::new(&["only.git"]);
    let before = read_manifest_json(&origin.top.join("manifest.js.gz"));
    commits(&origin.source, "main", 1, 1_600_002_000);
    let missing = origin.top.join("no-such.conf");
    let out = origin.push("only.git", "main", &missing);
    assert!(
        out.status.success(),
        "push must not fail:\n{}",
        output_text(&out)
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("grokmirror: post-receive: config") && err.contains("no-such.conf"),
        "{err}"
    );
    // The ref moved, the manifest was left alone.
    assert_eq!(
        git(Some(&origin.top.join("only.git")), &["rev-parse", "main"]),
        git(Some(&origin.source), &["rev-parse", "main"])
    );
    assert_eq!(
        read_manifest_json(&origin.top.join("manifest.js.gz")),
        before
    );
}

// ------------------------------------------------------------------ gitolite

/// Run the replica-side manifest command, its ssh replaced by a transport
/// that runs the gitolite command on this machine as gitolite-shell would
/// (no sshd or gitolite here: the two scripts are what is under test).
fn gl_manifest(dir: &Path, manifest: &Path, gl_user: &str, args: &[&str]) -> Output {
    let transport = dir.join("local-ssh");
    if !transport.exists() {
        support::script(
            &transport,
            &format!(
                "# stand-in for `ssh HOST COMMAND ARGS...`\nshift\ncmd=$1; shift\nexec \"{}/$cmd\" \"$@\"",
                contrib("gitolite").display()
            ),
        );
    }
    run(Command::new(contrib("gitolite/grok-get-gl-manifest.sh"))
        .args(args)
        .env("GROK_GL_REMOTE", "git@origin.invalid")
        .env("GROK_GL_SSH", &transport)
        .env("GROK_GL_STATE", dir.join("state/last.mtime"))
        .env("GROK_MANIFEST", manifest)
        .env("GROK_MANIFEST_READERS", "mirror1 mirror2")
        .env("GL_USER", gl_user))
}

fn set_mtime(path: &Path, secs: u64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

#[test]
fn gitolite_manifest_command_speaks_the_protocol() {
    let origin = Origin::new(&["pub/project.git"]);
    let manifest = origin.top.join("manifest.js.gz");
    set_mtime(&manifest, 1_700_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let expected = read_manifest_json(&manifest);

    // First call: the whole manifest, as JSON, exit 0.
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, expected);

    // Unchanged: exit 127 and nothing on stdout.
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &[]);
    assert_eq!(out.status.code(), Some(127), "{}", output_text(&out));
    assert!(out.stdout.is_empty());

    // --force: the manifest again.
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        expected
    );

    // The origin's manifest changes: the new one comes through.
    commits(&origin.source, "main", 1, 1_600_003_000);
    run_ok(support::git_cmd(Some(&origin.source)).args([
        "push",
        "-q",
        origin.top.join("pub/project.git").to_str().unwrap(),
        "main",
    ]));
    run_ok(grok("grok-manifest").arg("--cfgfile").arg(&origin.config));
    set_mtime(&manifest, 1_700_000_100);
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["/pub/project.git"]["fingerprint"],
        show_ref_sha1(&origin.top.join("pub/project.git"))
    );
    assert_ne!(got, expected);

    // Errors: exit 1 with the reason on stdout.
    let out = gl_manifest(tmp.path(), &manifest, "stranger", &["--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("'stranger' may not read"));
    let out = gl_manifest(
        tmp.path(),
        &tmp.path().join("gone.js.gz"),
        "mirror1",
        &["--force"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not exist"));
    let out = run(Command::new(contrib("gitolite/grok-get-gl-manifest.sh"))
        .env("GROK_GL_REMOTE", "git@origin.invalid")
        .env("GROK_GL_SSH", "false")
        .env("GROK_GL_STATE", tmp.path().join("other.mtime")));
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed"));
}

// ---------------------------------------------------------------- kubernetes

fn k8s_docs() -> Vec<(String, Yaml)> {
    let mut docs = Vec::new();
    let dir = contrib("kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "no YAML in {}", dir.display());
    for f in files {
        let parsed = YamlLoader::load_from_str(&read(&f))
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", f.display()));
        for d in parsed {
            if d.is_null() {
                continue;
            }
            let kind = d["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a document without kind", f.display()));
            assert!(
                d["apiVersion"].as_str().is_some(),
                "{}: {kind} lacks apiVersion",
                f.display()
            );
            assert!(
                d["metadata"]["name"].as_str().is_some(),
                "{}: {kind} lacks a name",
                f.display()
            );
            docs.push((kind.to_string(), d));
        }
    }
    docs
}

fn find<'a>(docs: &'a [(String, Yaml)], kind: &str) -> &'a Yaml {
    let found: Vec<_> = docs.iter().filter(|(k, _)| k == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}");
    &found[0].1
}

/// The volume (by claim) and mount of the mirror in a pod spec.
fn mirror_mounts(pod: &Yaml, claim: &str) -> Vec<(bool, bool, String)> {
    let volumes = pod["volumes"].as_vec().expect("volumes");
    let vol = volumes
        .iter()
        .find(|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim))
        .expect("the pod mounts the mirror claim");
    let vol_name = vol["name"].as_str().unwrap();
    let vol_ro = vol["persistentVolumeClaim"]["readOnly"].as_bool() == Some(true);
    let mut out = Vec::new();
    for c in pod["containers"].as_vec().unwrap() {
        for m in c["volumeMounts"].as_vec().unwrap() {
            if m["name"].as_str() == Some(vol_name) {
                out.push((
                    vol_ro,
                    m["readOnly"].as_bool() == Some(true),
                    m["mountPath"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn kubernetes_manifests_keep_a_single_writer() {
    let docs = k8s_docs();
    let config = find(&docs, "ConfigMap");
    let claim = find(&docs, "PersistentVolumeClaim");
    let writer = find(&docs, "StatefulSet");
    let job = find(&docs, "Job");
    let claim_name = claim["metadata"]["name"].as_str().unwrap();

    // The config is one our parser (and Python's) reads the same way.
    let conf_text = config["data"]["grokmirror.conf"]
        .as_str()
        .expect("grokmirror.conf key");
    assert_eq!(
        support::configparser::our_view(conf_text),
        support::configparser::python_view(conf_text)
    );
    let ini = grokmirror::config::ini::Ini::parse(conf_text).unwrap();
    let toplevel = ini.get("core", "toplevel").unwrap().unwrap();
    assert!(
        ini.get("pull", "refresh").unwrap().is_some(),
        "-o needs [pull] refresh"
    );

    // One writer, read-write, at the configured top level.
    assert_eq!(writer["spec"]["replicas"].as_i64(), Some(1));
    let pod = &writer["spec"]["template"]["spec"];
    let mounts = mirror_mounts(pod, claim_name);
    assert!(!mounts.is_empty());
    for (vol_ro, mount_ro, path) in &mounts {
        assert!(
            !vol_ro && !mount_ro,
            "the writer must mount the mirror read-write"
        );
        assert_eq!(path, &toplevel);
    }
    let cmd: Vec<&str> = pod["containers"][0]["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[..2], ["grok-pull", "-o"]);

    // Consumers: read-only, at the same path (alternates are absolute).
    let pod = &job["spec"]["template"]["spec"];
    let mounts = mirror_mounts(pod, claim_name);
    assert!(!mounts.is_empty());
    for (vol_ro, mount_ro, path) in &mounts {
        assert!(
            *vol_ro && *mount_ro,
            "a consumer must mount the mirror read-only"
        );
        assert_eq!(path, &toplevel);
    }
    assert_eq!(
        pod["securityContext"]["runAsUser"],
        writer["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        "consumers run as the writer's uid (git's ownership check)"
    );
}

/// Run the consumer Job's script on this machine against a real mirror
/// (made by grok-pull's counterpart here: a bare repo whose objects live in
/// an object-storage repo through alternates, as forks on a replica do),
/// both with and without an upstream URL. The mirror must not change.
#[test]
fn kubernetes_consumer_script_clones_from_the_mirror() {
    let docs = k8s_docs();
    let job = find(&docs, "Job");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<String> = container["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[..2], ["/bin/sh".to_string(), "-c".to_string()]);
    let script = &command[2];
    let env_names: Vec<&str> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();

    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    // An object-storage repo holding the history, and the mirrored repo
    // borrowing from it by absolute path.
    let objstore = init_bare(&mirror.join("objstore/group.git"));
    commits(&objstore, "main", 5, 1_600_000_000);
    let repo = init_bare(&mirror.join("pub/project.git"));
    std::fs::write(
        repo.join("objects/info/alternates"),
        format!("{}\n", objstore.join("objects").display()),
    )
    .unwrap();
    let tip = git(Some(&objstore), &["rev-parse", "main"]);
    git(Some(&repo), &["update-ref", "refs/heads/main", &tip]);
    let upstream = init_bare(&tmp.path().join("upstream.git"));
    run_ok(support::git_cmd(Some(&repo)).args(["push", "-q", upstream.to_str().unwrap(), "main"]));
    commits(&upstream, "main", 1, 1_600_100_000); // upstream is one commit ahead
    let snapshot = |dir: &Path| -> Vec<(PathBuf, u64, i64)> {
        let mut v = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                }
                use std::os::unix::fs::MetadataExt;
                v.push((
                    e.path(),
                    m.len(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                ));
            }
        }
        v.sort();
        v
    };
    let before = snapshot(&mirror);

    for (mode, upstream_url) in [
        ("reference", format!("file://{}", upstream.display())),
        ("shared", String::new()),
    ] {
        let checkout = tmp.path().join(format!("work-{mode}"));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .env("MIRROR_TOPLEVEL", &mirror)
            .env("REPO", "/pub/project.git")
            .env("UPSTREAM_URL", &upstream_url)
            .env("CHECKOUT", &checkout)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        for name in &env_names {
            assert!(
                [
                    "MIRROR_TOPLEVEL",
                    "REPO",
                    "UPSTREAM_URL",
                    "CHECKOUT",
                    "HOME"
                ]
                .contains(name),
                "the test does not set {name}"
            );
        }
        let out = run(&mut cmd);
        assert_success!(out, "{mode}");
        let head = git(Some(&checkout.join(".git")), &["rev-parse", "HEAD"]);
        let want = if mode == "reference" {
            git(Some(&upstream), &["rev-parse", "main"])
        } else {
            tip.clone()
        };
        assert_eq!(head, want, "{mode}: wrong checkout");
        // It borrowed from the mirror instead of copying: almost no
        // objects of its own, and a complete, valid history.
        let alternates = read(&checkout.join(".git/objects/info/alternates"));
        assert!(
            alternates.contains(&repo.join("objects").display().to_string()),
            "{mode}: {alternates}"
        );
        let count = git(Some(&checkout.join(".git")), &["count-objects", "-v"]);
        let own: u64 = count
            .lines()
            .filter(|l| l.starts_with("count:") || l.starts_with("in-pack:"))
            .map(|l| l.split(':').nth(1).unwrap().trim().parse::<u64>().unwrap())
            .sum();
        assert!(
            own <= 3 * 2,
            "{mode}: copied {own} objects instead of borrowing"
        );
        git(
            Some(&checkout.join(".git")),
            &["fsck", "--connectivity-only", "--no-progress"],
        );
    }
    assert_eq!(snapshot(&mirror), before, "the consumer changed the mirror");
}

/// The metric names grok-pull writes to `[pull] metrics_file`, with the
/// series names of histograms (`_bucket`, `_sum`, `_count`).
fn exported_metrics() -> std::collections::BTreeSet<String> {
    use grok_pull::record::metrics::{Activity, Stats};
    use grok_pull::work::job::JobOutcome;
    use grokmirror::formats::freshness::{self, Freshness, RepoFreshness};
    let mut f = Freshness::default();
    let mut stale = RepoFreshness::default();
    stale.observe(2, 1, true, 0);
    let mut failing = RepoFreshness::default();
    failing.failed("fatal: timed out", 0);
    f.repos.insert("/s.git".into(), stale);
    f.repos.insert("/f.git".into(), failing);
    let stale_after = std::time::Duration::from_secs(1);
    let mut stats = Stats {
        started: Some(std::time::SystemTime::now()),
        last_poll_ok: Some(std::time::SystemTime::now()),
        freshness: Some((freshness::summarize(&f, 100, stale_after, 10), stale_after)),
        ..Stats::default()
    };
    stats.attempt(&JobOutcome::Updated, std::time::Duration::from_secs(2));
    let text = stats.prometheus(Activity::default(), std::time::SystemTime::now());
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        names.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// Every `expr` of a Grafana dashboard, with its panel's title.
fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(targets) = m.get("targets").and_then(|t| t.as_array()) {
                let title = m["title"].as_str().unwrap_or_default().to_string();
                for t in targets {
                    out.push((title.clone(), t["expr"].as_str().unwrap().to_string()));
                }
            }
            for (k, x) in m {
                if k != "targets" {
                    dashboard_queries(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dashboard_queries(x, out)),
        _ => {}
    }
}

#[test]
fn grafana_dashboard_queries_name_exported_metrics() {
    let exported = exported_metrics();
    let path = contrib("grafana/grokmirror-freshness.json");
    let dash: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dash, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    for (title, expr) in &queries {
        let named = metric_names(expr);
        assert!(
            !named.is_empty(),
            "panel {title:?}: {expr} names no grokmirror metric"
        );
        for n in named {
            assert!(
                exported.contains(&n),
                "panel {title:?}: {expr} names {n}, which grok-pull does not export ({exported:?})"
            );
        }
    }
    // The variable's query too.
    let var = dash["templating"]["list"][1]["query"].as_str().unwrap();
    for n in metric_names(var) {
        assert!(exported.contains(&n), "{var}: {n} is not exported");
    }
    // Each expression is valid PromQL: promtool parses it as a rule.
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.yml");
    let mut text = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        // Grafana's variables, as Grafana substitutes them.
        let e = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        text.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: '{}'\n",
            e.replace('\'', "''")
        ));
    }
    std::fs::write(&rules, text).unwrap();
    let out = run(Command::new(tool("promtool"))
        .arg("check")
        .arg("rules")
        .arg(&rules));
    assert!(
        out.status.success(),
        "promtool check rules on the dashboard's queries: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}

/// The `grokmirror_...` metric names in a query.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("grokmirror_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    /// The reference grok-pull, the protocol's other end, mirrors an origin
    /// through the gitolite manifest command and then sees "unchanged".
    #[test]
    fn reference_grok_pull_mirrors_through_the_gitolite_command() {
        let origin = Origin::new(&["pub/project.git"]);
        let manifest = origin.top.join("manifest.js.gz");
        let tmp = tempfile::tempdir().unwrap();
        let replica = tmp.path().join("replica");
        std::fs::create_dir(&replica).unwrap();
        // Everything gl_manifest sets, in a wrapper the config can name
        // (grok-pull runs manifest_command without arguments but --force).
        let transport = tmp.path().join("local-ssh");
        std::fs::write(
            &transport,
            format!(
                "#!/bin/sh\nshift\ncmd=$1; shift\nexec \"{}/$cmd\" \"$@\"\n",
                contrib("gitolite").display()
            ),
        )
        .unwrap();
        let wrapper = tmp.path().join("manifest-command");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexport GROK_GL_REMOTE=git@origin.invalid GROK_GL_SSH='{}' \
                 GROK_GL_STATE='{}' GROK_MANIFEST='{}' GROK_MANIFEST_READERS=mirror1 GL_USER=mirror1\n\
                 exec '{}' \"$@\"\n",
                transport.display(),
                tmp.path().join("state.mtime").display(),
                manifest.display(),
                contrib("gitolite/grok-get-gl-manifest.sh").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in [&transport, &wrapper] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let config = support::write_config(
            tmp.path(),
            "replica.conf",
            &format!(
                "[core]\ntoplevel = {}\nlog = {}/pull.log\n[remote]\nsite = file://{}\n\
                 manifest_command = {}\n[pull]\ninclude = *\npull_threads = 1\n",
                replica.display(),
                tmp.path().display(),
                origin.top.display(),
                wrapper.display()
            ),
        );
        let out = run(support::oracle("grok-pull").arg("-c").arg(&config));
        assert_success!(out);
        let mirrored = replica.join("pub/project.git");
        assert_eq!(
            show_ref_sha1(&mirrored),
            show_ref_sha1(&origin.top.join("pub/project.git")),
            "not mirrored:\n{}\n{}",
            output_text(&out),
            read(&tmp.path().join("pull.log"))
        );
        // Second run: the command answers 127 and grok-pull has nothing to do.
        let out = run(support::oracle("grok-pull").arg("-c").arg(&config));
        assert_success!(out);
        let log = read(&tmp.path().join("pull.log"));
        let second_run: Vec<&str> = log
            .lines()
            .skip_while(|l| !l.contains("spa: /pub/project.git"))
            .collect();
        assert!(
            second_run.iter().any(|l| l.contains("manifest: unchanged")),
            "{log}"
        );
        // Ours, the same way. The command's state already says "unchanged",
        // so the first run asks with -n, which passes --force.
        let ours = tmp.path().join("ours");
        std::fs::create_dir(&ours).unwrap();
        let ours_config = support::write_config(
            tmp.path(),
            "ours.conf",
            &format!(
                "[core]\ntoplevel = {}\nlog = {}/ours.log\n[remote]\nsite = file://{}\n\
                 manifest_command = {}\n[pull]\ninclude = *\npull_threads = 1\n",
                ours.display(),
                tmp.path().display(),
                origin.top.display(),
                wrapper.display()
            ),
        );
        let out = run(support::grok("grok-pull")
            .arg("-n")
            .arg("-c")
            .arg(&ours_config));
        assert_success!(out);
        assert_eq!(
            show_ref_sha1(&ours.join("pub/project.git")),
            show_ref_sha1(&origin.top.join("pub/project.git")),
            "not mirrored by ours:\n{}",
            output_text(&out)
        );
        let out = run(support::grok("grok-pull").arg("-c").arg(&ours_config));
        assert_success!(out);
        assert!(
            read(&tmp.path().join("ours.log")).contains("manifest: unchanged"),
            "{}",
            output_text(&out)
        );
    }
}
