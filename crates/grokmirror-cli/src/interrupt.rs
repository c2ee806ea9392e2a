//! Ctrl-C (SIGINT) and SIGTERM for the programs that run one pass and
//! exit (grok-manifest, grok-fsck): the signal becomes a stop request
//! ([`grokmirror::stop`]): the git processes running are told to stop, no
//! new work starts, nothing half-done is recorded, and the program exits
//! with [`exit_status`] after one line saying so. grok-pull has its own
//! handling in its event loop.

use std::sync::Once;

use nix::sys::signal::Signal;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Catch SIGINT and SIGTERM from now on (once per process). A thread waits
/// for them (signal-hook's self-pipe: the handler only writes a byte) and
/// turns the first one into [`grokmirror::stop::request`]; a second one of
/// either ends the process at once, as the signal would have.
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        grokmirror::stop::own_process_groups();
        let mut signals = match Signals::new([SIGINT, SIGTERM]) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot catch SIGINT and SIGTERM: {e}");
                return;
            }
        };
        let watcher = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut told = false;
                for sig in signals.forever() {
                    if told {
                        let _ = signal_hook::low_level::emulate_default_handler(sig);
                    }
                    told = true;
                    grokmirror::stop::request(sig);
                }
            });
        if let Err(e) = watcher {
            tracing::warn!("cannot watch for SIGINT and SIGTERM: {e}");
        }
    });
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
