//! How every program prints the result of `--config-check` and which exit
//! status it returns: one line per problem on standard output (or, with
//! `--json`, one JSON document), then 0 when nothing was found, 1 when
//! only warnings were (an unknown option, an origin that does not answer),
//! 2 when there is an error (a value or path the program refuses or fails
//! on) — the same 2 as every other config error.

use std::io::Write;
use std::path::Path;

use grokmirror::config::check::{self, probe, worst, Problem, Severity};
use grokmirror::config::ini::Ini;
use grokmirror::config::options::PathUse;

use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

/// The flags of a check, the same on every program that reads a
/// grokmirror.conf and contacts nothing (grok-pull, which asks its origin,
/// and grok-dumb-pull, which reads no config file, define their own).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigCheckFlags {
    /// Check the config file and exit, changing nothing.
    ///
    /// No lock is taken. Checked: every option's value and the paths it names.
    /// One line per problem on standard output; exits 0 when there is none, 1
    /// for warnings only (an unknown option, say), 2 for errors.
    #[arg(long = "config-check")]
    pub config_check: bool,

    /// With --config-check: print the problems as one JSON document.
    #[arg(long = "json", requires = "config_check")]
    pub json: bool,

    /// With --config-check: contact nothing over the network (accepted
    /// by every program; this one has nothing to contact).
    #[arg(long = "no-network", requires = "config_check")]
    pub no_network: bool,
}

/// The check of a program that reads only grokmirror.conf's `[core]` (and
/// loads it as a run does) and writes into `outdir` when one is given
/// (grok-bundle, grok-snapshot): print the problems, return the exit status.
pub fn check_core_and_outdir(
    program: &str,
    config: &Path,
    outdir: Option<&Path>,
    json: bool,
) -> i32 {
    let (_, mut problems) = config_problems(program, config, || {
        grokmirror::config::Config::load(config)?;
        Ok(())
    });
    if let Some(outdir) = outdir {
        problems.extend(flag_problem("--outdir", outdir, PathUse::DirOrCreatable));
    }
    report(program, config, &problems, json)
}

/// The problems of grokmirror.conf `file` for `program`: its options'
/// values (from the option table), the paths they name, and `verdict`, the
/// program's own settings parser run on the file (so that what passes is
/// what a run accepts), whose refusal is added unless the table already
/// named that option. The parsed file comes back too, for the program's
/// own further checks (`None` when it cannot be read or parsed).
pub fn config_problems(
    program: &str,
    file: &Path,
    verdict: impl FnOnce() -> anyhow::Result<()>,
) -> (Option<Ini>, Vec<Problem>) {
    let ini = match probe::read_config(file) {
        Ok(ini) => ini,
        Err(p) => return (None, vec![*p]),
    };
    let mut problems = check::check_ini(&ini, file, program);
    for p in probe::probe_paths(&ini, file, program) {
        check::add_unless_reported(&mut problems, p);
    }
    if let Err(e) = verdict() {
        check::add_unless_reported(
            &mut problems,
            check::problem_from_message(file, &format!("{e:#}")),
        );
    }
    (Some(ini), problems)
}

/// What `file` stands for in problems with a flag's value.
pub const COMMAND_LINE: &str = "command line";

/// A problem with the value of a flag or argument (a program whose
/// settings are its command line): `file` is [`COMMAND_LINE`], the
/// section empty, the flag its key.
pub fn command_line_problem(
    flag: &str,
    value: &Path,
    severity: Severity,
    message: impl Into<String>,
) -> Problem {
    Problem::new(
        Path::new(COMMAND_LINE),
        "",
        flag,
        Some(&value.to_string_lossy()),
        severity,
        message,
    )
}

/// The problem with a flag's path value (`--outdir`), if it is not fit
/// for `use_`.
pub fn flag_problem(flag: &str, path: &Path, use_: PathUse) -> Option<Problem> {
    let why = probe::probe_path(path, use_)?;
    Some(command_line_problem(flag, path, Severity::Error, why))
}

/// The exit status for a list of problems.
pub fn exit_status(problems: &[Problem]) -> i32 {
    match worst(problems) {
        None => EXIT_OK,
        Some(Severity::Warning) => EXIT_FAILURE,
        Some(Severity::Error) => EXIT_USAGE,
    }
}

/// The JSON document of `--config-check --json`.
pub fn json_document(program: &str, config: &Path, problems: &[Problem]) -> serde_json::Value {
    let count = |s| problems.iter().filter(|p| p.severity == s).count();
    serde_json::json!({
        "program": program,
        "config": config,
        "errors": count(Severity::Error),
        "warnings": count(Severity::Warning),
        "problems": problems,
    })
}

/// The text form: one line per problem, then a summary line.
pub fn text_report(config: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str(&p.to_string());
        out.push('\n');
    }
    let count = |s| problems.iter().filter(|p| p.severity == s).count();
    if problems.is_empty() {
        out.push_str(&format!("{}: no problems found\n", config.display()));
    } else {
        out.push_str(&format!(
            "{}: {} error(s), {} warning(s)\n",
            config.display(),
            count(Severity::Error),
            count(Severity::Warning)
        ));
    }
    out
}

/// Print the problems (text lines or JSON) on standard output and return
/// the exit status.
pub fn report(program: &str, config: &Path, problems: &[Problem], json: bool) -> i32 {
    let text = if json {
        let mut t = serde_json::to_string_pretty(&json_document(program, config, problems))
            .unwrap_or_default();
        t.push('\n');
        t
    } else {
        text_report(config, problems)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    exit_status(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_forms() {
        let f = Path::new("/etc/g.conf");
        let warn = Problem::new(f, "pull", "pruge", Some("yes"), Severity::Warning, "typo?");
        let err = Problem::new(f, "pull", "purge", Some("maybe"), Severity::Error, "bad");
        assert_eq!(exit_status(&[]), 0);
        assert_eq!(exit_status(std::slice::from_ref(&warn)), 1);
        assert_eq!(exit_status(&[warn.clone(), err.clone()]), 2);
        let doc = json_document("grok-pull", f, &[warn.clone(), err.clone()]);
        assert_eq!(doc["errors"], 1);
        assert_eq!(doc["warnings"], 1);
        assert_eq!(doc["problems"][1]["key"], "purge");
        assert_eq!(doc["problems"][1]["value"], "maybe");
        assert_eq!(doc["problems"][1]["severity"], "error");
        assert_eq!(doc["problems"][0]["file"], "/etc/g.conf");
        let text = text_report(f, &[err]);
        assert_eq!(
            text,
            "error: /etc/g.conf: [pull] purge = \"maybe\": bad\n/etc/g.conf: 1 error(s), 0 warning(s)\n"
        );
        assert_eq!(text_report(f, &[]), "/etc/g.conf: no problems found\n");
    }
}
