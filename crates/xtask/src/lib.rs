//! Generated documentation of the grokmirror-rs suite, from the single
//! definition of each thing: man pages and shell completions from the clap
//! definitions of the programs, and the example config plus
//! `grokmirror.conf(5)` from the option table in [`options`].
//!
//! Everything generated is checked in; `tests/api/fresh.rs` fails when a
//! checked-in file differs from what this crate generates now.

pub mod conf;
pub use grokmirror::config::options;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use roff::{bold, roman, Roff};

/// The programs of the suite: name and clap command, one line each.
pub fn programs() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("grok-manifest", grok_manifest::Cli::command()),
        ("grok-pull", grok_pull::Cli::command()),
        ("grok-fsck", grok_fsck::Cli::command()),
        ("grok-bundle", grok_bundle::Cli::command()),
        ("grok-dumb-pull", grok_dumb_pull::Cli::command()),
        ("grok-pi-piper", grok_pi_piper::Cli::command()),
        ("grok-snapshot", grok_snapshot::Cli::command()),
        ("grok-shallow-tar", grok_shallow_tar::Cli::command()),
        ("grok-pi-indexer", grok_pi_indexer::Cli::command()),
        ("grok-publish", grok_publish::Cli::command()),
    ]
}

/// The shells we ship completions for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The checkout's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/xtask sits two levels below the root")
        .to_path_buf()
}

/// One generated file: its path relative to the checkout root and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Path relative to the checkout root.
    pub path: PathBuf,
    /// Full contents.
    pub contents: Vec<u8>,
}

/// The directories whose whole contents are generated (a file there that
/// we no longer generate is stale too).
pub const GENERATED_DIRS: [&str; 2] = ["man", "completions"];

/// Man pages of every program, plus `grokmirror.conf(5)`.
pub fn man_pages() -> anyhow::Result<Vec<Generated>> {
    let mut out = Vec::new();
    for (name, cmd) in programs() {
        out.push(Generated {
            path: PathBuf::from(format!("man/{name}.1")),
            contents: program_man_page(name, cmd)?,
        });
    }
    out.push(Generated {
        path: PathBuf::from("man/grokmirror.conf.5"),
        contents: conf::man_page().into_bytes(),
    });
    Ok(out)
}

/// Completions of every program for bash, zsh and fish.
pub fn completions() -> Vec<Generated> {
    let mut out = Vec::new();
    for (name, mut cmd) in programs() {
        for shell in SHELLS {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut buf);
            out.push(Generated {
                path: Path::new("completions").join(completion_file_name(shell, name)),
                contents: buf,
            });
        }
    }
    out
}

/// Where each shell expects a program's completion file to be called.
pub fn completion_file_name(shell: Shell, program: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{program}"),
        other => format!("{program}.{other}"),
    }
}

/// The example config at the top of the checkout.
pub fn example_config() -> Generated {
    Generated {
        path: PathBuf::from("grokmirror.conf.example"),
        contents: conf::example().into_bytes(),
    }
}

/// The example grok-pi-piper config at the top of the checkout.
pub fn pi_piper_example_config() -> Generated {
    Generated {
        path: PathBuf::from("pi-piper.conf.example"),
        contents: conf::pi_piper_example().into_bytes(),
    }
}

/// Everything generated.
pub fn all() -> anyhow::Result<Vec<Generated>> {
    let mut out = man_pages()?;
    out.extend(completions());
    out.push(example_config());
    out.push(pi_piper_example_config());
    Ok(out)
}

/// Write generated files below `root`, creating directories.
pub fn write(root: &Path, files: &[Generated]) -> anyhow::Result<()> {
    for f in files {
        let path = root.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &f.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Remove files in the generated directories that are not among `files`
/// (e.g. the man page of a program that was renamed). Only call this with
/// the complete set from [`all`].
pub fn prune(root: &Path, files: &[Generated]) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for dir in GENERATED_DIRS {
        for extra in unexpected_files(root, dir, files)? {
            std::fs::remove_file(root.join(&extra))
                .with_context(|| format!("cannot remove stale {}", extra.display()))?;
            removed.push(extra);
        }
    }
    Ok(removed)
}

/// Files under `root/dir` that are not among `files` (relative paths).
pub fn unexpected_files(
    root: &Path,
    dir: &str,
    files: &[Generated],
) -> anyhow::Result<Vec<PathBuf>> {
    let full = root.join(dir);
    let mut extra = Vec::new();
    let entries = match std::fs::read_dir(&full) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(extra),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", full.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", full.display()))?;
        let rel = Path::new(dir).join(entry.file_name());
        if !files.iter().any(|f| f.path == rel) {
            extra.push(rel);
        }
    }
    extra.sort();
    Ok(extra)
}

/// Differences between `files` and what is checked in below `root`: one
/// line per file that is missing, different or no longer generated.
pub fn stale(root: &Path, files: &[Generated]) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for f in files {
        match std::fs::read(root.join(&f.path)) {
            Ok(on_disk) if on_disk == f.contents => {}
            Ok(_) => problems.push(format!("{} is out of date", f.path.display())),
            Err(_) => problems.push(format!("{} is missing", f.path.display())),
        }
    }
    for dir in GENERATED_DIRS {
        for extra in unexpected_files(root, dir, files)? {
            problems.push(format!("{} is no longer generated", extra.display()));
        }
    }
    Ok(problems)
}

/// A program's man page: clap_mangen's sections, then ours.
fn program_man_page(name: &str, cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("grokmirror-rs");
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    if let Some(commands) = subcommand_section(&cmd) {
        buf.write_all(commands.render().as_bytes())?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(&mut buf)?;
    }
    buf.write_all(common_sections(name).render().as_bytes())?;
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

/// COMMANDS, for a program with sub-commands: each one's usage, what it
/// does, and its own flags and arguments (clap_mangen lists only names).
fn subcommand_section(cmd: &clap::Command) -> Option<Roff> {
    let mut subs = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .peekable();
    subs.peek()?;
    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    for sub in subs {
        let mut sub = sub
            .clone()
            .bin_name(format!("{} {}", cmd.get_name(), sub.get_name()));
        r.control("TP", []);
        r.text([bold(
            sub.render_usage().to_string().trim_start_matches("Usage: "),
        )]);
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        r.text([roman(about)]);
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = arg.get_id().as_str();
            if id == "help" {
                continue;
            }
            let takes_value = arg.get_action().takes_values();
            let values = arg.get_value_names().filter(|_| takes_value);
            let name = match (arg.get_long(), values) {
                (Some(long), Some(v)) => format!("--{long} <{}>", v[0]),
                (Some(long), None) => format!("--{long}"),
                (None, Some(v)) => v[0].to_string(),
                (None, None) => id.to_string(),
            };
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .filter(|_| takes_value)
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            let mut help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !defaults.is_empty() {
                help.push_str(&format!(" [default: {}]", defaults.join(",")));
            }
            r.control("RS", []);
            r.control("TP", []);
            r.text([bold(name)]);
            r.text([roman(help)]);
            r.control("RE", []);
        }
    }
    Some(r)
}

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO, shared by every program.
fn common_sections(name: &str) -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "Everything asked for was done."),
        (
            "1",
            "Something failed (a repository, the manifest, the network); \
             the error is on standard error and in the log.",
        ),
        (
            "2",
            "Wrong flags or an unusable config file; nothing was changed.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(meaning)]);
    }
    r.control("PP", []);
    r.text([roman(
        "With --config-check the status says what the check found: 0 no problem, \
         1 warnings only (an option no program reads, an origin that does not answer), \
         2 at least one error (a value or a path the program refuses or would fail on). \
         Each problem is one line on standard output naming the file, the section, the \
         option and its value; with --json, one JSON document instead, whose problems \
         list has file, section, key, value, message and severity (error or warning).",
    )]);
    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", []);
    r.text([bold("GITBIN")]);
    r.text([roman(
        "The git program to run (default: git from PATH). The Python grokmirror \
         honours the same variable.",
    )]);
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([bold("/etc/grokmirror/NAME.conf")]);
    r.text([roman(
        "The config file, by convention one per mirrored collection; the systemd \
         units in contrib/systemd take NAME as their instance name. See \
         grokmirror.conf(5) and grokmirror.conf.example.",
    )]);
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = [
        "grok-manifest",
        "grok-pull",
        "grok-fsck",
        "grok-bundle",
        "grok-dumb-pull",
        "grok-pi-piper",
        "grok-snapshot",
        "grok-shallow-tar",
        "grok-pi-indexer",
        "grok-publish",
    ]
    .iter()
    .filter(|p| **p != name)
    .map(|p| format!("{p}(1)"))
    .collect();
    refs.push("grokmirror.conf(5)".into());
    refs.push("git(1)".into());
    r.text([roman(refs.join(", "))]);
    r
}

#[cfg(test)]
mod option_coverage;
