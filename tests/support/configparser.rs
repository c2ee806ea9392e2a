//! Our INI reader and Python's configparser (with ExtendedInterpolation,
//! as grokmirror uses it) side by side: each dumps its view of a config
//! text as JSON, `{section: {key: {"value", "bool"} or {"error"}}}`, so
//! tests can demand the two agree.

use std::collections::BTreeMap;
use std::process::Command;

use grokmirror::config::ini::{self, Ini};

/// Python's view: {section: {key: interpolated value or {"error": ...}}}
/// plus, for every value, what getboolean makes of it.
const DUMP: &str = r#"
import sys, json, configparser
cp = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
cp.read_string(sys.stdin.read())
out = {}
for sect in cp.sections():
    out[sect] = {}
    for key in cp[sect]:
        try:
            val = cp[sect][key]
        except Exception as ex:
            out[sect][key] = {"error": type(ex).__name__}
            continue
        try:
            b = cp[sect].getboolean(key)
        except ValueError:
            b = None
        out[sect][key] = {"value": val, "bool": b}
print(json.dumps(out))
"#;

/// Python configparser's view of `text` (runs `python3`; panics if it
/// cannot, since the comparison is the point of the test).
pub fn python_view(text: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", DUMP])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Our [`Ini`]'s view of `text`, in the same shape as [`python_view`].
pub fn our_view(text: &str) -> serde_json::Value {
    let parsed = Ini::parse(text).expect("we parse what python parses");
    let mut out: BTreeMap<String, BTreeMap<String, serde_json::Value>> = BTreeMap::new();
    for sect in parsed.sections() {
        let entry = out.entry(sect.to_string()).or_default();
        for key in parsed.keys(sect) {
            let v = match parsed.get(sect, &key) {
                Ok(Some(val)) => serde_json::json!({"value": val, "bool": ini::parse_bool(&val)}),
                Ok(None) => unreachable!("listed keys exist"),
                Err(e) => {
                    let name = match e {
                        ini::Error::InterpolationMissing { .. } => {
                            "InterpolationMissingOptionError"
                        }
                        ini::Error::InterpolationSyntax { .. } => "InterpolationSyntaxError",
                        ini::Error::InterpolationDepth { .. } => "InterpolationDepthError",
                        other => panic!("unexpected {other}"),
                    };
                    serde_json::json!({"error": name})
                }
            };
            entry.insert(key, v);
        }
    }
    serde_json::to_value(out).unwrap()
}
