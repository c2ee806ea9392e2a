//! JSON text the way Python's `json.dumps` writes it, so manifests written
//! by us and by grokmirror are byte-for-byte comparable: `ensure_ascii`
//! escaping, `", "`/`": "` separators in compact mode, 2-space indent with
//! `","` line ends in pretty mode, and keys sorted (grokmirror sorts only in
//! pretty mode; sorting always keeps our output deterministic).

use serde_json::Value;

/// Something that can be written as Python-compatible JSON.
pub trait PyJson {
    /// Append `self` to the emitter at nesting `level`.
    fn emit(&self, e: &mut Emitter, level: usize);
}

/// Writes Python-style JSON text into a string.
#[derive(Debug)]
pub struct Emitter {
    out: String,
    indent: Option<usize>,
}

impl Emitter {
    /// A compact (`indent` = None) or indented emitter.
    pub fn new(indent: Option<usize>, capacity: usize) -> Emitter {
        Emitter {
            out: String::with_capacity(capacity),
            indent,
        }
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }

    fn newline_indent(&mut self, level: usize) {
        if let Some(n) = self.indent {
            self.out.push('\n');
            for _ in 0..n * level {
                self.out.push(' ');
            }
        }
    }

    fn separator(&mut self, first: bool, level: usize) {
        match self.indent {
            None if !first => self.out.push_str(", "),
            None => {}
            Some(_) => {
                if !first {
                    self.out.push(',');
                }
                self.newline_indent(level);
            }
        }
    }

    /// An object from `(key, value)` pairs, which must come sorted by key.
    pub fn object<'a>(
        &mut self,
        level: usize,
        fields: impl Iterator<Item = (&'a str, &'a dyn PyJson)>,
    ) {
        self.out.push('{');
        if self.object_part(level, false, fields) {
            self.object_end(level);
        } else {
            self.out.push('}');
        }
    }

    /// Entries of an object, without its braces, as [`Emitter::object`]
    /// writes them: for one object written in several parts (see
    /// [`crate::formats::manifest_parallel`]). `continued`: entries came
    /// before these. Returns whether it wrote any.
    pub fn object_part<'a>(
        &mut self,
        level: usize,
        continued: bool,
        fields: impl Iterator<Item = (&'a str, &'a dyn PyJson)>,
    ) -> bool {
        let mut first = !continued;
        let mut wrote = false;
        for (key, value) in fields {
            self.separator(first, level + 1);
            first = false;
            wrote = true;
            write_string(&mut self.out, key);
            self.out.push_str(": ");
            value.emit(self, level + 1);
        }
        wrote
    }

    /// The end of a non-empty object started with [`Emitter::object_part`].
    pub fn object_end(&mut self, level: usize) {
        self.newline_indent(level);
        self.out.push('}');
    }

    /// An array of values.
    pub fn array<'a>(&mut self, level: usize, items: impl Iterator<Item = &'a dyn PyJson>) {
        let mut first = true;
        for item in items {
            if first {
                self.out.push('[');
            }
            self.separator(first, level + 1);
            first = false;
            item.emit(self, level + 1);
        }
        if first {
            self.out.push_str("[]");
        } else {
            self.newline_indent(level);
            self.out.push(']');
        }
    }

    /// A string.
    pub fn string(&mut self, s: &str) {
        write_string(&mut self.out, s);
    }

    /// Raw text (a number, `null`, `true`...).
    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }
}

impl PyJson for Value {
    fn emit(&self, e: &mut Emitter, level: usize) {
        match self {
            Value::Null => e.raw("null"),
            Value::Bool(b) => e.raw(if *b { "true" } else { "false" }),
            Value::Number(n) => e.raw(&n.to_string()),
            Value::String(s) => e.string(s),
            Value::Array(items) => e.array(level, items.iter().map(|v| v as &dyn PyJson)),
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                e.object(
                    level,
                    keys.into_iter()
                        .map(|k| (k.as_str(), &map[k] as &dyn PyJson)),
                );
            }
        }
    }
}

impl PyJson for str {
    fn emit(&self, e: &mut Emitter, _level: usize) {
        e.string(self);
    }
}

impl PyJson for String {
    fn emit(&self, e: &mut Emitter, _level: usize) {
        e.string(self);
    }
}

impl PyJson for i64 {
    fn emit(&self, e: &mut Emitter, _level: usize) {
        e.raw(&self.to_string());
    }
}

impl<T: PyJson> PyJson for Option<T> {
    fn emit(&self, e: &mut Emitter, level: usize) {
        match self {
            Some(v) => v.emit(e, level),
            None => e.raw("null"),
        }
    }
}

impl<T: PyJson> PyJson for Vec<T> {
    fn emit(&self, e: &mut Emitter, level: usize) {
        e.array(level, self.iter().map(|v| v as &dyn PyJson));
    }
}

/// Serialize `value` as Python's `json.dumps(value)` would (keys sorted).
pub fn to_python_compact(value: &dyn PyJson) -> String {
    let mut e = Emitter::new(None, 1024);
    value.emit(&mut e, 0);
    e.finish()
}

/// Serialize `value` as Python's `json.dumps(value, indent=2, sort_keys=True)`.
pub fn to_python_pretty(value: &dyn PyJson) -> String {
    let mut e = Emitter::new(Some(2), 1024);
    value.emit(&mut e, 0);
    e.finish()
}

/// A JSON string with everything outside printable ASCII escaped, as
/// `ensure_ascii=True` does (astral characters as surrogate pairs).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        // Copy the longest run that needs no escaping in one go.
        let run = rest
            .bytes()
            .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
            .unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else { break };
        rest = &rest[c.len_utf8()..];
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_matches_python() {
        let v = json!({"/b.git": {"modified": 1, "head": null, "symlinks": ["/x"]}, "/a.git": {}});
        assert_eq!(
            to_python_compact(&v),
            r#"{"/a.git": {}, "/b.git": {"head": null, "modified": 1, "symlinks": ["/x"]}}"#
        );
    }

    #[test]
    fn pretty_matches_python() {
        let v = json!({"/a.git": {"description": "caf\u{e9} \u{1F600}\u{7f}\"", "symlinks": [], "reference": null}});
        let expected = "{\n  \"/a.git\": {\n    \"description\": \"caf\\u00e9 \\ud83d\\ude00\\u007f\\\"\",\n    \"reference\": null,\n    \"symlinks\": []\n  }\n}";
        assert_eq!(to_python_pretty(&v), expected);
    }
}
