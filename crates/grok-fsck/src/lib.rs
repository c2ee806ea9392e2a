//! grok-fsck: repack, verify and repair the repositories of a grokmirror
//! tree, compatible with grokmirror 2.x's `grok-fsck` (same config, same
//! status file, same files in the repositories, same locks), so either can
//! continue where the other left off.
//!
//! # A run
//!
//! The whole run holds the tree's lock (beside `[fsck] statusfile`); a
//! second grok-fsck finding it taken leaves the tree alone.
//!
//! 1. **Reconcile** ([`work::reconcile`]), under the manifest's lock: the
//!    local manifest and the status file are brought in line with the
//!    disk. Repositories gone are dropped from both; new ones get a first
//!    check on a random day within `frequency`.
//! 2. **Object storage** ([`forks`]): forks are found by their root
//!    commits and moved into shared object-storage repositories; those are
//!    merged, tended and deleted when unused. Member locks are taken
//!    before their object storage's.
//! 3. **Analyze** ([`work::analyze`]): every repository is looked at, in
//!    parallel and in-process (object counts, fingerprint), and the
//!    decisions of [`plan`] say whether it needs a repack, a check, or
//!    nothing.
//! 4. **Work** ([`work::pool`]): the tasks are done, one repository at a
//!    time per `[fsck] threads`, each under its repository lock, with the
//!    git work in [`work::maintain`].
//!
//! # What is written
//!
//! [`record`]: the status file is rewritten as work finishes (after each
//! repository, at most once a second, and always before waiting for a
//! lock) so a crash loses next to nothing; the manifest gets each fork's
//! forkgroup; errors land in each repository's `grokmirror.fsck.err`, in
//! re-clone requests for grok-pull, and in the report, which also lists
//! repositories that stopped replicating and is mailed at the end.

pub mod check;
pub mod cli;
pub mod forks;
pub mod plan;
pub mod record;
pub mod settings;
pub mod work;

use std::path::Path;

use clap::Parser;
use grokmirror::config::Config;
use grokmirror::formats::fsck_status;
use grokmirror::lock;
use grokmirror_cli::usage;
use tracing::{info, warn};

pub use cli::Cli;
use plan::schedule::Mode;
use record::replication;
use record::report::{self, Report};
pub use settings::Settings;
use work::FsckRun;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-fsck", || run(&cli))
}

/// The repack policy as the git on PATH can carry it out (cruft packs,
/// geometric repacks, split commit-graphs), each difference in the log.
fn fit_to_this_git(
    policy: grokmirror::repo::repack::RepackPolicy,
) -> grokmirror::repo::repack::RepackPolicy {
    let version = match grokmirror::git::Git::from_env().version() {
        Ok(v) => Some(v),
        Err(e) => {
            warn!("{e}; doing only what every git can");
            None
        }
    };
    let (policy, said) = policy.fit_to_git(version);
    for line in said {
        info!("{line}");
    }
    policy
}

/// Run grok-fsck with parsed flags. Exit status: 0 when all went well (or
/// another grok-fsck is already at work on this tree), 1 when critical
/// errors were found (they are mailed), 2 for usage or config errors,
/// 128 + the signal's number when SIGINT (130) or SIGTERM (143) stopped it.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    let config = Config::load(&cli.config)?;
    let mut settings = Settings::from_config(&config, &cli.config)?;
    let _log = grokmirror_cli::init_logging(
        "fsck",
        cli.verbose,
        config.core.log.clone(),
        config.core.loglevel,
    )?;
    grokmirror_cli::interrupt::install();
    settings.policy = fit_to_this_git(settings.policy);
    let status_dir = settings
        .statusfile
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !status_dir.is_dir() {
        return Err(usage(format!(
            "the directory of [fsck] statusfile, {}, does not exist; create it or change statusfile",
            status_dir.display()
        )));
    }
    let Some(_tree_lock) = fsck_status::try_lock(&settings.statusfile)? else {
        info!(
            "Another grok-fsck holds {}; leaving this tree to it",
            lock::file_lock_path(&settings.statusfile).display()
        );
        return Ok(grokmirror_cli::EXIT_OK);
    };
    let report = Report::default();
    let mode = Mode {
        force: cli.forced(),
        repack_only: cli.repack_only,
        repack_all_quick: cli.repack_all_quick,
        repack_all_full: cli.repack_all_full,
    };
    let result = FsckRun::new(&settings, &report, mode, cli.connectivity_only).run();
    if let Some(code) = grokmirror_cli::interrupt::stopped_status() {
        // Errors found before the stop are in the log; the report is
        // mailed by the next complete run.
        tracing::error!(
            "grok-fsck: interrupted by {}; {} records the repositories finished, the others are done next run",
            grokmirror_cli::interrupt::stopped_by().unwrap_or("a signal"),
            settings.statusfile.display()
        );
        return Ok(code);
    }
    if let Err(e) = replication::check(&config, &settings.manifest, &report) {
        report.critical(format!("cannot compare with the origin: {e:#}"));
    }
    if let Err(e) = &result {
        // Mailed too; main() prints it.
        report.note(format!("grok-fsck stopped: {e:#}"));
    }
    if !report.is_empty() {
        report::mail(&settings, &report);
    }
    result?;
    Ok(if report.is_empty() {
        grokmirror_cli::EXIT_OK
    } else {
        grokmirror_cli::EXIT_FAILURE
    })
}
