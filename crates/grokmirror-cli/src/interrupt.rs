//! Ctrl-C (SIGINT) and SIGTERM for the programs that run one pass and
//! exit (grok-manifest, grok-fsck): the signal becomes a stop request
//! ([`grokmirror::stop`]): the git processes running are told to stop, no
//! new work starts, nothing half-done is recorded, and the program exits
//! with [`exit_status`] after one line saying so. grok-pull has its own
//! handling in its event loop.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Duration;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signal caught, 0 before one is. Set by the handler (an atomic store
/// is all a signal handler may safely do), acted on by the watcher thread.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: nix::libc::c_int) {
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on (once per process). A watcher
/// thread turns the first one into [`grokmirror::stop::request`] within a
/// few milliseconds; a second one of either ends the process at once with
/// the status a shell reports for it.
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        grokmirror::stop::own_process_groups();
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only stores into an atomic.
            if let Err(e) = unsafe { signal::sigaction(sig, &action) } {
                tracing::warn!("cannot catch {sig}: {e}");
            }
        }
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(watch)
            .ok();
    });
}

fn watch() {
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let sig = CAUGHT.load(Ordering::SeqCst);
        if sig == 0 {
            continue;
        }
        grokmirror::stop::request(sig);
        // From now on a second signal ends the process as the signal would.
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for s in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: restoring the default disposition.
            let _ = unsafe { signal::sigaction(s, &default) };
        }
        return;
    }
}

/// The name of the signal that asked the run to stop, if one did.
pub fn stopped_by() -> Option<&'static str> {
    grokmirror::stop::requested().map(signal_name)
}

/// The exit status of a run stopped by a signal: 128 + its number (130
/// for SIGINT, 143 for SIGTERM), what a shell reports for a program the
/// signal ended, so `&&` chains and cron wrappers see the interruption.
pub fn exit_status(signal: i32) -> i32 {
    128 + signal
}

/// The exit status of a stopped run, if it was stopped.
pub fn stopped_status() -> Option<i32> {
    grokmirror::stop::requested().map(exit_status)
}

fn signal_name(sig: i32) -> &'static str {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str(),
        Err(_) => "a stop request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_shells() {
        assert_eq!(exit_status(Signal::SIGINT as i32), 130);
        assert_eq!(exit_status(Signal::SIGTERM as i32), 143);
        assert_eq!(signal_name(2), "SIGINT");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(1000), "a stop request");
    }
}
