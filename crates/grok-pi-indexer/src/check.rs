//! `grok-pi-indexer --config-check`: its flags are its settings, so they
//! are what is checked: the public-inbox config (readable by git, or
//! creatable), the top levels, the log file, and the public-inbox programs
//! a run starts. Nothing indexed, nothing written, nobody contacted.

use std::path::Path;

use grokmirror::config::check::{Problem, Severity};
use grokmirror::config::options::PathUse;
use grokmirror::git::Git;
use grokmirror::tree::fsutil;
use grokmirror_cli::config_check::{self, COMMAND_LINE};

use crate::cli::Cli;

/// The programs a run may start.
pub const PROGRAMS: [&str; 3] = [
    "public-inbox-init",
    "public-inbox-index",
    "public-inbox-extindex",
];

/// The problems with the flags.
pub fn problems(cli: &Cli) -> Vec<Problem> {
    let mut found = Vec::new();
    let pi_config = &cli.pi_config;
    if pi_config.exists() {
        let out = Git::from_env().run(
            None,
            [
                "config".as_ref(),
                "--file".as_ref(),
                pi_config.as_os_str(),
                "--list".as_ref(),
            ],
        );
        match out {
            Ok(out) if out.success() => {}
            Ok(out) => found.push(config_check::command_line_problem(
                "--pi-config",
                pi_config,
                Severity::Error,
                format!(
                    "git cannot read it ({}); fix the file",
                    out.stderr_str().trim()
                ),
            )),
            Err(e) => found.push(config_check::command_line_problem(
                "--pi-config",
                pi_config,
                Severity::Error,
                format!("cannot run git to read it: {e}"),
            )),
        }
    } else {
        found.extend(config_check::flag_problem(
            "--pi-config",
            pi_config,
            PathUse::WrittenFile,
        ));
    }
    found.extend(config_check::flag_problem(
        "--toplevel",
        &cli.toplevel,
        PathUse::WritableDir,
    ));
    if let Some(top) = &cli.pi_toplevel {
        found.extend(config_check::flag_problem(
            "--pi-toplevel",
            top,
            PathUse::DirOrCreatable,
        ));
    }
    if let Some(log) = &cli.logfile {
        found.extend(config_check::flag_problem(
            "--logfile",
            log,
            PathUse::WrittenFile,
        ));
    }
    for program in PROGRAMS {
        if fsutil::resolve_program(program).is_none() {
            found.push(config_check::command_line_problem(
                "PATH",
                Path::new(program),
                Severity::Error,
                format!("{program} is not on PATH; install public-inbox 1.6 or later"),
            ));
        }
    }
    found
}

/// Check, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    config_check::report(
        "grok-pi-indexer",
        Path::new(COMMAND_LINE),
        &problems(cli),
        cli.check.json,
    )
}
