//! `--config-check`: every problem of a config file found at once, each
//! naming the file, the section, the option and its value, and what to do.
//!
//! The values are judged from the option table ([`super::options`], each
//! option's [`Kind`]) by pure functions ([`value`]); what the disk says
//! about paths is the separate edge [`probe`]. A program adds what only it
//! knows (its own settings parser's verdict, the origin's reachability) and
//! prints the list; nothing here takes a lock or writes anything.

pub mod probe;
pub mod value;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ini::{self, Ini};
use super::options::{options, pi_piper_options, sections, ConfOption, Kind};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing, but the program runs (an unknown option, an origin that
    /// does not answer right now, a value taken as the default).
    Warning,
    /// The program refuses the config, or fails as soon as it gets there.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found in a config file (or on a command line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The config file (or `command line` for a flag's value).
    pub file: PathBuf,
    /// The section, without brackets (empty when the whole file is meant).
    pub section: String,
    /// The option (empty when the whole section or file is meant).
    pub key: String,
    /// The value as the program reads it (interpolated), when there is one.
    pub value: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
    /// How bad it is.
    pub severity: Severity,
}

impl Problem {
    /// A problem with `[section] key = value`.
    pub fn new(
        file: &Path,
        section: &str,
        key: &str,
        value: Option<&str>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            file: file.to_path_buf(),
            section: section.to_string(),
            key: key.to_string(),
            value: value.map(str::to_string),
            message: message.into(),
            severity,
        }
    }
}

impl fmt::Display for Problem {
    /// `error: /etc/g.conf: [pull] purgeprotect = "250": expected ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.severity, self.file.display())?;
        if !self.section.is_empty() {
            write!(f, "[{}]", self.section)?;
            if !self.key.is_empty() {
                write!(f, " {}", self.key)?;
            }
            if let Some(v) = &self.value {
                write!(f, " = {v:?}")?;
            }
            f.write_str(": ")?;
        } else if !self.key.is_empty() {
            // A flag's value: `--outdir "/srv/b": ...`.
            f.write_str(&self.key)?;
            if let Some(v) = &self.value {
                write!(f, " {v:?}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// The worst severity among `problems`, `None` when there are none.
pub fn worst(problems: &[Problem]) -> Option<Severity> {
    problems.iter().map(|p| p.severity).max()
}

/// Add `problem` unless an error about the same option is already listed
/// (the settings parser and the table often see the same mistake).
pub fn add_unless_reported(problems: &mut Vec<Problem>, problem: Problem) {
    let dup = problems.iter().any(|p| {
        p.severity == Severity::Error
            && p.section == problem.section
            && p.key == problem.key
            && !p.section.is_empty()
    });
    if !dup {
        problems.push(problem);
    }
}

fn unknown_key(file: &Path, section: &str, key: &str, value: Option<String>) -> Problem {
    Problem::new(
        file,
        section,
        key,
        value.as_deref(),
        Severity::Warning,
        "no program reads this option (a typo?); it is ignored: see grokmirror.conf(5)",
    )
}

fn judge(file: &Path, ini: &Ini, section: &str, opt: &ConfOption) -> Option<Problem> {
    match ini.get(section, opt.key) {
        Ok(None) => None,
        Err(e) => Some(Problem::new(
            file,
            section,
            opt.key,
            ini.get_raw(section, opt.key),
            Severity::Error,
            format!("{e}; fix the ${{...}} reference"),
        )),
        Ok(Some(v)) => value::check_value(&opt.kind, &v)
            .map(|f| Problem::new(file, section, opt.key, Some(&v), f.severity, f.message)),
    }
}

/// The options of grokmirror.conf that `program` reads.
pub fn read_by(program: &str) -> impl Iterator<Item = &'static ConfOption> + '_ {
    options()
        .iter()
        .filter(move |o| o.read_by.contains(&program))
}

/// Judge a grokmirror.conf for `program`: the value of every option it
/// reads, and a warning for each option of a known section that nothing
/// reads. Other sections are left alone, as configparser and grokmirror
/// leave them. Pure: no disk, no network.
pub fn check_ini(ini: &Ini, file: &Path, program: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    for section in sections() {
        for key in ini.own_keys(section.name) {
            if !options()
                .iter()
                .any(|o| o.section == section.name && o.key == key)
            {
                let value = ini.get_raw(section.name, &key).map(str::to_string);
                problems.push(unknown_key(file, section.name, &key, value));
            }
        }
    }
    for opt in read_by(program) {
        if opt.section != ini::DEFAULT_SECTION && !ini.has_section(opt.section) {
            continue;
        }
        problems.extend(judge(file, ini, opt.section, opt));
    }
    problems
}

/// Judge a grok-pi-piper config: every section (each names a public-inbox
/// archive) and `[DEFAULT]`, each option written there, and a warning for
/// options grok-pi-piper does not know. Pure.
pub fn check_pi_piper_ini(ini: &Ini, file: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let names = std::iter::once(ini::DEFAULT_SECTION).chain(ini.sections());
    for section in names {
        for key in ini.own_keys(section) {
            match pi_piper_options().iter().find(|o| o.key == key) {
                None => {
                    let value = ini.get_raw(section, &key).map(str::to_string);
                    problems.push(unknown_key(file, section, &key, value));
                }
                Some(opt) => problems.extend(judge(file, ini, section, opt)),
            }
        }
    }
    // A repository matching no section gets [DEFAULT]; one with no pipe
    // anywhere is refused.
    if ini.get_raw(ini::DEFAULT_SECTION, "pipe").is_none() {
        let sections: Vec<&str> = ini.sections().collect();
        for section in sections {
            if ini.get_raw(section, "pipe").is_none() {
                problems.push(Problem::new(
                    file,
                    section,
                    "pipe",
                    None,
                    Severity::Error,
                    "no pipe here nor in [DEFAULT]: its repositories would be refused; set pipe = COMMAND (or None)",
                ));
            }
        }
        problems.push(Problem::new(
            file,
            ini::DEFAULT_SECTION,
            "pipe",
            None,
            Severity::Warning,
            "not set: a repository matching no section is refused; set pipe = None to skip those",
        ));
    }
    problems
}

/// A problem made of a program's own refusal (its settings parser's error
/// message): the section and option are read back from the `[section] key`
/// the message names, when it names one.
pub fn problem_from_message(file: &Path, message: &str) -> Problem {
    let (section, key) = named_option(message).unwrap_or_default();
    let value = (!section.is_empty())
        .then(|| quoted_after(message, &format!("[{section}] {key} = ")))
        .flatten();
    let message = message
        .strip_prefix(&format!("config file {}: ", file.display()))
        .unwrap_or(message);
    Problem::new(
        file,
        &section,
        &key,
        value.as_deref(),
        Severity::Error,
        message,
    )
}

/// The first `[section] key` in a message.
fn named_option(message: &str) -> Option<(String, String)> {
    let start = message.find('[')?;
    let rest = &message[start + 1..];
    let end = rest.find(']')?;
    let section = &rest[..end];
    if section.is_empty() || section.contains(char::is_whitespace) {
        return None;
    }
    let key: String = rest[end + 1..]
        .strip_prefix(' ')?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some((section.to_string(), key))
}

/// The Rust-debug-quoted string right after `prefix` in `message`.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// The kind of `[section] key` in the table, if it is an option.
pub fn kind_of(section: &str, key: &str) -> Option<Kind> {
    options()
        .iter()
        .find(|o| o.section == section && o.key == key)
        .map(|o| o.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, program: &str) -> Vec<Problem> {
        check_ini(
            &Ini::parse(text).unwrap(),
            Path::new("/etc/g.conf"),
            program,
        )
    }

    #[test]
    fn every_bad_value_is_found_at_once() {
        let p = check(
            "[core]\ntoplevel = /srv\nloglevel = loud\n[pull]\npurgeprotect = 250\npurge = maybe\nrefresh = 300\n[fsck]\nfrequency = 0\n",
            "grok-pull",
        );
        let keys: Vec<(&str, Severity)> = p.iter().map(|p| (p.key.as_str(), p.severity)).collect();
        assert_eq!(
            keys,
            vec![
                ("loglevel", Severity::Warning),
                ("purge", Severity::Error),
                ("purgeprotect", Severity::Error),
            ],
            "{p:?}"
        );
        let line = p[2].to_string();
        assert_eq!(
            line,
            "error: /etc/g.conf: [pull] purgeprotect = \"250\": expected a whole number from 1 to 99"
        );
        // grok-fsck reads [fsck], not [pull] purge.
        let p = check(
            "[core]\ntoplevel = /srv\n[pull]\npurge = maybe\n[fsck]\nfrequency = 0\n",
            "grok-fsck",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "frequency");
    }

    #[test]
    fn unknown_options_warn_and_unknown_sections_are_ignored() {
        let p = check(
            "[core]\ntoplevel = /srv\ntoplevl = /x\n[pull]\npruge = yes\n[mysite]\nanything = 1\n",
            "grok-manifest",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|p| p.severity == Severity::Warning));
        assert_eq!(
            (p[0].section.as_str(), p[0].key.as_str()),
            ("core", "toplevl")
        );
        assert_eq!(
            (p[1].section.as_str(), p[1].key.as_str()),
            ("pull", "pruge")
        );
        assert_eq!(p[1].value.as_deref(), Some("yes"));
    }

    #[test]
    fn broken_interpolation_is_an_error_on_its_option() {
        let p = check(
            "[core]\ntoplevel = /srv\nmanifest = ${nowhere}/m.js.gz\n",
            "grok-pull",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "manifest");
        assert_eq!(p[0].severity, Severity::Error);
        assert_eq!(p[0].value.as_deref(), Some("${nowhere}/m.js.gz"));
    }

    #[test]
    fn pi_piper_sections_are_all_checked() {
        let ini = Ini::parse(
            "[DEFAULT]\npipe = None\nshallow = no\n[lkml]\npipe = /bin/cat 'x\nshalow = yes\n",
        )
        .unwrap();
        let p = check_pi_piper_ini(&ini, Path::new("p.conf"));
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            (p[0].section.as_str(), p[0].key.as_str(), p[0].severity),
            ("lkml", "pipe", Severity::Error)
        );
        assert_eq!(
            (p[1].key.as_str(), p[1].severity),
            ("shalow", Severity::Warning)
        );
    }

    #[test]
    fn a_programs_refusal_names_its_option() {
        let p = problem_from_message(
            Path::new("/etc/g.conf"),
            "config file /etc/g.conf: [pull] shard_peers = \"a\\\"b\" is not a list of 3 URLs",
        );
        assert_eq!(
            (p.section.as_str(), p.key.as_str()),
            ("pull", "shard_peers")
        );
        assert_eq!(p.value.as_deref(), Some("a\"b"));
        assert!(p.message.starts_with("[pull] shard_peers"), "{}", p.message);
        let p = problem_from_message(Path::new("g"), "something broke");
        assert_eq!((p.section.as_str(), p.key.as_str()), ("", ""));
        assert_eq!(p.to_string(), "error: g: something broke");

        let mut list = vec![p.clone()];
        let same = Problem::new(Path::new("g"), "pull", "x", None, Severity::Error, "a");
        add_unless_reported(&mut list, same.clone());
        add_unless_reported(&mut list, same);
        assert_eq!(list.len(), 2);
        assert_eq!(worst(&list), Some(Severity::Error));
        assert_eq!(worst(&[]), None);
    }
}
