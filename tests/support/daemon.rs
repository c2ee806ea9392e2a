//! A real `git daemon` on 127.0.0.1 serving a directory of bare
//! repositories over git://, stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running daemon.
pub struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    /// Serve every repository under `base` (`--export-all`).
    pub fn serve(base: &Path) -> GitDaemon {
        for _ in 0..5 {
            // Pick a free port; the daemon binds it right after.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(super::git_binary())
                .args([
                    "daemon",
                    "--reuseaddr",
                    "--listen=127.0.0.1",
                    &format!("--port={port}"),
                    "--export-all",
                    "--informative-errors",
                    &format!("--base-path={}", base.display()),
                ])
                .arg(base)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group: `git daemon` runs `git-daemon` as a
                // child, which runs upload-packs; all of them go on drop.
                .process_group(0)
                .spawn()
                .expect("start git daemon");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited (port taken?): try another port
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return GitDaemon { child, port };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            kill_group(&mut child);
        }
        panic!("git daemon did not start on 127.0.0.1");
    }

    /// `git://127.0.0.1:PORT` (the `site` of a replica config).
    pub fn site(&self) -> String {
        format!("git://127.0.0.1:{}", self.port)
    }
}

fn kill_group(child: &mut Child) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
