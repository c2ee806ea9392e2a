//! Killing a program at a random moment, the way a crash, the OOM killer
//! or `systemctl kill -s KILL` would: SIGKILL, with or without the
//! processes it started.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Who gets the SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victims {
    /// The program only; the git processes it started live on as orphans
    /// (the OOM killer, `kill -9 <pid>`).
    ProgramOnly,
    /// The program and every process below it, frozen first so none
    /// escapes (a cgroup kill by systemd, a container stopped hard).
    WholeTree,
}

/// Parent pid of every process, from /proc.
fn parents() -> Vec<(u32, u32)> {
    let mut all = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return all;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parens.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let _state = fields.next();
        if let Some(ppid) = fields.next().and_then(|p| p.parse::<u32>().ok()) {
            all.push((pid, ppid));
        }
    }
    all
}

/// Every process below `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let all = parents();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        for &(pid, ppid) in &all {
            if ppid == p && !found.contains(&pid) {
                found.push(pid);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// SIGKILL `child` (and, with [`Victims::WholeTree`], everything below it)
/// and reap it. Returns the processes left running (orphans), to be
/// awaited with [`await_gone`].
pub fn kill(child: &mut Child, victims: Victims) -> Vec<u32> {
    use nix::sys::signal::Signal;
    let root = child.id();
    // Freeze first, so nothing forks a process we do not see.
    signal(root, Signal::SIGSTOP);
    let mut frozen: Vec<u32> = Vec::new();
    loop {
        let below = descendants(root);
        let new: Vec<u32> = below
            .iter()
            .copied()
            .filter(|p| !frozen.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        if victims == Victims::ProgramOnly {
            frozen = below;
            break;
        }
        for &p in &new {
            signal(p, Signal::SIGSTOP);
        }
        frozen.extend(new);
    }
    signal(root, Signal::SIGKILL);
    let _ = child.wait();
    match victims {
        Victims::WholeTree => {
            for &p in &frozen {
                signal(p, Signal::SIGKILL);
            }
            Vec::new()
        }
        Victims::ProgramOnly => frozen,
    }
}

/// Wait until none of `pids` runs any more (they are orphans, reaped by
/// init); kill what is left after a minute (a guard against a hang, not a
/// statement about speed).
pub fn await_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| !s.contains(") Z"))
                    .unwrap_or(false)
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for p in alive {
                signal(p, nix::sys::signal::Signal::SIGKILL);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a run ended.
pub struct Outcome {
    /// Lines it printed on stderr (up to the kill).
    pub lines: usize,
    /// Whether it was killed (it had not finished by then).
    pub killed: bool,
    /// Its exit code when it finished on its own.
    pub code: Option<i32>,
    /// What it printed.
    pub log: String,
    /// Processes it started that outlived the kill.
    pub orphans: Vec<u32>,
}

/// Run `cmd` (which should log to stderr) and kill it `delay` after its
/// `kill_at`-th stderr line; with `None`, let it finish.
pub fn run_and_kill(
    cmd: &mut Command,
    kill_at: Option<usize>,
    delay: Duration,
    victims: Victims,
) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().unwrap();
    let mut lines = 0;
    let mut log = String::new();
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        lines += 1;
        log.push_str(&line);
        line.clear();
        if Some(lines) == kill_at {
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_none() {
                let orphans = kill(&mut child, victims);
                return Outcome {
                    lines,
                    killed: true,
                    code: None,
                    log,
                    orphans,
                };
            }
        }
    }
    let status = child.wait().unwrap();
    Outcome {
        lines,
        killed: false,
        code: status.code(),
        log,
        orphans: Vec::new(),
    }
}
