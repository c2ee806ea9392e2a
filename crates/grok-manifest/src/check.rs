//! `grok-manifest --config-check`: the options of `--cfgfile` grok-manifest
//! reads, the paths they name, and grok-manifest's own settings (flags
//! and config combined, as a run combines them). No lock, nothing written.

use grokmirror_cli::config_check;

use crate::cli::Cli;
use crate::settings::Settings;

/// Check the config, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    // clap makes --config-check require --cfgfile.
    let file = cli.cfgfile.clone().unwrap_or_default();
    let (_, problems) = config_check::config_problems("grok-manifest", &file, || {
        Settings::from_cli(cli)?;
        Ok(())
    });
    config_check::report("grok-manifest", &file, &problems, cli.json)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;
    use grokmirror::config::check::{self, Severity};
    use grokmirror::config::ini::Ini;
    use grokmirror::config::options::Kind;

    use crate::cli::Cli;
    use crate::settings::Settings;

    /// A value the table accepts is one grok-manifest accepts, and the
    /// other way round.
    #[test]
    fn the_table_accepts_exactly_what_grok_manifest_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.conf");
        let mut compared = 0;
        for opt in check::read_by("grok-manifest") {
            if !matches!(opt.kind, Kind::Bool) {
                continue;
            }
            for value in ["yes", "no", "On", "0", "maybe", "", "2"] {
                let mut text = format!("[core]\ntoplevel = {}\n", dir.path().display());
                if opt.section != "core" {
                    text.push_str(&format!("[{}]\n", opt.section));
                }
                text.push_str(&format!("{} = {value}\n", opt.key));
                std::fs::write(&file, &text).unwrap();
                let ini = Ini::parse(&text).unwrap();
                let table_err = check::check_ini(&ini, Path::new("t"), "grok-manifest")
                    .iter()
                    .any(|p| p.severity == Severity::Error);
                let args = [
                    std::ffi::OsString::from("grok-manifest"),
                    "--cfgfile".into(),
                    file.clone().into(),
                ];
                let cli = Cli::try_parse_from(args).unwrap();
                let refused = Settings::from_cli(&cli).is_err();
                assert_eq!(
                    table_err, refused,
                    "[{}] {} = {value:?}",
                    opt.section, opt.key
                );
                compared += 1;
            }
        }
        assert!(compared >= 28, "{compared}");
    }
}
