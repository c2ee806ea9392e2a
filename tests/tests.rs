//! The integration tests, all in one binary (so `tests/support` is
//! compiled once and there is one test executable to link, not forty).
//!
//! - `e2e::*` drive the built programs as child processes against real git
//!   repositories, a loopback HTTP server, `git daemon` and the reference
//!   grokmirror 2.0.12 (`tests/e2e/`);
//! - `api::*` test the library crates through their public APIs, with the
//!   corpora they replay in `tests/api/corpus/` (`tests/api/`);
//! - `slow::*` are the long soak, concurrency and kill tests (`tests/slow/`),
//!   which `scripts/test --quick` skips.
//!
//! Every test runs on a thread of this one process, so nothing here may
//! change process-wide state (the environment, the current directory, the
//! umask, signal dispositions): give children their environment through
//! `Command::env` instead. See `support` for the shared helpers.

#[macro_use]
mod support;

mod e2e {
    mod bundle;
    mod concurrency;
    mod conf_example;
    mod config_python;
    mod contrib;
    mod daemon_e2e;
    mod daemon_reload;
    mod daemon_signals;
    mod daemon_soak;
    mod daemon_socket_hostile;
    mod dumb_pull;
    mod fsck_errors;
    mod fsck_interop;
    mod fsck_locks;
    mod fsck_objstore;
    mod fsck_reclone;
    mod fsck_repack;
    mod fsck_trust;
    mod kill_anywhere;
    mod manifest_errors;
    mod manifest_faults;
    mod manifest_oracle;
    mod manifest_writers;
    mod operator_footguns;
    mod pi_piper;
    mod pull_bounds;
    mod pull_clock;
    mod pull_e2e;
    mod pull_failures;
    mod pull_hostile;
    mod pull_interop;
    mod pull_network_faults;
    mod pull_objstore;
    mod pull_progress;
    mod pull_status;
    mod pull_trust;
}

mod api {
    mod differential_python;
    mod fresh;
    mod manifest_hostile;
    mod refs_vs_git;
    mod remote_hostile;
    mod socket_lines;
}
