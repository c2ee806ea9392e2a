//! grok-pi-piper end to end on real public-inbox v2 archives (built with
//! public-inbox-init and public-inbox-mda): each new message piped exactly
//! once, the reference and ours taking turns on one archive, `-l`, dry
//! runs, failures, and the documented use as grok-pull's post_update_hook.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::public_inbox::Archive;
use crate::support::{grok, oracle, run, stderr_of};

/// A public-inbox v2 archive named `test` (see [`Archive`]) with a piper
/// config and a pipe script that appends each message's subject to
/// `root/piped`.
struct Inbox(Archive);

impl std::ops::Deref for Inbox {
    type Target = Archive;
    fn deref(&self) -> &Archive {
        &self.0
    }
}

impl Inbox {
    fn new() -> Inbox {
        let mut archive = Archive::new("test");
        let root = archive.root.clone();
        support::script(
            &root.join("pipe"),
            &format!(
                "sed -n 's/^Subject: //p' >> {}",
                root.join("piped").display()
            ),
        );
        std::fs::write(
            root.join("piper.conf"),
            format!(
                "[DEFAULT]\npipe = None\n\n[test]\npipe = {}\n",
                root.join("pipe").display()
            ),
        )
        .unwrap();
        archive.add(3);
        Inbox(archive)
    }

    fn add(&mut self, n: usize) {
        self.0.add(n);
    }

    fn conf(&self) -> PathBuf {
        self.root.join("piper.conf")
    }

    fn piped(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("piped"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn state(&self) -> Option<String> {
        std::fs::read_to_string(self.epoch().join("pi-piper.latest")).ok()
    }

    fn tip(&self) -> String {
        support::git(Some(&self.epoch()), &["rev-parse", "master"])
    }
}

fn subjects(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("msg {i}")).collect()
}

fn piper(cmd: Command, ib: &Inbox, flags: &[&str]) -> Output {
    let mut cmd = cmd;
    cmd.arg("-c").arg(ib.conf()).args(flags).arg(ib.epoch());
    run(&mut cmd)
}

fn ours(ib: &Inbox, flags: &[&str]) -> Output {
    let out = piper(grok("grok-pi-piper"), ib, flags);
    assert!(out.status.success(), "ours: {}", stderr_of(&out));
    out
}

fn reference(ib: &Inbox, flags: &[&str]) -> Output {
    let out = piper(oracle("grok-pi-piper"), ib, flags);
    assert!(out.status.success(), "reference: {}", stderr_of(&out));
    out
}

#[test]
fn the_first_run_records_the_tip_then_each_new_message_is_piped_once() {
    let mut ib = Inbox::new();
    ours(&ib, &[]);
    assert_eq!(
        ib.piped(),
        Vec::<String>::new(),
        "the first run pipes nothing"
    );
    assert_eq!(ib.state(), Some(ib.tip()), "the tip, without a newline");

    ib.add(2);
    ours(&ib, &["-v"]);
    assert_eq!(ib.piped(), subjects(4..=5));
    assert_eq!(ib.state(), Some(ib.tip()));
    ours(&ib, &[]);
    assert_eq!(ib.piped(), subjects(4..=5), "nothing new, nothing piped");
    ib.add(1);
    ours(&ib, &[]);
    assert_eq!(ib.piped(), subjects(4..=6));
}

#[test]
fn pipe_last_repipes_the_newest_as_the_reference_does() {
    let mut a = Inbox::new();
    let mut b = Inbox::new();
    // Without a record, -l only sets up tracking, in both.
    ours(&a, &["-l", "2"]);
    reference(&b, &["-l", "2"]);
    assert_eq!(a.piped(), Vec::<String>::new());
    assert_eq!(b.piped(), Vec::<String>::new());
    a.add(1);
    b.add(1);
    ours(&a, &["-l", "3"]);
    reference(&b, &["-l", "3"]);
    assert_eq!(a.piped(), subjects(2..=4));
    assert_eq!(b.piped(), a.piped());
    assert_eq!(a.state(), Some(a.tip()));
    assert_eq!(b.state(), Some(b.tip()));
    // Tracking goes on from the tip.
    a.add(1);
    ours(&a, &[]);
    assert_eq!(a.piped(), [subjects(2..=4), subjects(5..=5)].concat());
}

#[test]
fn a_dry_run_pipes_and_records_nothing() {
    let mut ib = Inbox::new();
    ours(&ib, &["-d"]);
    assert_eq!(ib.state(), None);
    ours(&ib, &[]);
    let recorded = ib.state();
    ib.add(2);
    let out = ours(&ib, &["-d", "-v"]);
    assert!(stderr_of(&out).contains("[DRYRUN]"), "{}", stderr_of(&out));
    assert_eq!(ib.piped(), Vec::<String>::new());
    assert_eq!(ib.state(), recorded);
}

#[test]
fn a_failing_pipe_stops_there_and_the_rest_comes_next_run() {
    let mut ib = Inbox::new();
    ours(&ib, &[]);
    ib.add(3);
    let pipe = ib.root.join("pipe");
    let piped = ib.root.join("piped");
    support::script(
        &pipe,
        &format!(
            "s=$(sed -n 's/^Subject: //p'); [ \"$s\" = 'msg 5' ] && exit 3; echo \"$s\" >> {}",
            piped.display()
        ),
    );
    let out = piper(grok("grok-pi-piper"), &ib, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(ib.piped(), subjects(4..=4));
    support::script(
        &pipe,
        &format!("sed -n 's/^Subject: //p' >> {}", piped.display()),
    );
    ours(&ib, &[]);
    assert_eq!(ib.piped(), subjects(4..=6));
}

#[test]
fn sections_choose_the_pipe_and_a_rewritten_archive_restarts_tracking() {
    let mut ib = Inbox::new();
    // A section that does not match leaves DEFAULT's pipe = None: nothing.
    std::fs::write(
        ib.conf(),
        format!(
            "[DEFAULT]\npipe = None\n[other]\npipe = {}\n",
            ib.root.join("pipe").display()
        ),
    )
    .unwrap();
    ours(&ib, &[]);
    assert_eq!(ib.state(), None, "pipe = None does nothing at all");
    std::fs::write(
        ib.conf(),
        format!(
            "[DEFAULT]\npipe = {}\n[other]\npipe = None\n",
            ib.root.join("pipe").display()
        ),
    )
    .unwrap();
    ours(&ib, &[]);
    assert_eq!(ib.state(), Some(ib.tip()));

    // A record naming a commit master does not have (history rewritten).
    std::fs::write(
        ib.epoch().join("pi-piper.latest"),
        "0123456789abcdef0123456789abcdef01234567",
    )
    .unwrap();
    ib.add(1);
    ours(&ib, &[]);
    assert_eq!(ib.piped(), Vec::<String>::new(), "nothing is re-piped");
    assert_eq!(ib.state(), Some(ib.tip()));
    ib.add(1);
    ours(&ib, &[]);
    assert_eq!(ib.piped(), subjects(5..=5));
}

#[test]
fn a_missing_config_or_pipe_command_is_a_one_line_error() {
    let ib = Inbox::new();
    let out = run(grok("grok-pi-piper")
        .args(["-c", "/nonexistent/piper.conf"])
        .arg(ib.epoch()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out).trim_end().lines().count(), 1);
    std::fs::write(ib.conf(), "[test]\npipe = /nonexistent/procmail -m\n").unwrap();
    let out = piper(grok("grok-pi-piper"), &ib, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot execute /nonexistent/procmail"),
        "{err}"
    );
    assert_eq!(ib.state(), None);
}

/// A grok-pull run (ours or the reference) on `replica`, with `HOME` at
/// `home` so the hook's `~` means it.
fn pull_with(mut cmd: Command, replica: &support::mirror::Replica, home: &Path) -> Output {
    support::mirror::no_proxy(&mut cmd);
    cmd.env("HOME", home)
        .arg("-v")
        .arg("-c")
        .arg(&replica.config);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr_of(&out));
    out
}

#[test]
fn a_piper_killed_mid_run_pipes_nothing_twice() {
    let mut ib = Inbox::new();
    ours(&ib, &[]);
    ib.add(3);
    let pipe = ib.root.join("pipe");
    let piped = ib.root.join("piped");
    // The pipe kills the piper (its parent) while it delivers msg 5.
    support::script(
        &pipe,
        &format!(
            "s=$(sed -n 's/^Subject: //p'); [ \"$s\" = 'msg 5' ] && kill -9 $PPID && exit 1; echo \"$s\" >> {}",
            piped.display()
        ),
    );
    let out = piper(grok("grok-pi-piper"), &ib, &[]);
    assert!(!out.status.success());
    assert_eq!(ib.piped(), subjects(4..=4));
    support::script(
        &pipe,
        &format!("sed -n 's/^Subject: //p' >> {}", piped.display()),
    );
    ours(&ib, &[]);
    assert_eq!(ib.piped(), subjects(4..=6), "msg 4 is not piped again");
}

#[test]
fn the_shipped_example_config_reads_the_same_in_both() {
    let mut ib = Inbox::new();
    let example = std::fs::read_to_string(support::workspace_root().join("pi-piper.conf.example"))
        .expect("pi-piper.conf.example is generated by `cargo xtask all`");
    // As shipped, piping is off everywhere: neither program does anything.
    std::fs::write(ib.conf(), &example).unwrap();
    ours(&ib, &[]);
    reference(&ib, &[]);
    assert_eq!(ib.state(), None);
    // With an inbox section added, both pipe through it.
    std::fs::write(
        ib.conf(),
        format!(
            "{example}\n[test]\npipe = {}\n",
            ib.root.join("pipe").display()
        ),
    )
    .unwrap();
    ours(&ib, &[]);
    ib.add(1);
    reference(&ib, &[]);
    ib.add(1);
    ours(&ib, &[]);
    assert_eq!(ib.piped(), subjects(4..=5));
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    #[test]
    fn as_grok_pulls_post_update_hook_it_pipes_what_each_pull_brings() {
        let mut ib = Inbox::new();
        let site = ib.root.join("inboxes");
        let manifest = site.join("manifest.js.gz");
        // The first manifest is dated in the past, so the next one is newer.
        let make_manifest = |age: i64| {
            let out = run(grok("grok-manifest")
                .arg("-m")
                .arg(&manifest)
                .arg("-t")
                .arg(&site));
            assert!(out.status.success(), "{}", stderr_of(&out));
            support::mirror::bump_mtime(&manifest, age);
        };
        make_manifest(-200);
        // As upstream documents it, `~` and all (the piper expands it).
        let hook = format!(
            "post_update_hook = {} -c ~/piper.conf",
            env!("CARGO_BIN_EXE_grok-pi-piper")
        );
        let replica = support::mirror::Replica::new(
            &ib.root,
            "replica",
            site.to_str().unwrap(),
            &format!("file://{}", manifest.display()),
            &hook,
        );
        pull_with(grok("grok-pull"), &replica, &ib.root);
        let epoch = replica.path("/test/git/0.git");
        assert_eq!(
            std::fs::read_to_string(epoch.join("pi-piper.latest")).unwrap(),
            ib.tip(),
            "the clone sets up tracking"
        );
        assert_eq!(ib.piped(), Vec::<String>::new());

        ib.add(2);
        make_manifest(-100);
        pull_with(grok("grok-pull"), &replica, &ib.root);
        assert_eq!(ib.piped(), subjects(4..=5));
        assert_eq!(
            std::fs::read_to_string(epoch.join("pi-piper.latest")).unwrap(),
            ib.tip()
        );

        // The reference grok-pull runs our piper the same way.
        ib.add(1);
        make_manifest(0);
        pull_with(oracle("grok-pull"), &replica, &ib.root);
        assert_eq!(ib.piped(), subjects(4..=6));
    }

    #[test]
    fn the_reference_and_ours_take_turns_without_piping_anything_twice() {
        let mut ib = Inbox::new();
        reference(&ib, &[]);
        assert_eq!(ib.state(), Some(ib.tip()));
        ib.add(2);
        reference(&ib, &[]);
        assert_eq!(ib.piped(), subjects(4..=5));
        ib.add(2);
        ours(&ib, &[]);
        assert_eq!(ib.piped(), subjects(4..=7));
        ib.add(1);
        reference(&ib, &[]);
        assert_eq!(ib.piped(), subjects(4..=8));
        ours(&ib, &[]);
        reference(&ib, &[]);
        assert_eq!(ib.piped(), subjects(4..=8));

        // And from our first run on: the reference reads our record.
        let mut other = Inbox::new();
        ours(&other, &[]);
        other.add(2);
        reference(&other, &[]);
        assert_eq!(other.piped(), subjects(4..=5));
    }
}
