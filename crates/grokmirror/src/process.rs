//! Whether another process still runs: what a daemon's status and the
//! files a killed git left behind are judged by.

use std::path::Path;

/// Whether the process `pid` runs (in our PID namespace). A zombie does
/// not: it does nothing any more, and where init does not reap orphans
/// (some containers) a killed program's children linger as zombies.
pub fn runs(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")) {
        Ok(stat) => !stat_says_finished(&stat),
        Err(_) => false,
    }
}

/// Whether a `/proc/<pid>/stat` line is that of a finished process: its
/// state (after the command name in parentheses, which may itself hold
/// `)`) is `Z` (zombie) or `X` (dead).
pub fn stat_says_finished(stat: &str) -> bool {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state == 'Z' || state == 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombies_and_dead_processes_are_finished() {
        assert!(stat_says_finished(
            "31081 (git) Z 1 31080 31080 0 -1 4227148"
        ));
        assert!(stat_says_finished("7 (a) b) X 1 1"));
        assert!(!stat_says_finished("31081 (git) S 1 31080 31080 0 -1"));
        assert!(!stat_says_finished("9 (git (Z) R 1 1"));
        assert!(!stat_says_finished("garbage"));
    }

    #[test]
    fn this_process_runs_and_no_process_is_pid_zero_or_past_pid_max() {
        assert!(runs(std::process::id()));
        assert!(!runs(0));
        // PIDs stop well below this (pid_max is at most 2^22).
        assert!(!runs(u32::MAX - 1));
    }
}
