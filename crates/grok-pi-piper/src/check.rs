//! `grok-pi-piper --config-check`: every section of its config file (each
//! names an inbox) and `[DEFAULT]`, the programs and log files they name,
//! and, when a repository is given, the settings a run for it would read.
//! Nothing piped, nothing written.

use std::path::Path;

use grokmirror::config::check::{self, probe, Problem, Severity};
use grokmirror_cli::config_check;

use crate::cli::Cli;
use crate::settings::{Error, PiperSettings};

/// Check the config, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    let file = &cli.config;
    let problems = match probe::read_config(file) {
        Err(p) => vec![*p],
        Ok(ini) => {
            let mut problems = check::check_pi_piper_ini(&ini, file);
            for p in probe::probe_pi_piper_paths(&ini, file) {
                check::add_unless_reported(&mut problems, p);
            }
            if let Some(repo) = &cli.repo {
                if let Err(e) = PiperSettings::load(file, repo) {
                    check::add_unless_reported(&mut problems, refusal(file, &e));
                }
            }
            problems
        }
    };
    config_check::report("grok-pi-piper", file, &problems, cli.check.json)
}

/// grok-pi-piper's refusal of the config for one repository, as a problem
/// naming the section and option.
fn refusal(file: &Path, e: &Error) -> Problem {
    let (section, key, value) = match e {
        Error::NoPipe { section, .. } => (section.as_str(), "pipe", None),
        Error::BadPipe { section, pipe, .. } => (section.as_str(), "pipe", Some(pipe.as_str())),
        Error::BadShallow { section, value, .. } => {
            (section.as_str(), "shallow", Some(value.as_str()))
        }
        Error::Read { .. } | Error::Parse { .. } => ("", "", None),
    };
    Problem::new(file, section, key, value, Severity::Error, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::config::ini::Ini;

    /// A value the table accepts is one grok-pi-piper accepts, and the
    /// other way round.
    #[test]
    fn the_table_accepts_exactly_what_grok_pi_piper_accepts() {
        let repo = Path::new("/srv/lkml/git/0.git");
        for (key, values) in [
            ("shallow", &["yes", "no", "1", "maybe", ""][..]),
            (
                "pipe",
                &["None", "/bin/cat", "cat -u 'a b'", "cat 'open", "  "][..],
            ),
        ] {
            for value in values {
                let text = format!("[DEFAULT]\npipe = None\n[lkml]\n{key} = {value}\n");
                let ini = Ini::parse(&text).unwrap();
                let table_err = check::check_pi_piper_ini(&ini, Path::new("p"))
                    .iter()
                    .any(|p| p.severity == Severity::Error);
                let refused = PiperSettings::from_text(&text, Path::new("p"), repo).is_err();
                assert_eq!(table_err, refused, "{key} = {value:?}");
            }
        }
    }
}
