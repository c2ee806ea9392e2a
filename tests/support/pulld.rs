//! Our grok-pull running as a daemon (`-o`) in a child process: start it,
//! wait for what it logs, talk to its socket, signal it, look at its file
//! descriptors and memory. Everything it prints goes to files (a pipe
//! nobody reads would stall it). Killed with its process group when
//! dropped.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::grok;
use super::mirror::no_proxy;

/// How long a test waits for something the daemon should do soon. Only
/// a hang makes it run out: no test measures speed with it.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The running daemon.
pub struct Pulld {
    child: Child,
    /// Its log file (`[core] log`).
    pub log: PathBuf,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

impl Pulld {
    /// Start `grok-pull -o -v -c config`; `log` is the config's `[core]
    /// log`. `adjust` may change the command (environment, wrappers).
    pub fn start(config: &Path, log: &Path, adjust: impl FnOnce(&mut Command)) -> Pulld {
        let mut cmd = grok("grok-pull");
        cmd.arg("-o").arg("-v").arg("-c").arg(config);
        adjust(&mut cmd);
        Pulld::spawn(cmd, log)
    }

    /// Start a prepared command (one that execs grok-pull -o in the end).
    pub fn spawn(mut cmd: Command, log: &Path) -> Pulld {
        let stderr = log.with_extension("stderr");
        no_proxy(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0);
        let child = cmd.spawn().expect("start grok-pull -o");
        Pulld {
            child,
            log: log.to_path_buf(),
            stderr,
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything it wrote, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "--- log {}\n{}\n--- stderr\n{}",
            self.log.display(),
            self.log_text(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Wait until `cond` holds, panicking with the log after
    /// [`PATIENCE`] or if the daemon exits.
    pub fn wait_for(&mut self, what: &str, mut cond: impl FnMut(&Pulld) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if cond(self) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "grok-pull exited ({status}) while waiting for {what}\n{}",
                    self.describe()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the log has `count` lines containing `needle`.
    pub fn wait_log_count(&mut self, needle: &str, count: usize) {
        self.wait_for(&format!("{count}x {needle:?} in the log"), |d| {
            d.log_text().matches(needle).count() >= count
        });
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&mut self, needle: &str) {
        self.wait_log_count(needle, 1);
    }

    /// Send a signal.
    pub fn signal(&self, sig: Signal) {
        nix::sys::signal::kill(self.pid(), sig).unwrap();
    }

    /// Wait (up to `limit`) for it to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "grok-pull did not exit within {limit:?}\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Open file descriptors of the daemon.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// Resident memory of the daemon, KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Pulld {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Write lines to a push socket the way grokmirror's listeners do: connect,
/// write `path\n` for each, close.
pub fn notify(socket: &Path, lines: &[&str]) {
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
    for l in lines {
        s.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
}

/// Lines of a log at ERROR or WARNING level.
pub fn problem_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" - ERROR - ") || l.contains(" - WARNING - "))
        .map(str::to_string)
        .collect()
}
