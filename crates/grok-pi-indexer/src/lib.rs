//! grok-pi-indexer: initialise and index mirrored public-inbox archives,
//! the hook program of grokmirror's next release.
//!
//! Used as grok-pull's hooks: `init` as post_clone_complete_hook (the new
//! clones' paths on standard input), `update` as post_update_hook (the
//! fetched epoch's path as the last argument), `extindex` as
//! post_work_complete_hook. An inbox is initialised once (public-inbox-init
//! with what its origin says of it, see [`plan::inbox_settings`]); whether
//! it is shows in its `msgmap.sqlite3`. The public-inbox programs keep
//! their own record of what they indexed.

#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod origins;
pub mod plan;
pub mod work;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, Parser};
use grokmirror::config::LogLevel;
use grokmirror::git::Git;
use grokmirror::tree::{fsutil, Dir, Reserved, Tree};
use tracing::info;

pub use cli::Cli;
use cli::Command;
use plan::{Accept, Indexing};
use work::{Indexer, InitRequest};

/// The most of standard input `init` reads (a list of paths).
const MAX_STDIN_BYTES: u64 = 16 << 20;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-pi-indexer", || run(&cli))
}

/// Run with parsed flags; `Ok` carries the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    let Some(command) = &cli.command else {
        // As upstream: no sub-command, the help and status 1.
        let _ = Cli::command().print_help();
        return Ok(grokmirror_cli::EXIT_FAILURE);
    };
    let _log = grokmirror_cli::init_logging(
        "pi-indexer",
        cli.verbose,
        cli.logfile.clone(),
        if cli.verbose {
            LogLevel::Debug
        } else {
            LogLevel::Info
        },
    )?;
    let indexer = indexer(cli)?;
    let ok = match command {
        Command::Update { repo } => match plan::inbox_of_epoch(&fsutil::absolute(repo)) {
            Some(inbox) => indexer.update(&inbox),
            None => {
                info!(
                    "Nothing to do: {} is not a public-inbox epoch",
                    repo.display()
                );
                true
            }
        },
        Command::Extindex => indexer.extindex(),
        Command::Init(args) => {
            let inboxes = match &args.inboxdir {
                Some(dir) => vec![plan::inbox_of_arg(&fsutil::absolute(dir))],
                None if std::io::stdin().is_terminal() => Vec::new(),
                None => inboxes_on_stdin()?,
            };
            if inboxes.is_empty() {
                info!("Nothing to do");
                return Ok(grokmirror_cli::EXIT_OK);
            }
            let request = InitRequest {
                accept: Accept::new(&args.listid_priority, &args.extra_cfgopts),
                local_toplevel: args.local_toplevel.clone(),
                origin: args.origin_hostname.clone(),
                force: args.force_reinit,
            };
            indexer.init(&inboxes, &request) == 0
        }
    };
    Ok(if ok {
        grokmirror_cli::EXIT_OK
    } else {
        grokmirror_cli::EXIT_FAILURE
    })
}

/// The handles and settings of a run; a missing top level is bad usage.
fn indexer(cli: &Cli) -> anyhow::Result<Indexer> {
    let toplevel = fsutil::absolute(&cli.toplevel);
    let usage = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        grokmirror_cli::usage(format!("{what} {}: {e}; fix the flag", path.display()))
    };
    let tree = Tree::open(&toplevel, Reserved::none())
        .map_err(|e| usage("cannot open the top level", &toplevel, &e))?;
    let real_top =
        std::fs::canonicalize(&toplevel).map_err(|e| usage("cannot resolve", &toplevel, &e))?;
    let pi_top = match &cli.pi_toplevel {
        None => None,
        Some(dir) => {
            let dir = fsutil::absolute(dir);
            std::fs::create_dir_all(&dir).map_err(|e| usage("cannot make", &dir, &e))?;
            Some(Dir::open_root(&dir).map_err(|e| usage("cannot open", &dir, &e))?)
        }
    };
    let pi_config = fsutil::absolute(&cli.pi_config);
    Ok(Indexer {
        git: Git::from_env(),
        pi_config,
        tree,
        real_top,
        pi_top,
        indexing: Indexing {
            level: cli.indexlevel.as_str(),
            jobs: cli.jobs,
            no_fsync: cli.no_fsync,
        },
    })
}

/// The inboxes of the repository paths on standard input, one per line.
fn inboxes_on_stdin() -> anyhow::Result<Vec<PathBuf>> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES)
        .read_to_string(&mut text)
        .context("cannot read the repository paths on standard input")?;
    let paths: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| fsutil::absolute(Path::new(l)))
        .collect();
    Ok(plan::inboxes_of(paths.iter().map(PathBuf::as_path))
        .into_iter()
        .collect())
}
