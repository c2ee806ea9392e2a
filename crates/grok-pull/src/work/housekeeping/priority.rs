//! Keeping housekeeping out of the fetches' way: the lowest priorities,
//! and the load average it waits on.

use tracing::debug;

/// Nice 19 and best-effort I/O priority 7 for the calling thread (and so
/// for everything it starts). Failures are harmless and only logged.
pub fn lower_priority_of_this_thread() {
    // SAFETY: plain syscalls on the calling thread's id.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // SAFETY: setpriority with PRIO_PROCESS and a thread id changes only
    // that thread on Linux.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) } != 0 {
        debug!(
            "cannot lower the CPU priority of housekeeping: {}",
            std::io::Error::last_os_error()
        );
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_BE: libc::c_long = 2;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    let prio = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7;
    // SAFETY: ioprio_set on the calling thread; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
            prio,
        )
    };
    if rc != 0 {
        debug!(
            "cannot lower the I/O priority of housekeeping: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The one-minute load average, if it can be read.
pub fn load_average() -> Option<f64> {
    let mut loads = [0f64; 3];
    // SAFETY: getloadavg writes at most 3 doubles into the array.
    let n = unsafe { libc::getloadavg(loads.as_mut_ptr(), 3) };
    (n >= 1).then_some(loads[0])
}

/// The default `[pull] housekeeping_max_load`: the number of CPUs.
pub fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_of_a_lowered_thread_run_at_low_priority() {
        let (nice, ioprio) = std::thread::spawn(|| {
            lower_priority_of_this_thread();
            let child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let pid = child.id();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // Field 19 (nice) counted after the ")" that ends the name.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let nice: i64 = after.split(' ').nth(16).unwrap().parse().unwrap();
            // SAFETY: ioprio_get on our child.
            let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid as libc::c_long) };
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            (nice, ioprio)
        })
        .join()
        .unwrap();
        assert_eq!(nice, 19);
        assert_eq!(ioprio, (2 << 13) | 7, "best-effort class, level 7");
    }
}
