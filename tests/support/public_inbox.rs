//! Real public-inbox v2 archives, built by public-inbox itself
//! (public-inbox-init and public-inbox-mda from the Debian package), for
//! grok-pi-piper's and grok-pi-indexer's tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{git_binary, run, run_with_input, stderr_of};

/// A v2 archive `name` under `root/inboxes/<name>`, with its own
/// public-inbox config (`root/pi-config`).
pub struct Archive {
    _dir: tempfile::TempDir,
    /// A temp directory of its own.
    pub root: PathBuf,
    /// The inbox directory.
    pub inbox: PathBuf,
    /// The number of the next message.
    pub next: usize,
}

/// A public-inbox program run with the archive's config and HOME.
pub fn public_inbox(root: &Path, tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env("PI_CONFIG", root.join("pi-config"))
        .env("HOME", root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR");
    cmd
}

/// Fail, saying what to install, when public-inbox is missing.
pub fn require_public_inbox() {
    let have = Command::new("public-inbox-init")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have,
        "public-inbox-init is needed to build real archives; install it with \
         scripts/setup-test-tools (Debian package public-inbox)"
    );
}

impl Archive {
    /// An empty archive.
    pub fn new(name: &str) -> Archive {
        require_public_inbox();
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let inbox = root.join("inboxes").join(name);
        let out = run(public_inbox(&root, "public-inbox-init").args([
            "-V2",
            name,
            inbox.to_str().unwrap(),
            &format!("http://example.com/{name}"),
            &format!("{name}@example.com"),
        ]));
        assert!(out.status.success(), "{}", stderr_of(&out));
        let cfg = root.join("pi-config");
        let out = run(Command::new(git_binary()).args([
            "config",
            "-f",
            cfg.to_str().unwrap(),
            "publicinboxmda.spamcheck",
            "none",
        ]));
        assert!(out.status.success());
        Archive {
            _dir: dir,
            root,
            inbox,
            next: 1,
        }
    }

    /// The inbox's name.
    pub fn name(&self) -> String {
        self.inbox
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// Deliver `n` messages (subjects `msg <i>`, numbered across calls).
    pub fn add(&mut self, n: usize) {
        let address = format!("{}@example.com", self.name());
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let msg = format!(
                "From: a@example.com\nTo: {address}\nSubject: msg {i}\n\
                 Message-ID: <m{i}@example.com>\nDate: Mon, 1 Jan 2024 00:{:02}:{:02} +0000\n\n\
                 body {i}\n",
                i / 60,
                i % 60
            );
            let out = run_with_input(
                public_inbox(&self.root, "public-inbox-mda")
                    .arg("--no-precheck")
                    .env("ORIGINAL_RECIPIENT", &address),
                msg.as_bytes(),
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The epoch repository the messages land in.
    pub fn epoch(&self) -> PathBuf {
        self.inbox.join("git/0.git")
    }
}
