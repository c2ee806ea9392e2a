//! JSON text the way Python's `json.dumps` writes it, so manifests written
//! by us and by grokmirror are byte-for-byte comparable: `ensure_ascii`
//! escaping, `", "`/`": "` separators in compact mode, 2-space indent with
//! `","` line ends in pretty mode, and keys sorted (grokmirror sorts only in
//! pretty mode; sorting always keeps our output deterministic).

use serde_json::Value;

/// Serialize `value` as Python's `json.dumps(value)` would (keys sorted).
pub fn to_python_compact(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, None, 0);
    out
}

/// Serialize `value` as Python's `json.dumps(value, indent=2, sort_keys=True)`.
pub fn to_python_pretty(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, Some(2), 0);
    out
}

fn newline_indent(out: &mut String, indent: usize, level: usize) {
    out.push('\n');
    for _ in 0..indent * level {
        out.push(' ');
    }
}

fn write_value(out: &mut String, value: &Value, indent: Option<usize>, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i == 0, indent, level + 1);
                write_value(out, item, indent, level + 1);
            }
            if let Some(n) = indent {
                newline_indent(out, n, level);
            }
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                separator(out, i == 0, indent, level + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, &map[key], indent, level + 1);
            }
            if let Some(n) = indent {
                newline_indent(out, n, level);
            }
            out.push('}');
        }
    }
}

fn separator(out: &mut String, first: bool, indent: Option<usize>, level: usize) {
    match indent {
        None => {
            if !first {
                out.push_str(", ");
            }
        }
        Some(n) => {
            if !first {
                out.push(',');
            }
            newline_indent(out, n, level);
        }
    }
}

/// A JSON string with everything outside printable ASCII escaped, as
/// `ensure_ascii=True` does (astral characters as surrogate pairs).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
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
