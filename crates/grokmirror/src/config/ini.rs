//! A reader for INI files with the exact semantics of Python's
//! `configparser.ConfigParser(interpolation=ExtendedInterpolation())`, which
//! is what grokmirror 2.x uses for its config file.
//!
//! Written here rather than taken from a crate because none of the INI crates
//! reproduce configparser's rules together: indented continuation lines with
//! blank lines kept inside a value, full-line `#`/`;` comments that do not end
//! a value, `key: value` as well as `key = value`, case-folded keys, a
//! `[DEFAULT]` section inherited by every other, strict duplicate detection,
//! and `${key}` / `${section:key}` / `$$` interpolation resolved at lookup.

use std::collections::BTreeMap;

/// How deep `${...}` references may nest before we call it a loop
/// (configparser's `MAX_INTERPOLATION_DEPTH`).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// The name of the section whose keys every other section inherits.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// What can be wrong with an INI file or with one of its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A line that is neither a section header, an option, a comment nor a
    /// continuation.
    #[error(
        "line {line}: cannot parse {text:?} (expected `[section]`, `key = value` or `key: value`)"
    )]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// An option appears before any `[section]` header.
    #[error("line {line}: option {text:?} appears before any [section] header")]
    MissingSectionHeader {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// The same section header appears twice.
    #[error("line {line}: section [{section}] appears twice")]
    DuplicateSection {
        /// 1-based line number.
        line: usize,
        /// Section name.
        section: String,
    },
    /// The same option appears twice in one section.
    #[error("line {line}: option {key:?} appears twice in section [{section}]")]
    DuplicateOption {
        /// 1-based line number.
        line: usize,
        /// Section name.
        section: String,
        /// Option name (case-folded).
        key: String,
    },
    /// A `$` that is not followed by `$` or `{...}`, or a malformed reference.
    #[error("[{section}] {key}: bad interpolation in {value:?} ({why})")]
    InterpolationSyntax {
        /// Section of the value.
        section: String,
        /// Key of the value.
        key: String,
        /// The raw value.
        value: String,
        /// What is wrong.
        why: String,
    },
    /// `${name}` names an option or section that does not exist.
    #[error("[{section}] {key}: ${{{reference}}} refers to an option that is not set")]
    InterpolationMissing {
        /// Section of the value.
        section: String,
        /// Key of the value.
        key: String,
        /// The reference as written.
        reference: String,
    },
    /// References nest too deeply (most likely a loop).
    #[error("[{section}] {key}: interpolation nests deeper than {MAX_INTERPOLATION_DEPTH} levels (a reference loop?)")]
    InterpolationDepth {
        /// Section of the value.
        section: String,
        /// Key of the value.
        key: String,
    },
}

/// One section's options: case-folded key -> raw (uninterpolated) value.
/// `None` is a key written without a delimiter, which configparser only
/// accepts with `allow_no_value`; we never produce it.
type Options = BTreeMap<String, String>;

/// A parsed INI document. Values are kept raw and interpolated on lookup, as
/// configparser does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    defaults: Options,
    /// Section names are case-sensitive, in the order they first appear.
    sections: Vec<(String, Options)>,
}

/// Python's `str.strip()` with no argument strips Unicode whitespace; for the
/// ASCII files we read this is the same as Rust's `trim`.
fn py_strip(s: &str) -> &str {
    s.trim()
}

impl Ini {
    /// Parse INI text with configparser's default (strict) rules.
    pub fn parse(text: &str) -> Result<Ini, Error> {
        let mut ini = Ini::default();
        // Which section we are in: None before any header, Some(None) for
        // DEFAULT, Some(Some(i)) for sections[i].
        let mut current: Option<Option<usize>> = None;
        let mut seen_sections: Vec<String> = Vec::new();
        let mut seen_options: Vec<(String, String)> = Vec::new();
        // The option that continuation lines append to, with its lines so far.
        let mut open_key: Option<String> = None;
        let mut pending: Vec<String> = Vec::new();
        let mut indent_level = usize::MAX;
        let mut errors: Option<Error> = None;

        // Flush the open option's accumulated lines into its section.
        fn flush(
            ini: &mut Ini,
            current: Option<Option<usize>>,
            key: &mut Option<String>,
            lines: &mut Vec<String>,
        ) {
            if let (Some(section), Some(k)) = (current, key.take()) {
                let joined = lines.join("\n");
                let value = joined.trim_end().to_string();
                match section {
                    None => ini.defaults.insert(k, value),
                    Some(i) => ini.sections[i].1.insert(k, value),
                };
            }
            lines.clear();
        }

        // configparser splits on universal newlines.
        let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        for (idx, line) in normalized.split('\n').enumerate() {
            let lineno = idx + 1;
            let stripped = py_strip(line);
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            if value.is_empty() {
                // Blank lines (not comment lines) are kept inside a value.
                if !is_comment && open_key.is_some() {
                    pending.push(String::new());
                }
                continue;
            }
            let cur_indent = line.len() - line.trim_start().len();
            if open_key.is_some() && current.is_some() && cur_indent > indent_level {
                pending.push(value.to_string());
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = parse_section_header(value) {
                flush(&mut ini, current, &mut open_key, &mut pending);
                if header == DEFAULT_SECTION {
                    current = Some(None);
                } else if let Some(pos) = ini.sections.iter().position(|(n, _)| n == header) {
                    if seen_sections.iter().any(|s| s == header) {
                        return Err(Error::DuplicateSection {
                            line: lineno,
                            section: header.to_string(),
                        });
                    }
                    current = Some(Some(pos));
                } else {
                    ini.sections.push((header.to_string(), Options::new()));
                    seen_sections.push(header.to_string());
                    current = Some(Some(ini.sections.len() - 1));
                }
                continue;
            }
            let Some(section) = current else {
                return Err(Error::MissingSectionHeader {
                    line: lineno,
                    text: line.to_string(),
                });
            };
            match split_option(value) {
                Some((key, val)) if !key.is_empty() => {
                    flush(&mut ini, current, &mut open_key, &mut pending);
                    let key = key.to_lowercase();
                    let section_name = match section {
                        None => DEFAULT_SECTION.to_string(),
                        Some(i) => ini.sections[i].0.clone(),
                    };
                    if seen_options
                        .iter()
                        .any(|(s, k)| *s == section_name && *k == key)
                    {
                        return Err(Error::DuplicateOption {
                            line: lineno,
                            section: section_name,
                            key,
                        });
                    }
                    seen_options.push((section_name, key.clone()));
                    open_key = Some(key);
                    pending.push(val.to_string());
                }
                _ => {
                    // configparser keeps going (the option before a bad line
                    // still takes continuation lines) and reports all bad
                    // lines at the end; the first is enough for a human.
                    if errors.is_none() {
                        errors = Some(Error::Syntax {
                            line: lineno,
                            text: line.to_string(),
                        });
                    }
                }
            }
        }
        flush(&mut ini, current, &mut open_key, &mut pending);
        match errors {
            Some(e) => Err(e),
            None => Ok(ini),
        }
    }

    /// Section names in file order (without `DEFAULT`).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    /// Whether `[section]` exists (`DEFAULT` always does, as in configparser).
    pub fn has_section(&self, section: &str) -> bool {
        section == DEFAULT_SECTION || self.section(section).is_some()
    }

    fn section(&self, name: &str) -> Option<&Options> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
    }

    /// Every key visible in a section (its own and the inherited defaults).
    pub fn keys(&self, section: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.defaults.keys().cloned().collect();
        if let Some(opts) = self.section(section) {
            for k in opts.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// The keys written in the section itself (for `[DEFAULT]`, its own),
    /// without the inherited defaults, in name order.
    pub fn own_keys(&self, section: &str) -> Vec<String> {
        if section == DEFAULT_SECTION {
            return self.defaults.keys().cloned().collect();
        }
        self.section(section)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The raw value of `key` in `section` (falling back to `[DEFAULT]`),
    /// without interpolation. Keys are case-insensitive.
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&str> {
        let key = key.to_lowercase();
        if section != DEFAULT_SECTION {
            let opts = self.section(section)?;
            if let Some(v) = opts.get(&key) {
                return Some(v);
            }
        }
        self.defaults.get(&key).map(String::as_str)
    }

    /// The interpolated value of `key` in `section`, `Ok(None)` when the
    /// section or key does not exist.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, Error> {
        let Some(raw) = self.get_raw(section, key) else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(section, &key.to_lowercase(), raw, &mut out, 1)?;
        Ok(Some(out))
    }

    /// Set (or replace) a raw value, creating the section if needed. Used to
    /// record computed defaults, the way grokmirror writes them back into its
    /// config object.
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let key = key.to_lowercase();
        if section == DEFAULT_SECTION {
            self.defaults.insert(key, value.to_string());
            return;
        }
        if let Some((_, opts)) = self.sections.iter_mut().find(|(n, _)| n == section) {
            opts.insert(key, value.to_string());
        } else {
            let mut opts = Options::new();
            opts.insert(key, value.to_string());
            self.sections.push((section.to_string(), opts));
        }
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        mut rest: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), Error> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(Error::InterpolationDepth {
                section: section.to_string(),
                key: key.to_string(),
            });
        }
        let syntax = |why: &str| Error::InterpolationSyntax {
            section: section.to_string(),
            key: key.to_string(),
            value: self.get_raw(section, key).unwrap_or_default().to_string(),
            why: why.to_string(),
        };
        while !rest.is_empty() {
            let Some(p) = rest.find('$') else {
                out.push_str(rest);
                return Ok(());
            };
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'$') => {
                    out.push('$');
                    rest = &rest[2..];
                }
                Some(b'{') => {
                    // `\$\{([^}]+)\}`: at least one character, no `}` inside.
                    let close = rest[2..].find('}').map(|i| i + 2);
                    let Some(close) = close.filter(|&c| c > 2) else {
                        return Err(syntax("`${` without a matching `}`"));
                    };
                    let reference = &rest[2..close];
                    rest = &rest[close + 1..];
                    let parts: Vec<&str> = reference.split(':').collect();
                    let (ref_section, ref_key) = match parts.as_slice() {
                        [k] => (section.to_string(), k.to_lowercase()),
                        [s, k] => (s.to_string(), k.to_lowercase()),
                        _ => return Err(syntax("more than one `:` in a reference")),
                    };
                    let missing = || Error::InterpolationMissing {
                        section: section.to_string(),
                        key: key.to_string(),
                        reference: reference.to_string(),
                    };
                    if !self.has_section(&ref_section) {
                        return Err(missing());
                    }
                    let value = self.get_raw(&ref_section, &ref_key).ok_or_else(missing)?;
                    if value.contains('$') {
                        self.interpolate(&ref_section, &ref_key, value, out, depth + 1)?;
                    } else {
                        out.push_str(value);
                    }
                }
                _ => return Err(syntax("`$` must be followed by `$` or `{`")),
            }
        }
        Ok(())
    }
}

/// `\[(?P<header>.+)\]` matched at the start of the stripped line: the
/// header runs to the last `]`.
fn parse_section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    if close == 0 {
        return None;
    }
    Some(&rest[..close])
}

/// `(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$`: the option name ends at
/// the first `=` or `:`.
fn split_option(value: &str) -> Option<(&str, &str)> {
    let pos = value.find(['=', ':'])?;
    let key = value[..pos].trim_end();
    let val = value[pos + 1..].trim();
    Some((key, val))
}

/// Parse a boolean the way `ConfigParser.getboolean` does.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// Parse an integer the way Python's `int()` does for the values we see:
/// surrounding whitespace, an optional sign, digits with single `_` between
/// them.
pub fn parse_int(value: &str) -> Option<i64> {
    let v = value.trim();
    let (neg, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_blank_lines_and_comments() {
        let ini = Ini::parse(
            "[pull]\ninclude = /a/*\n    /b/*\n\n    /c/*\n    # not a value\n    /d/*\n\nexclude =\n",
        )
        .unwrap();
        assert_eq!(
            ini.get("pull", "include").unwrap().unwrap(),
            "/a/*\n/b/*\n\n/c/*\n/d/*"
        );
        assert_eq!(ini.get("pull", "exclude").unwrap().unwrap(), "");
    }

    #[test]
    fn interpolation_same_section_default_and_cross_section() {
        let ini = Ini::parse(
            "[DEFAULT]\nbase = /srv\n[core]\ntoplevel = ${base}/git\nmanifest = ${toplevel}/m.js.gz\nprice = 5$$\n[pull]\nprojectslist = ${core:toplevel}/projects.list\n",
        )
        .unwrap();
        assert_eq!(
            ini.get("core", "manifest").unwrap().unwrap(),
            "/srv/git/m.js.gz"
        );
        assert_eq!(ini.get("core", "price").unwrap().unwrap(), "5$");
        assert_eq!(
            ini.get("pull", "projectslist").unwrap().unwrap(),
            "/srv/git/projects.list"
        );
        assert_eq!(ini.get("pull", "base").unwrap().unwrap(), "/srv");
    }

    #[test]
    fn keys_are_case_insensitive_sections_are_not() {
        let ini = Ini::parse("[Core]\nTopLevel: /x\n").unwrap();
        assert_eq!(ini.get("Core", "toplevel").unwrap().unwrap(), "/x");
        assert_eq!(ini.get("core", "toplevel").unwrap(), None);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Ini::parse("toplevel = /x\n"),
            Err(Error::MissingSectionHeader { line: 1, .. })
        ));
        assert!(matches!(
            Ini::parse("[a]\nx=1\n[a]\n"),
            Err(Error::DuplicateSection { line: 3, .. })
        ));
        assert!(matches!(
            Ini::parse("[a]\nx=1\nX=2\n"),
            Err(Error::DuplicateOption { line: 3, .. })
        ));
        assert!(matches!(
            Ini::parse("[a]\njunk\n"),
            Err(Error::Syntax { line: 2, .. })
        ));
        let ini = Ini::parse("[a]\nx = ${nope}\ny = $oops\nz = ${a:b:c}\nl1 = ${l2}\nl2 = ${l1}\n")
            .unwrap();
        assert!(matches!(
            ini.get("a", "x"),
            Err(Error::InterpolationMissing { .. })
        ));
        assert!(matches!(
            ini.get("a", "y"),
            Err(Error::InterpolationSyntax { .. })
        ));
        assert!(matches!(
            ini.get("a", "z"),
            Err(Error::InterpolationSyntax { .. })
        ));
        assert!(matches!(
            ini.get("a", "l1"),
            Err(Error::InterpolationDepth { .. })
        ));
    }

    #[test]
    fn bools_and_ints() {
        for t in ["1", "yes", "TRUE", "On"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "No", "false", "OFF"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("1__0"), None);
        assert_eq!(parse_int("x"), None);
    }
}
