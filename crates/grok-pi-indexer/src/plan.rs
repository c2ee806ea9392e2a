//! The decisions of grok-pi-indexer, free of I/O: which inbox a repository
//! path belongs to, what an origin's inbox config says (it is untrusted:
//! bounded, and nothing in it can become an option of public-inbox-init),
//! and the command lines of the public-inbox programs.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use grokmirror::config::glob::Glob;
use grokmirror::formats::cut_at;

/// The most of an origin's inbox config we read.
pub const MAX_ORIGINS_BYTES: usize = 64 * 1024;
/// The longest value we take from it.
const MAX_VALUE_BYTES: usize = 1024;
/// The most addresses (and accepted options) we take from it.
const MAX_VALUES: usize = 64;

/// Why an origin's inbox config is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Larger than [`MAX_ORIGINS_BYTES`].
    #[error("it is larger than {MAX_ORIGINS_BYTES} bytes")]
    TooBig,
    /// A line that is neither a comment, a section nor `key = value`.
    #[error("line {line}: {text:?} is not `key = value`")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line (cut to 80 bytes).
        text: String,
    },
    /// A value public-inbox-init would misread.
    #[error("line {line}: {key} = {value:?}: {why}")]
    BadValue {
        /// 1-based line number.
        line: usize,
        /// The option.
        key: String,
        /// The value (cut to 80 bytes).
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// More addresses or options than [`MAX_VALUES`].
    #[error("it has more than {MAX_VALUES} addresses or options")]
    TooMany,
}

/// The inbox directory of an epoch, `.../<inbox>/git/<N>.git`: `None` for
/// any other path.
pub fn inbox_of_epoch(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let number = name.strip_suffix(".git")?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let git = path.parent()?;
    if git.file_name()? != "git" {
        return None;
    }
    let inbox = git.parent()?;
    inbox.file_name()?;
    Some(inbox.to_path_buf())
}

/// The inboxes of the repository paths a hook was given (each once, in
/// order); paths that are not epochs are left out.
pub fn inboxes_of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> BTreeSet<PathBuf> {
    paths.into_iter().filter_map(inbox_of_epoch).collect()
}

/// An inbox given by the operator: an epoch stands for its inbox; anything
/// else is taken as the inbox directory itself.
pub fn inbox_of_arg(path: &Path) -> PathBuf {
    inbox_of_epoch(path).unwrap_or_else(|| path.to_path_buf())
}

/// Where an inbox lies below the top level, as plain names; `None` when
/// `inbox` (an absolute, normalised path) is not strictly below `toplevel`.
pub fn relative_below(toplevel: &Path, inbox: &Path) -> Option<PathBuf> {
    let rel = inbox.strip_prefix(toplevel).ok()?;
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && !rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

/// Which options of an origin's config are taken and how List-Ids are
/// boosted (`init`'s `--listid-priority` and `--extra-cfgopts`).
#[derive(Debug, Clone)]
pub struct Accept {
    /// Patterns, highest priority first.
    priority: Vec<Glob>,
    /// Options passed on with `-c` (always `listid`).
    options: BTreeSet<String>,
}

impl Accept {
    /// From the two comma-separated flags.
    pub fn new(listid_priority: &str, extra_cfgopts: &str) -> Accept {
        let words = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        };
        let mut options: BTreeSet<String> = words(extra_cfgopts).into_iter().collect();
        options.insert("listid".to_string());
        Accept {
            priority: words(listid_priority)
                .iter()
                .map(|p| Glob::new(p))
                .collect(),
            options,
        }
    }

    /// The search boost of a List-Id: 10 and up for one the priority
    /// patterns name (the first pattern highest), 1 for any other; `None`
    /// when no priority is set.
    pub fn boost(&self, listid: &str) -> Option<u32> {
        if self.priority.is_empty() {
            return None;
        }
        let n = self.priority.len() as u32;
        let rank = self.priority.iter().position(|g| g.is_match(listid));
        Some(rank.map_or(1, |i| n - 1 - i as u32 + 10))
    }
}

/// What public-inbox-init is told about a new inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxSettings {
    /// `--ng`.
    pub newsgroup: Option<String>,
    /// Its addresses (at least one).
    pub addresses: Vec<String>,
    /// The text of its `description` file.
    pub description: String,
    /// `-c key=value` options, in the order found.
    pub options: Vec<(String, String)>,
}

/// Refuse a value that public-inbox-init could take for an option, or that
/// is too long or holds control characters.
fn plain_value(line: usize, key: &str, value: &str) -> Result<(), Error> {
    let why = if value.is_empty() {
        Some("it is empty")
    } else if value.len() > MAX_VALUE_BYTES {
        Some("it is too long")
    } else if value.starts_with('-') {
        Some("it starts with '-'")
    } else if value.chars().any(char::is_control) {
        Some("it holds control characters")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::BadValue {
            line,
            key: key.to_string(),
            value: cut(value),
            why,
        }),
    }
}

fn cut(text: &str) -> String {
    cut_at(text, 80).to_string()
}

/// A description: control characters dropped, at most 1024 bytes.
fn tidy_description(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    cut_at(&clean, MAX_VALUE_BYTES).trim().to_string()
}

/// The settings of inbox `name` from its origin's config (`None`: none was
/// found; defaults are used): `address` (any number), `description`,
/// `newsgroup`, `listid` (with its boost) and the accepted options.
pub fn inbox_settings(
    name: &str,
    origins: Option<&str>,
    accept: &Accept,
) -> Result<InboxSettings, Error> {
    let text = origins.unwrap_or("");
    if text.len() > MAX_ORIGINS_BYTES {
        return Err(Error::TooBig);
    }
    let mut settings = InboxSettings {
        newsgroup: None,
        addresses: Vec::new(),
        description: String::new(),
        options: Vec::new(),
    };
    let mut listid = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with([';', '#']) || line.starts_with("[publicinbox") {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::BadLine {
                line: line_no,
                text: cut(line),
            });
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "address" => {
                plain_value(line_no, key, value)?;
                settings.addresses.push(value.to_string());
            }
            "description" => settings.description = tidy_description(value),
            "newsgroup" => {
                plain_value(line_no, key, value)?;
                settings.newsgroup = Some(value.to_string());
            }
            _ if accept.options.contains(key) => {
                plain_value(line_no, key, value)?;
                if key == "listid" {
                    if let Some(boost) = accept.boost(value) {
                        settings.options.push(("boost".into(), boost.to_string()));
                    }
                    listid = Some(value.to_string());
                }
                settings.options.push((key.to_string(), value.to_string()));
            }
            _ => {}
        }
        if settings.addresses.len() > MAX_VALUES || settings.options.len() > MAX_VALUES {
            return Err(Error::TooMany);
        }
    }
    if settings.addresses.is_empty() {
        settings.addresses.push(format!("{name}@localhost"));
    }
    if settings.description.is_empty() {
        let what = listid.as_deref().unwrap_or(name);
        settings.description = format!("{what} archive mirror");
    }
    Ok(settings)
}

/// The URL public-inbox records for an inbox: `--local-toplevel` and the
/// inbox's name.
pub fn local_url(local_toplevel: &str, name: &str) -> String {
    let base = local_toplevel.trim_end_matches('/');
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Where the origin publishes an inbox's config (`None` without an
/// origin).
pub fn config_url(origin: &str, name: &str) -> Option<String> {
    let base = origin.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/{name}/_/text/config/raw"))
}

/// How public-inbox is run: `-L`, `--jobs`, `--no-fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexing {
    /// The index level.
    pub level: &'static str,
    /// `--jobs`.
    pub jobs: Option<u32>,
    /// `--no-fsync`.
    pub no_fsync: bool,
}

impl Indexing {
    fn tuning(&self, argv: &mut Vec<OsString>) {
        if let Some(jobs) = self.jobs {
            argv.push("--jobs".into());
            argv.push(jobs.to_string().into());
        }
        if self.no_fsync {
            argv.push("--no-fsync".into());
        }
    }

    /// `public-inbox-init` for a mirrored v2 inbox (its epochs are there
    /// already; public-inbox-init adds its databases beside them).
    pub fn init_argv(
        &self,
        name: &str,
        pi_dir: &Path,
        url: &str,
        settings: &InboxSettings,
    ) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "public-inbox-init".into(),
            "-V2".into(),
            "-L".into(),
            self.level.into(),
        ];
        if let Some(ng) = &settings.newsgroup {
            argv.push("--ng".into());
            argv.push(ng.into());
        }
        for (key, value) in &settings.options {
            argv.push("-c".into());
            argv.push(format!("{key}={value}").into());
        }
        // Whatever the names and addresses look like, they are not options.
        argv.push("--".into());
        argv.push(name.into());
        argv.push(pi_dir.into());
        argv.push(url.into());
        argv.extend(settings.addresses.iter().map(OsString::from));
        argv
    }

    /// `public-inbox-index` of one inbox; the external indexes are left to
    /// `extindex`.
    pub fn index_argv(&self, pi_dir: &Path) -> Vec<OsString> {
        let mut argv: Vec<OsString> =
            vec!["public-inbox-index".into(), "--no-update-extindex".into()];
        self.tuning(&mut argv);
        argv.push("--".into());
        argv.push(pi_dir.into());
        argv
    }

    /// `public-inbox-extindex` of every configured inbox.
    pub fn extindex_argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "public-inbox-extindex".into(),
            "-L".into(),
            self.level.into(),
            "--all".into(),
        ];
        self.tuning(&mut argv);
        argv
    }
}

#[cfg(test)]
mod tests;
