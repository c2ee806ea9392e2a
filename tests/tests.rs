//! The integration tests, all in one binary (so `tests/support` is
//! compiled once and there is one test executable to link, not forty).
//!
//! - `e2e::*` drive the built programs as child processes against real git
//!   repositories, a loopback HTTP server, `git daemon` and the reference
//!   grokmirror 2.0.12 (`tests/e2e/`);
//! - `api::*` test the library crates through their public APIs, with the
//!   corpora they replay in `tests/api/corpus/` (`tests/api/`);
//! - `slow::*` are the modules of long runs (`tests/slow/`): the soak, the
//!   concurrency run, the kills at random moments, the memory bounds, the
//!   many-writer and interop marathons.
//!
//! A long test (more than ten seconds or so) in one of the other modules
//! goes into a `mod slow` at the end of its file. `scripts/test --quick`
//! skips every test with `slow::` in its path (`-- --skip slow::`).
//!
//! Every test runs on a thread of this one process, so nothing here may
//! change process-wide state (the environment, the current directory, the
//! umask, signal dispositions): give children their environment through
//! `Command::env` instead. See `support` for the shared helpers.

#[macro_use]
mod support;

mod e2e {
    mod bundle;
    mod conf_example;
    mod config_check;
    mod config_python;
    mod consumer_grace;
    mod contrib;
    mod daemon_e2e;
    mod daemon_notify_http;
    mod daemon_reload;
    mod daemon_signals;
    mod daemon_socket_hostile;
    mod dumb_pull;
    mod fsck_errors;
    mod fsck_geometric;
    mod fsck_interop;
    mod fsck_locks;
    mod fsck_objstore;
    mod fsck_reclone;
    mod fsck_repack;
    mod fsck_trust;
    mod help;
    mod interrupt;
    mod manifest_errors;
    mod manifest_faults;
    mod manifest_oracle;
    mod manifest_symlinks;
    mod operator_footguns;
    mod pi_indexer;
    mod pi_piper;
    mod publish;
    mod pull_clock;
    mod pull_e2e;
    mod pull_failures;
    mod pull_hostile;
    mod pull_network_faults;
    mod pull_objstore;
    mod pull_panic;
    mod pull_shards;
    mod pull_status;
    mod pull_trust;
    mod shallow_tar;
    mod snapshot;
}

mod api {
    mod differential_python;
    mod fresh;
    mod manifest_hostile;
    mod manifest_members;
    mod refs_vs_git;
    mod remote_hostile;
    mod socket_lines;
}

mod slow {
    mod concurrency;
    mod consumer_chaos;
    mod daemon_soak;
    mod kill_anywhere;
    mod manifest_writers;
    mod pull_bounds;
    mod pull_interop;
    mod pull_progress;
}
