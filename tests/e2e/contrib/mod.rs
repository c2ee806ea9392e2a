//! What ships in contrib/ works, checked with the real tools: the systemd
//! units pass `systemd-analyze verify` (and its offline security review),
//! logrotate rotates a log our writer keeps following, the origin hook runs
//! on a real `git push`, the gitolite manifest command speaks the
//! manifest_command protocol to the reference grok-pull, and the Kubernetes
//! manifests parse, keep to the single-writer pattern, and their consumer
//! script clones from a mirror for real (and the sharded recipe's shards,
//! peers and router agree, its nginx configs pass `nginx -t`); the Grafana dashboard's queries
//! are PromQL (promtool) naming only metrics grok-pull exports; and a
//! replica made by our grok-pull is served by the real cgit; and the
//! packages (the .deb, the RPM, the SELinux module) build, install and
//! compile with dpkg, rpmbuild and the policy devel tools.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::support::fixture::{commits, init_bare};
use crate::support::{git, grok, read_manifest_json, run, run_ok, show_ref_sha1, stderr_of};
use yaml_rust2::{Yaml, YamlLoader};

mod cgit;
mod grafana;
mod hooks;
mod kubernetes;
mod kubernetes_shards;
mod packages;
mod systemd;

fn contrib(rel: &str) -> PathBuf {
    support::workspace_root().join("contrib").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Run scripts/setup-test-tools once (under a lock): the system tools
/// these tests drive are installed, or the test fails.
fn install_tools() {
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
            "scripts/setup-test-tools could not install the tools tests/e2e/contrib needs"
        );
    });
}

/// Install the system tools these tests drive (scripts/setup-test-tools,
/// once, under a lock) and return the path of `name`. Panics when the
/// tool cannot be had: these checks must never pass by not running.
fn tool(name: &str) -> PathBuf {
    install_tools();
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
                debian_package(name)
            )
        })
}

/// The Debian package that provides the tool `name`.
fn debian_package(name: &str) -> &str {
    match name {
        "systemd-analyze" => "systemd",
        "dpkg-deb" => "dpkg",
        "man" => "man-db",
        "strip" => "binutils",
        "rpm" | "rpmspec" | "rpmbuild" => "rpm",
        "semodule_unpackage" => "semodule-utils",
        "semodule" => "policycoreutils",
        "sesearch" | "seinfo" => "setools",
        "selabel_lookup" => "selinux-utils",
        other => other,
    }
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

// ---------------------------------------------------------------- logrotate

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

// ---------------------------------------------------------------- kubernetes

fn k8s_docs() -> Vec<(String, Yaml)> {
    k8s_docs_in("kubernetes")
}

/// Every document of the YAML files in `contrib/<rel>` (not below), each
/// with its kind, checked to have an apiVersion and a name.
fn k8s_docs_in(rel: &str) -> Vec<(String, Yaml)> {
    let mut docs = Vec::new();
    let dir = contrib(rel);
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
