//! An initial mirror shows its progress: without a terminal, a line in the
//! log every few seconds while repositories are being worked on, naming
//! how many are done and which are under way.

use crate::support::mirror::{no_proxy, Origin, Replica};
use crate::support::{git_binary, grok, run, script, use_upload_pack};

#[test]
fn a_long_initial_mirror_logs_its_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/fast.git", 2, 1_600_000_000);
    origin.project("/slow.git", 2, 1_600_000_000);
    origin.manifest();
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        "",
    );
    // The slow one is held well past the progress interval (5 s).
    let wrapper = script(
        &dir.join("upload-pack"),
        &format!(
            "case \"$*\" in *slow.git*) sleep 12;; esac\nexec {} upload-pack \"$@\"",
            git_binary().display()
        ),
    );
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    use_upload_pack(&mut cmd, &wrapper)
        .arg("-c")
        .arg(&replica.config);
    let out = run(&mut cmd);
    assert_success!(out);
    let log = std::fs::read_to_string(dir.join("replica.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("progress: ") && l.contains("/2 repositories done"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("working on") && l.contains("/slow.git")),
        "no progress line naming the held clone:\n{log}"
    );
}
