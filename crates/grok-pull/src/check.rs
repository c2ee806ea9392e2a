//! `grok-pull --config-check`: the config judged from the option table,
//! the paths it names looked at, grok-pull's own settings parser asked
//! (so what passes is what a run accepts), and the origin's manifest
//! asked for, briefly, unless `--no-network`. No lock, nothing written.

use std::path::Path;
use std::time::Duration;

use grokmirror::config::check::{probe, Problem, Severity};
use grokmirror::config::ini::Ini;
use grokmirror::config::Config;

use crate::cli::Cli;
use crate::settings::Settings;

/// The program name the option table knows grok-pull by.
const PROGRAM: &str = "grok-pull";

/// How long the origin gets to answer for its manifest.
pub const ORIGIN_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Check the config of `cli`, print the problems, return the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let file = &cli.config;
    let (ini, mut problems) = grokmirror_cli::config_check::config_problems(PROGRAM, file, || {
        Settings::from_config(Config::load(file)?, cli.purge)?;
        Ok(())
    });
    let remote_broken = problems.iter().any(|p| {
        p.severity == Severity::Error
            && p.section == "remote"
            && (p.key == "manifest" || p.key == "manifest_command")
    });
    if let Some(ini) = &ini {
        problems.extend(notify_secret(ini, file));
    }
    if let Some(ini) = ini.filter(|_| !remote_broken) {
        problems.extend(origin(&ini, file, cli.no_network));
    }
    Ok(grokmirror_cli::config_check::report(
        PROGRAM, file, &problems, cli.json,
    ))
}

/// `[pull] notify_secret_file`: there when notifications need it,
/// readable, not empty, and not readable by group or others.
fn notify_secret(ini: &Ini, file: &Path) -> Vec<Problem> {
    let set = |key| {
        ini.get("pull", key)
            .ok()
            .flatten()
            .filter(|v| !v.trim().is_empty())
    };
    let needed_by = ["notify_listen", "notify_peers"]
        .into_iter()
        .find(|k| set(k).is_some());
    let problem = |value: Option<&str>, severity, message: String| {
        Problem::new(file, "pull", "notify_secret_file", value, severity, message)
    };
    let Some(value) = set("notify_secret_file") else {
        return needed_by
            .map(|k| {
                problem(
                    None,
                    Severity::Error,
                    format!("[pull] {k} is set but notify_secret_file is not: grok-pull refuses to start (exit 2); name a file holding the shared secret"),
                )
            })
            .into_iter()
            .collect();
    };
    let value = value.trim();
    let path = grokmirror::config::expand_user(value);
    let severity = if needed_by.is_some() {
        Severity::Error
    } else {
        Severity::Warning
    };
    if let Err(e) = grokmirror_notify::Secret::load(&path) {
        return vec![problem(Some(value), severity, e.to_string())];
    }
    match grokmirror_notify::mode_of(&path) {
        Some(mode) if grokmirror_notify::readable_by_others(mode) => vec![problem(
            Some(value),
            Severity::Warning,
            format!(
                "the shared secret {} has mode {mode:04o}: readable by group or others; chmod 600 it",
                path.display()
            ),
        )],
        _ => Vec::new(),
    }
}

/// Whether the origin's manifest can be had: a `file://` one exists, an
/// http(s) one answers within [`ORIGIN_PROBE_TIMEOUT`] (skipped with
/// `--no-network`). A `manifest_command` is only looked at as a path.
fn origin(ini: &Ini, file: &Path, no_network: bool) -> Option<Problem> {
    let set = |key| {
        ini.get("remote", key)
            .ok()
            .flatten()
            .filter(|v| !v.trim().is_empty())
    };
    if set("manifest_command").is_some() {
        return None;
    }
    let url = set("manifest")?;
    let message = if let Some(path) = url.strip_prefix("file://") {
        format!(
            "the origin's manifest: {}",
            probe::probe_file_url(Path::new(path))?
        )
    } else if no_network {
        return None;
    } else {
        let why = origin_answers(&url).err()?;
        format!(
            "the origin does not answer for its manifest: {why}; check the URL and the origin \
             (--no-network skips this)"
        )
    };
    Some(Problem::new(
        file,
        "remote",
        "manifest",
        Some(&url),
        Severity::Warning,
        message,
    ))
}

fn origin_answers(url: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
    runtime.block_on(crate::source::probe_http(url, ORIGIN_PROBE_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::config::check;
    use grokmirror::config::options::Kind;

    /// A sample of values for each kind the settings parser validates: a
    /// value the table accepts is one grok-pull accepts, and the other way
    /// round.
    fn samples(kind: &Kind) -> &'static [&'static str] {
        match kind {
            Kind::Bool => &["yes", "no", "On", "0", "maybe", "", "2"],
            Kind::Int { .. } => &["1", "5", "99", "0", "-1", "100", "600", "x", "", "5.5"],
            Kind::Number { .. } => &["", "3.5", "0", "-1", "lots"],
            Kind::Duration { .. } => &["1h", "0", "", "2d", "1y", "90"],
            Kind::Url { strict: true, .. } => &[
                "http://o/m.js",
                "https://o/m.js.gz",
                "file:///m.js",
                "file://rel/m",
                "ftp://o/m",
            ],
            // (ordinal/N depends on the host name: left to the program.)
            Kind::Shard => &["", "1/3", "3/3", "0/1", "half"],
            _ => &[],
        }
    }

    #[test]
    fn the_table_accepts_exactly_what_grok_pull_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let mut compared = 0;
        for opt in check::read_by(PROGRAM) {
            if opt.section == "core" {
                continue; // resolved by Config, before Settings
            }
            for value in samples(&opt.kind) {
                let mut text = format!(
                    "[core]\ntoplevel = {}\n[remote]\nsite = https://o.example\n",
                    dir.path().display()
                );
                if opt.key != "manifest" {
                    text.push_str("manifest = file:///m.js\n");
                }
                if opt.section != "remote" {
                    text.push_str(&format!("[{}]\n", opt.section));
                }
                text.push_str(&format!("{} = {value}\n", opt.key));
                let ini = Ini::parse(&text).unwrap();
                let table_err = check::check_ini(&ini, Path::new("t"), PROGRAM)
                    .iter()
                    .any(|p| p.severity == Severity::Error);
                let config = Config::from_text(&text, Path::new("t"), 0).unwrap();
                let settings_err = Settings::from_config(config, false).is_err();
                assert_eq!(
                    table_err, settings_err,
                    "[{}] {} = {value:?}: the table says error: {table_err}, grok-pull refuses it: {settings_err}\n{text}",
                    opt.section, opt.key
                );
                compared += 1;
            }
        }
        assert!(compared > 50, "{compared}");
    }
}
