//! Shell-style patterns with Python `fnmatch` semantics, as grokmirror uses
//! them for include/exclude/nopurge/ffonly/private/ignore/baselines/islandcores.
//!
//! Not `globset`: fnmatch treats `*` as matching `/`, has no `{a,b}`
//! alternation, no `**`, no backslash escapes, and takes an unclosed `[` as a
//! literal; globset cannot be configured into all of those. The pattern is
//! translated to an anchored `regex` the way `fnmatch.translate` does.

use regex::Regex;

/// One compiled fnmatch pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    regex: Regex,
}

impl Glob {
    /// Compile a pattern. Every string is a valid fnmatch pattern, so this
    /// cannot fail.
    pub fn new(pattern: &str) -> Glob {
        let translated = translate(pattern);
        let regex =
            Regex::new(&translated).expect("fnmatch translation always yields a valid regex");
        Glob {
            pattern: pattern.to_string(),
            regex,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `text` matches (case-sensitive, like
    /// `fnmatch.fnmatch` on POSIX).
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// A list of patterns, matching when any one does. Built from a config value
/// with one pattern per line.
#[derive(Debug, Clone, Default)]
pub struct GlobList {
    globs: Vec<Glob>,
}

impl GlobList {
    /// Compile every non-empty, whitespace-trimmed line of `value`.
    pub fn from_lines(value: &str) -> GlobList {
        GlobList::new(value.lines().map(str::trim).filter(|l| !l.is_empty()))
    }

    /// Compile the given patterns.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> GlobList {
        GlobList {
            globs: patterns.into_iter().map(Glob::new).collect(),
        }
    }

    /// Whether any pattern matches `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.globs.iter().any(|g| g.is_match(text))
    }

    /// The first pattern that matches `text`.
    pub fn first_match(&self, text: &str) -> Option<&Glob> {
        self.globs.iter().find(|g| g.is_match(text))
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// The patterns as written.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.globs.iter().map(Glob::as_str)
    }
}

/// Translate an fnmatch pattern into an anchored regex with the same
/// meaning as `fnmatch.translate` (Python 3.9+).
fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("(?s)^(?:");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                while i < chars.len() && chars[i] == '*' {
                    i += 1;
                }
                out.push_str(".*");
            }
            '?' => out.push('.'),
            '[' => match parse_class(&chars, i) {
                Some((class, next)) => {
                    out.push_str(&class);
                    i = next;
                }
                None => out.push_str("\\["),
            },
            other => push_literal(&mut out, other),
        }
    }
    out.push_str(")$");
    out
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Parse a `[...]` class starting just after the `[`. Returns the regex for
/// it and the index after the closing `]`, or `None` when there is no
/// closing bracket (then the `[` is a literal).
fn parse_class(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut j = start;
    if j < chars.len() && chars[j] == '!' {
        j += 1;
    }
    if j < chars.len() && chars[j] == ']' {
        j += 1;
    }
    while j < chars.len() && chars[j] != ']' {
        j += 1;
    }
    if j >= chars.len() {
        return None;
    }
    let body = &chars[start..j];
    let next = j + 1;
    let (negated, items) = match body.first() {
        Some('!') => (true, &body[1..]),
        _ => (false, body),
    };
    if items.is_empty() {
        // `[]` can't occur (the `]` would be a member); `[!]` matches any
        // single character, as in fnmatch.
        return Some((if negated { "." } else { "[a&&b]" }.to_string(), next));
    }
    // Ranges are `a-b` where `-` has a character on both sides; a reversed
    // range is empty and dropped, as fnmatch does.
    let mut ranges: Vec<(char, char)> = Vec::new();
    let mut k = 0;
    while k < items.len() {
        if k + 2 < items.len() && items[k + 1] == '-' {
            let (lo, hi) = (items[k], items[k + 2]);
            if lo <= hi {
                ranges.push((lo, hi));
            }
            k += 3;
        } else {
            ranges.push((items[k], items[k]));
            k += 1;
        }
    }
    if ranges.is_empty() {
        // Only reversed ranges: matches nothing (or anything when negated).
        return Some((if negated { "." } else { "[a&&b]" }.to_string(), next));
    }
    let mut class = String::from(if negated { "[^" } else { "[" });
    for (lo, hi) in ranges {
        class.push_str(&format!("\\x{{{:X}}}", lo as u32));
        if lo != hi {
            class.push_str(&format!("-\\x{{{:X}}}", hi as u32));
        }
    }
    class.push(']');
    Some((class, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).is_match(t)
    }

    #[test]
    fn star_crosses_slashes() {
        assert!(m("*", "/pub/scm/git.git"));
        assert!(m("/pub/*", "/pub/a/b/c.git"));
        assert!(m("*/private/*", "/x/private/y.git"));
        assert!(!m("/pub/*", "/other/a.git"));
    }

    #[test]
    fn question_and_classes() {
        assert!(m("/a?.git", "/ab.git"));
        assert!(!m("/a?.git", "/a.git"));
        assert!(m("/[abc].git", "/b.git"));
        assert!(!m("/[!abc].git", "/b.git"));
        assert!(m("/[!abc].git", "/d.git"));
        assert!(m("/[a-c].git", "/b.git"));
        assert!(m("/[]].git", "/].git"));
        assert!(m("/[!]].git", "/a.git"));
        assert!(m("/[-a].git", "/-.git"));
        assert!(m("/[a-].git", "/-.git"));
        assert!(!m("/[z-a].git", "/m.git"));
    }

    #[test]
    fn literals_that_are_special_elsewhere() {
        assert!(m("/a{b,c}.git", "/a{b,c}.git"));
        assert!(!m("/a{b,c}.git", "/ab.git"));
        assert!(m("/a\\b", "/a\\b"));
        assert!(m("/[abc", "/[abc"));
        assert!(m("/a.b+c(d)|e^$", "/a.b+c(d)|e^$"));
        assert!(m("/[&&]", "/&"));
        assert!(m("/x\ny", "/x\ny"));
        assert!(m("/*", "/x\ny"));
    }

    #[test]
    fn case_sensitive_and_anchored() {
        assert!(!m("/A.git", "/a.git"));
        assert!(!m("/a", "/ab"));
        assert!(!m("b", "ab"));
    }

    #[test]
    fn list_from_lines() {
        let l = GlobList::from_lines("/testing/*\n  /private/*\n\n");
        assert_eq!(l.patterns().count(), 2);
        assert!(l.is_match("/private/x.git"));
        assert!(!l.is_match("/public/x.git"));
        assert!(GlobList::from_lines("").is_empty());
    }
}
