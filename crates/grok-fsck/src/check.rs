//! `grok-fsck --config-check`: the options grok-fsck reads, the paths they
//! name, and grok-fsck's own settings parser on the file (so what passes
//! is what a run accepts). No lock (not even the tree's), nothing written.

use grokmirror::config::Config;
use grokmirror_cli::config_check;

use crate::cli::Cli;
use crate::settings::Settings;

/// Check the config, print the problems, return the exit status.
pub fn run(cli: &Cli) -> i32 {
    let (_, problems) = config_check::config_problems("grok-fsck", &cli.config, || {
        accepted(&Config::load(&cli.config)?, &cli.config)
    });
    config_check::report("grok-fsck", &cli.config, &problems, cli.check.json)
}

/// What a run refuses of a loaded config: its settings, and `[pull]
/// stale_after`, which the replication report reads at the end of a run.
fn accepted(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    Settings::from_config(config, path)?;
    grokmirror::formats::freshness::stale_after(config)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use grokmirror::config::check::{self, Severity};
    use grokmirror::config::ini::Ini;
    use grokmirror::config::options::Kind;
    use grokmirror::config::Config;

    /// Values for each kind grok-fsck's settings parser validates.
    fn samples(kind: &Kind) -> &'static [&'static str] {
        match kind {
            Kind::Bool => &["yes", "no", "On", "0", "maybe", "", "2"],
            Kind::BoolOr(_) => &["yes", "no", "never", "always", "NEVER", "sometimes", ""],
            Kind::Int { .. } => &[
                "1", "30", "1024", "1025", "36500", "36501", "0", "-1", "x", "",
            ],
            Kind::Duration { .. } => &["14d", "0", "", "2w", "1y", "90"],
            Kind::Words(_) => &["exact", "Loose", " blobs ", "", "fuzzy"],
            _ => &[],
        }
    }

    /// A value the table accepts is one grok-fsck accepts, and the other
    /// way round.
    #[test]
    fn the_table_accepts_exactly_what_grok_fsck_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let mut compared = 0;
        for opt in check::read_by("grok-fsck").filter(|o| o.section != "core") {
            for value in samples(&opt.kind) {
                let mut text = format!(
                    "[core]\ntoplevel = {}\n[fsck]\nstatusfile = /s.js\n",
                    dir.path().display()
                );
                if opt.section != "fsck" {
                    text.push_str(&format!("[{}]\n", opt.section));
                }
                text.push_str(&format!("{} = {value}\n", opt.key));
                let ini = Ini::parse(&text).unwrap();
                let table_err = check::check_ini(&ini, Path::new("t"), "grok-fsck")
                    .iter()
                    .any(|p| p.severity == Severity::Error);
                let config = Config::from_text(&text, Path::new("t"), 0).unwrap();
                let refused = super::accepted(&config, Path::new("t")).is_err();
                assert_eq!(
                    table_err, refused,
                    "[{}] {} = {value:?}: the table says error: {table_err}, grok-fsck refuses it: {refused}",
                    opt.section, opt.key
                );
                compared += 1;
            }
        }
        assert!(compared > 40, "{compared}");
    }
}
