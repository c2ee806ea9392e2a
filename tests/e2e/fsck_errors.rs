//! grok-fsck on broken repositories: errors logged, kept in
//! grokmirror.fsck.err, turned into re-clone requests (never for a lender),
//! filtered by ignore_errors, and mailed through a real SMTP exchange with
//! a loopback sink.

use crate::support;

use std::path::Path;

use crate::support::fixture;
use crate::support::git;
use crate::support::replica::{explode, loose_path, stderr, today, Replica};
use crate::support::smtp::SmtpSink;

/// Delete one blob of `repo` (made loose first); returns its id.
fn delete_a_blob(repo: &Path) -> String {
    explode(repo);
    let blob = git(Some(repo), &["rev-parse", "main:file-0.txt"]);
    std::fs::remove_file(loose_path(repo, &blob)).unwrap();
    blob
}

fn fsck_section(sink: &SmtpSink, extra: &str) -> String {
    let ignore = if extra.contains("ignore_errors") {
        ""
    } else {
        "ignore_errors = notice:\n"
    };
    format!(
        "{ignore}reclone_on_errors = fatal: bad tree object\n    missing blob\n    broken link\nreport_mailhost = {}\n{extra}",
        sink.address()
    )
}

#[test]
fn corrupt_repo_is_reported_marked_for_reclone_and_mailed() {
    let sink = SmtpSink::start();
    let r = Replica::new(
        &fsck_section(
            &sink,
            "report_to = ops@example.org\nreport_from = fsck@mirror.example.org\nreport_subject = fsck trouble on the mirror",
        ),
        "",
    );
    let good = fixture::project(&r.repo("good.git"), 10, 1_600_000_000);
    let bad = fixture::project(&r.repo("pub/bad.git"), 10, 1_600_000_000);
    support::replica::as_mirrored(&bad);
    let blob = delete_a_blob(&bad);
    r.manifest();

    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{} reports errors:", bad.display())),
        "{err}"
    );
    assert!(err.contains(&format!("missing blob {blob}")), "{err}");
    assert!(err.contains("requested auto-reclone"), "{err}");

    let errfile = std::fs::read_to_string(bad.join("grokmirror.fsck.err")).unwrap();
    assert!(
        errfile.starts_with(&format!(
            "# Date: {}\n# Cmd : git fsck --no-progress --no-dangling --no-reflogs\n",
            today()
        )),
        "{errfile}"
    );
    assert!(
        errfile.contains(&format!("missing blob {blob}")),
        "{errfile}"
    );
    let reclone = std::fs::read_to_string(bad.join("grokmirror.reclone")).unwrap();
    assert!(
        reclone.starts_with("Requested by grok-fsck due to error: "),
        "{reclone}"
    );
    assert_missing!(good.join("grokmirror.fsck.err"));
    assert_missing!(good.join("grokmirror.reclone"));
    assert_eq!(r.status_of("pub/bad.git")["lastcheck"], today());
    assert_eq!(r.status_of("good.git")["lastcheck"], today());

    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("fsck trouble on the mirror")
    );
    assert_eq!(
        mail.header("From").as_deref(),
        Some("fsck@mirror.example.org")
    );
    assert_eq!(mail.header("To").as_deref(), Some("ops@example.org"));
    assert_eq!(mail.from, "fsck@mirror.example.org");
    assert_eq!(mail.to, vec!["ops@example.org".to_string()]);
    let body = mail.body();
    assert!(body.contains("reports errors:"), "{body}");
    assert!(body.contains(&format!("missing blob {blob}")), "{body}");
    assert!(body.contains("requested auto-reclone"), "{body}");
    assert!(!body.contains("good.git"), "{body}");
}

/// A tag without a tagger line, which `git fsck` warns about.
fn tag_without_tagger(repo: &Path) {
    let head = git(Some(repo), &["rev-parse", "main"]);
    let tag = format!("object {head}\ntype commit\ntag old-style\n\nmade by an old tool\n");
    let id = support::git_stdin(
        Some(repo),
        &["hash-object", "-t", "tag", "-w", "--literally", "--stdin"],
        tag.as_bytes(),
    );
    git(Some(repo), &["update-ref", "refs/tags/old-style", &id]);
}

#[test]
fn ignored_error_strings_are_not_reported() {
    let sink = SmtpSink::start();
    let r = Replica::new(
        &fsck_section(&sink, "ignore_errors = notice:\n    missingTaggerEntry"),
        "",
    );
    let repo = fixture::project(&r.repo("tagged.git"), 5, 1_600_000_000);
    tag_without_tagger(&repo);
    r.manifest();
    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("reports errors"), "{err}");
    assert_missing!(repo.join("grokmirror.fsck.err"));
    assert_missing!(repo.join("grokmirror.reclone"));
    assert!(sink.mails().is_empty());
    assert_eq!(r.status_of("tagged.git")["lastcheck"], today());

    // The same repository without the ignore: reported (so the check above
    // can fail), but not a reason to re-clone.
    let sink2 = SmtpSink::start();
    let r2 = Replica::new(&fsck_section(&sink2, ""), "");
    let repo2 = fixture::project(&r2.repo("tagged.git"), 5, 1_600_000_000);
    tag_without_tagger(&repo2);
    r2.manifest();
    let out = r2.fsck(&["-f", "--connectivity-only"]);
    let err = stderr(&out);
    assert!(err.contains("checking connectivity"), "{err}");
    let out = r2.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missingTaggerEntry"), "{err}");
    let errfile = std::fs::read_to_string(repo2.join("grokmirror.fsck.err")).unwrap();
    assert!(errfile.contains("missingTaggerEntry"), "{errfile}");
    assert_missing!(repo2.join("grokmirror.reclone"));
    assert_eq!(sink2.mails().len(), 1);
}

#[test]
fn a_lender_is_never_marked_for_reclone() {
    let sink = SmtpSink::start();
    let r = Replica::new(&fsck_section(&sink, ""), "");
    let parent = fixture::project(&r.repo("parent.git"), 10, 1_600_000_000);
    let child = r.repo("child.git");
    git(
        None,
        &[
            "clone",
            "-q",
            "--bare",
            "--shared",
            parent.to_str().unwrap(),
            child.to_str().unwrap(),
        ],
    );
    git(Some(&child), &["remote", "remove", "origin"]);
    delete_a_blob(&parent);
    r.manifest();
    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{} reports errors:", parent.display())),
        "{err}"
    );
    assert!(
        err.contains("used for alternates, not requesting auto-reclone"),
        "{err}"
    );
    assert!(parent.join("grokmirror.fsck.err").exists());
    assert_missing!(parent.join("grokmirror.reclone"));
}

#[test]
fn a_failed_mail_is_logged_and_the_run_completes() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = Replica::new(
        &format!("reclone_on_errors = missing blob\nreport_mailhost = 127.0.0.1:{port}"),
        "",
    );
    let bad = fixture::project(&r.repo("bad.git"), 10, 1_600_000_000);
    support::replica::as_mirrored(&bad);
    delete_a_blob(&bad);
    fixture::project(&r.repo("fine.git"), 3, 1_600_000_000);
    r.manifest();
    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot send the report"), "{err}");
    assert!(bad.join("grokmirror.reclone").exists());
    assert_eq!(r.status_of("fine.git")["lastcheck"], today());
    assert_eq!(r.status_of("bad.git")["lastcheck"], today());
}
