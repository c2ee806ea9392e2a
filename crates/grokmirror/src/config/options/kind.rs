//! What kind of value each option takes, so `--config-check` can judge a
//! value from the table alone. The rules mirror what the programs' settings
//! parsers accept (a test in each program crate holds them to it).

/// How a path option is used, which decides what must be true of it on
/// disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathUse {
    /// An existing directory the programs read and write (`[core]
    /// toplevel`).
    WritableDir,
    /// A directory that is used when it exists and created when missing:
    /// either it is a writable directory, or its parent is one.
    DirOrCreatable,
    /// A file the programs write (or replace): a writable file, or absent
    /// with a writable parent directory.
    WrittenFile,
    /// A program that is run: an existing executable file.
    Executable,
}

/// The kind of value an option takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `yes/no/true/false/on/off/1/0`, any case (configparser's booleans).
    Bool,
    /// A boolean, or one of these extra words (any case).
    BoolOr(&'static [&'static str]),
    /// A whole number from `min` to `max`; `empty_ok` when an empty value
    /// means "unset".
    Int {
        /// Smallest value accepted.
        min: i64,
        /// Largest value accepted.
        max: i64,
        /// Whether an empty value is accepted (as unset).
        empty_ok: bool,
    },
    /// A decimal number, `min` or more; empty means unset.
    Number {
        /// Smallest value accepted.
        min: f64,
    },
    /// Seconds, or numbers with units `s m h d w` (`1h30m`).
    Duration {
        /// Whether zero is accepted.
        zero_ok: bool,
        /// Whether an empty value is accepted (as the default).
        empty_ok: bool,
    },
    /// One of these words (any case, surrounding blanks ignored); the empty
    /// value is accepted when listed.
    Words(&'static [&'static str]),
    /// One of these words; anything else is taken as the first one, with a
    /// warning (the programs do not refuse it).
    WordsOrFirst(&'static [&'static str]),
    /// A path, `~` expanded; empty means unset.
    Path(PathUse),
    /// A URL starting with one of these prefixes; `strict` when the programs
    /// refuse any other (else another is a warning).
    Url {
        /// The accepted prefixes (`https://`).
        prefixes: &'static [&'static str],
        /// Whether another value is an error rather than a warning.
        strict: bool,
    },
    /// `[pull] shard`: `K/N`, or `ordinal/N` (empty: unset).
    Shard,
    /// Shell-style patterns, one per line.
    Globs,
    /// Command lines, one per line; each line's program must exist.
    Commands,
    /// One command line split into words like a shell does (`None`: off).
    CommandLine,
    /// Lines of text.
    Lines,
    /// Free text: any value is accepted.
    Text,
}

impl Kind {
    /// What the value must be, in words (for messages and the man page).
    pub fn describe(&self) -> String {
        match self {
            Kind::Bool => "a boolean (yes or no)".into(),
            Kind::BoolOr(words) => format!("a boolean (yes or no) or {}", words.join(" or ")),
            Kind::Int { min, max, .. } => match (*min, *max) {
                (i64::MIN, i64::MAX) => "a whole number".into(),
                (min, i64::MAX) => format!("a whole number, {min} or more"),
                (min, max) => format!("a whole number from {min} to {max}"),
            },
            Kind::Number { min } => format!("a number, {min} or more"),
            Kind::Duration { .. } => {
                "a duration: seconds, or numbers with s, m, h, d or w (1h30m)".into()
            }
            Kind::Words(words) | Kind::WordsOrFirst(words) => {
                let words: Vec<&str> = words.iter().copied().filter(|w| !w.is_empty()).collect();
                format!("one of: {}", words.join(", "))
            }
            Kind::Path(PathUse::WritableDir) => "an existing writable directory".into(),
            Kind::Path(PathUse::DirOrCreatable) => {
                "a directory, existing or in a writable directory".into()
            }
            Kind::Path(PathUse::WrittenFile) => "a file path in a writable directory".into(),
            Kind::Path(PathUse::Executable) => "an executable program".into(),
            Kind::Url { prefixes, .. } => format!("a URL starting with {}", prefixes.join(" or ")),
            Kind::Shard => "K/N or ordinal/N (1 <= K <= N)".into(),
            Kind::Globs => "shell-style patterns, one per line".into(),
            Kind::Commands => "command lines, one per line".into(),
            Kind::CommandLine => "a command line, or None".into(),
            Kind::Lines => "lines of text".into(),
            Kind::Text => "text".into(),
        }
    }
}

/// A boolean.
pub(super) const BOOL: Kind = Kind::Bool;
/// Any whole number.
pub(super) const ANY_INT: Kind = Kind::Int {
    min: i64::MIN,
    max: i64::MAX,
    empty_ok: false,
};
/// A whole number, 1 or more.
pub(super) const POSITIVE: Kind = Kind::Int {
    min: 1,
    max: i64::MAX,
    empty_ok: false,
};
/// Free text.
pub(super) const TEXT: Kind = Kind::Text;
/// Shell-style patterns.
pub(super) const GLOBS: Kind = Kind::Globs;
/// A file the programs write.
pub(super) const WRITTEN_FILE: Kind = Kind::Path(PathUse::WrittenFile);
/// `[core] loglevel` and grok-pi-piper's: anything but debug is info.
pub(super) const LOGLEVEL: Kind = Kind::WordsOrFirst(&["info", "debug"]);
