//! The repair loop: grok-fsck finds a repository with a missing blob and
//! asks for a re-clone, grok-pull re-clones it from the origin, and the next
//! grok-fsck finds it clean. Run with the reference grok-pull and with ours.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::fixture;
use crate::support::replica::{explode, loose_path, stderr, today, Replica};
use crate::support::{git, run_ok, show_ref};

struct Mirror {
    origin: PathBuf,
    replica: Replica,
}

fn mirror() -> Mirror {
    let replica_base = Replica::new(
        "ignore_errors = notice:\nreclone_on_errors = fatal: bad tree object\n    missing blob\n    broken link",
        "",
    );
    let origin = replica_base.dir.path().join("origin");
    fixture::project(&origin.join("pub/proj.git"), 30, 1_600_000_000);
    fixture::project(&origin.join("other.git"), 5, 1_600_000_000);
    run_ok(
        support::grok("grok-manifest")
            .arg("-m")
            .arg(origin.join("manifest.js.gz"))
            .arg("-t")
            .arg(&origin),
    );
    let conf = std::fs::read_to_string(&replica_base.config).unwrap();
    std::fs::write(
        &replica_base.config,
        format!(
            "{conf}\n[remote]\nsite = file://{}\nmanifest = ${{site}}/manifest.js.gz\n[pull]\npull_threads = 1\n",
            origin.display()
        ),
    )
    .unwrap();
    Mirror {
        origin,
        replica: replica_base,
    }
}

fn pull(mut cmd: Command, config: &Path) {
    run_ok(cmd.arg("-n").arg("-c").arg(config));
}

/// Delete a blob from the replica's copy; returns it.
fn damage(repo: &Path) -> String {
    explode(repo);
    let blob = git(Some(repo), &["rev-parse", "main:file-3.txt"]);
    std::fs::remove_file(loose_path(repo, &blob)).unwrap();
    blob
}

fn repair_loop(pull_with: impl Fn() -> Command) {
    let m = mirror();
    let r = &m.replica;
    pull(pull_with(), &r.config);
    let proj = r.repo("pub/proj.git");
    assert_eq!(show_ref(&proj), show_ref(&m.origin.join("pub/proj.git")));
    let blob = damage(&proj);

    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("missing blob {blob}")), "{err}");
    let request = std::fs::read_to_string(proj.join("grokmirror.reclone")).unwrap();
    assert!(
        request.starts_with("Requested by grok-fsck due to error: "),
        "{request}"
    );

    pull(pull_with(), &r.config);
    assert_missing!(proj.join("grokmirror.reclone"), "re-cloned");
    assert!(support::replica::has_object(&proj, &blob));
    assert_eq!(show_ref(&proj), show_ref(&m.origin.join("pub/proj.git")));

    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("reports errors"), "{err}");
    assert_missing!(proj.join("grokmirror.reclone"));
    assert_eq!(r.status_of("pub/proj.git")["lastcheck"], today());
}

#[test]
fn fsck_reclone_then_our_pull_recovers() {
    repair_loop(|| support::grok("grok-pull"));
}

/// On an origin (repositories with no remote to re-clone from) a matching
/// error is reported as ever, but no re-clone request is written: nobody
/// would act on it. The same damage in a repository that has a remote (the
/// control) is still turned into a request.
#[test]
fn no_reclone_request_for_a_repository_without_a_remote() {
    let r = Replica::new("reclone_on_errors = missing blob\n    broken link", "");
    let origin_repo = fixture::project(&r.repo("pub/origin.git"), 30, 1_600_000_000);
    let mirrored = fixture::project(&r.repo("pub/mirrored.git"), 30, 1_600_000_000);
    support::replica::as_mirrored(&mirrored);
    r.manifest();
    let lost = damage(&origin_repo);
    let lost_too = damage(&mirrored);

    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Both errors are reported, and kept in grokmirror.fsck.err.
    assert!(err.contains(&format!("missing blob {lost}")), "{err}");
    assert!(err.contains(&format!("missing blob {lost_too}")), "{err}");
    assert!(origin_repo.join("grokmirror.fsck.err").is_file());
    // The origin's repository: no request, and one line saying why.
    assert_missing!(origin_repo.join("grokmirror.reclone"), "{err}");
    let why: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("no remote to re-clone it from"))
        .collect();
    assert_eq!(why.len(), 1, "{err}");
    // The mirrored one: asked to be re-cloned, as before.
    let request = std::fs::read_to_string(mirrored.join("grokmirror.reclone"))
        .unwrap_or_else(|e| panic!("no request in the control ({e}):\n{err}"));
    assert!(
        request.starts_with("Requested by grok-fsck due to error: "),
        "{request}"
    );
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    #[test]
    fn fsck_reclone_then_reference_pull_recovers() {
        repair_loop(|| support::oracle("grok-pull"));
    }
}
