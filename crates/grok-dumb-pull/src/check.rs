//! `grok-dumb-pull --config-check`: grok-dumb-pull reads no config file, so
//! its arguments are what is checked: each path is a repository or holds
//! some, the hook is an executable program, the log file can be written,
//! and `-s` has a git that runs `git svn`. Nothing fetched, nothing
//! written.

use std::path::Path;

use grokmirror::config::check::Severity;
use grokmirror::config::options::PathUse;
use grokmirror::git::Git;
use grokmirror_cli::config_check::{self, COMMAND_LINE};

use crate::cli::Cli;

/// Check the arguments, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    let mut problems = Vec::new();
    for path in &cli.paths {
        match crate::repos_of(path) {
            Err(why) => problems.push(config_check::command_line_problem(
                "PATHS",
                path,
                Severity::Error,
                why,
            )),
            Ok((repos, _)) if repos.is_empty() => {
                problems.push(config_check::command_line_problem(
                    "PATHS",
                    path,
                    Severity::Warning,
                    "no bare repository was found there; fix the path",
                ))
            }
            Ok((_, unreadable)) if unreadable > 0 => {
                problems.push(config_check::command_line_problem(
                    "PATHS",
                    path,
                    Severity::Warning,
                    format!(
                    "{unreadable} directories below it cannot be searched; fix their permissions"
                ),
                ))
            }
            Ok(_) => {}
        }
    }
    if let Some(hook) = cli
        .post_update_hook
        .as_ref()
        .filter(|h| !h.as_os_str().is_empty())
    {
        problems.extend(config_check::flag_problem(
            "--post-update-hook",
            hook,
            PathUse::Executable,
        ));
    }
    if let Some(log) = &cli.logfile {
        problems.extend(config_check::flag_problem(
            "--logfile",
            log,
            PathUse::WrittenFile,
        ));
    }
    if cli.svn {
        if let Err(e) = crate::check_git_svn(&Git::from_env()) {
            problems.push(config_check::command_line_problem(
                "--svn",
                Path::new(""),
                Severity::Error,
                e.to_string(),
            ));
        }
    }
    config_check::report(
        "grok-dumb-pull",
        Path::new(COMMAND_LINE),
        &problems,
        cli.json,
    )
}
