//! Randomized differential tests against Python itself: thousands of
//! generated config documents read by our INI reader and by configparser
//! (ExtendedInterpolation), and thousands of pattern/path pairs matched by
//! our globs and by fnmatch. Inputs come from a seeded generator (set
//! `GROK_FUZZ_SEED` to explore other seeds, `GROK_FUZZ_CASES` for more
//! cases); each batch is handed to one python3 process.

use std::io::Write;
use std::process::{Command, Stdio};

use grokmirror::config::glob::Glob;
use grokmirror::config::ini::{self, Ini};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn seed() -> u64 {
    std::env::var("GROK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6772_6f6b)
}

fn cases(default: usize) -> usize {
    std::env::var("GROK_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Run a python script that reads a JSON list on stdin and prints a JSON
/// list of results.
fn python(script: &str, input: &Value) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the differential tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

// ---------------------------------------------------------------- INI ---

const INI_VIEW: &str = r#"
import sys, json, configparser
out = []
for text in json.load(sys.stdin):
    cp = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    try:
        cp.read_string(text)
    except configparser.Error as ex:
        out.append({"parse_error": type(ex).__name__})
        continue
    view = {}
    for sect in cp.sections():
        view[sect] = {}
        for key in cp[sect]:
            try:
                view[sect][key] = cp[sect][key]
            except configparser.Error as ex:
                view[sect][key] = {"error": type(ex).__name__}
    out.append(view)
print(json.dumps(out))
"#;

/// Python's error class names for our errors.
fn python_error_name(e: &ini::Error) -> &'static str {
    match e {
        ini::Error::Syntax { .. } => "ParsingError",
        ini::Error::MissingSectionHeader { .. } => "MissingSectionHeaderError",
        ini::Error::DuplicateSection { .. } => "DuplicateSectionError",
        ini::Error::DuplicateOption { .. } => "DuplicateOptionError",
        ini::Error::InterpolationSyntax { .. } => "InterpolationSyntaxError",
        ini::Error::InterpolationMissing { .. } => "InterpolationMissingOptionError",
        ini::Error::InterpolationDepth { .. } => "InterpolationDepthError",
    }
}

fn our_ini_view(text: &str) -> Value {
    let parsed = match Ini::parse(text) {
        Ok(p) => p,
        Err(e) => return json!({"parse_error": python_error_name(&e)}),
    };
    let mut view = serde_json::Map::new();
    for sect in parsed.sections() {
        let mut s = serde_json::Map::new();
        for key in parsed.keys(sect) {
            let v = match parsed.get(sect, &key) {
                Ok(v) => json!(v.expect("listed key exists")),
                Err(e) => json!({"error": python_error_name(&e)}),
            };
            s.insert(key, v);
        }
        view.insert(sect.to_string(), Value::Object(s));
    }
    Value::Object(view)
}

/// One random line of an INI-ish document, biased towards the constructs
/// whose rules are subtle.
fn ini_line(rng: &mut StdRng) -> String {
    const SECTIONS: &[&str] = &["core", "pull", "DEFAULT", "Core", "fsck", "a b"];
    const KEYS: &[&str] = &["toplevel", "TopLevel", "include", "x", "log", "k y", "$k"];
    const VALUES: &[&str] = &[
        "/srv/git",
        "${toplevel}/m.js.gz",
        "${core:toplevel}",
        "${nope}",
        "${x}",
        "$$5",
        "cost $5",
        "${a:b:c}",
        "${",
        "yes",
        "a = b",
        "with: colon",
        "trailing   ",
        "# not a comment",
        "; nor this",
        "",
        "caf\u{e9}",
    ];
    let indent = ["", "", "", " ", "  ", "\t"][rng.random_range(0..6)];
    match rng.random_range(0..10) {
        0 => format!("[{}]", SECTIONS[rng.random_range(0..SECTIONS.len())]),
        1 => String::new(),
        2 => format!("{indent}# comment"),
        3 => format!("{indent};comment"),
        4 => format!("{indent}{}", VALUES[rng.random_range(0..VALUES.len())]),
        5 => "junk line without delimiter".to_string(),
        _ => {
            let sep = [" = ", "=", ": ", ":", " =", "  =  "][rng.random_range(0..6)];
            format!(
                "{indent}{}{sep}{}",
                KEYS[rng.random_range(0..KEYS.len())],
                VALUES[rng.random_range(0..VALUES.len())]
            )
        }
    }
}

#[test]
fn ini_reader_matches_configparser_on_generated_documents() {
    let mut rng = StdRng::seed_from_u64(seed());
    let docs: Vec<String> = (0..cases(1500))
        .map(|_| {
            let mut doc = String::new();
            if rng.random_bool(0.8) {
                doc.push_str("[core]\n");
            }
            for _ in 0..rng.random_range(1..12) {
                doc.push_str(&ini_line(&mut rng));
                doc.push('\n');
            }
            doc
        })
        .collect();
    let theirs = python(INI_VIEW, &json!(docs));
    let mut failures = Vec::new();
    for (doc, expected) in docs.iter().zip(&theirs) {
        let ours = our_ini_view(doc);
        if &ours != expected {
            failures.push(format!("{doc:?}\n  ours:   {ours}\n  python: {expected}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches, first:\n{}",
        failures.len(),
        failures[0]
    );
    // The generator must produce both outcomes, or it tests nothing.
    let errors = theirs
        .iter()
        .filter(|v| v.get("parse_error").is_some())
        .count();
    assert!(
        errors > 50 && errors < theirs.len() - 50,
        "{errors} parse errors of {}",
        theirs.len()
    );
}

#[test]
fn ini_bools_and_ints_match_python() {
    let values = [
        "1", "yes", "YES", "true", "On", "0", "no", "False", "OFF", "2", "", " yes", "y", "0x1",
        "12", "-3", "+4", " 5 ", "1_000", "1__0", "_1", "1.0", "\u{661}",
    ];
    let script = r#"
import sys, json, configparser
out = []
cp = configparser.ConfigParser()
for v in json.load(sys.stdin):
    try:
        b = cp.BOOLEAN_STATES[v.lower()]
    except KeyError:
        b = None
    try:
        i = int(v) if v.isascii() else None
    except ValueError:
        i = None
    out.append([b, i])
print(json.dumps(out))
"#;
    let theirs = python(script, &json!(values));
    for (v, t) in values.iter().zip(theirs) {
        assert_eq!(
            json!([ini::parse_bool(v), ini::parse_int(v)]),
            t,
            "value {v:?}"
        );
    }
}

// -------------------------------------------------------------- globs ---

const FNMATCH: &str = r#"
import sys, json, fnmatch
print(json.dumps([fnmatch.fnmatchcase(t, p) for p, t in json.load(sys.stdin)]))
"#;

fn random_string(rng: &mut StdRng, alphabet: &[char], max: usize) -> String {
    (0..rng.random_range(0..=max))
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect()
}

#[test]
fn globs_match_python_fnmatch_on_generated_pairs() {
    let mut rng = StdRng::seed_from_u64(seed() ^ 0x9e37);
    let pat_chars: Vec<char> = "ab/*?[]!-^\\.{},z\u{e9}".chars().collect();
    let text_chars: Vec<char> = "ab/-]![^\\.{z\u{e9}\n".chars().collect();
    let pairs: Vec<(String, String)> = (0..cases(6000))
        .map(|_| {
            let pattern = random_string(&mut rng, &pat_chars, 8);
            // Half the texts are the pattern with its wildcards filled in,
            // so that matches are common, not just mismatches.
            let text = if rng.random_bool(0.5) {
                pattern
                    .chars()
                    .map(|c| match c {
                        '*' => random_string(&mut rng, &text_chars, 3),
                        '?' => random_string(&mut rng, &text_chars, 1),
                        c => c.to_string(),
                    })
                    .collect()
            } else {
                random_string(&mut rng, &text_chars, 8)
            };
            (pattern, text)
        })
        .collect();
    let theirs = python(FNMATCH, &json!(pairs));
    let mut failures = Vec::new();
    let mut matched = 0;
    for ((pattern, text), expected) in pairs.iter().zip(&theirs) {
        let ours = Glob::new(pattern).is_match(text);
        matched += ours as usize;
        if json!(ours) != *expected {
            failures.push(format!(
                "pattern {pattern:?} text {text:?}: ours {ours}, python {expected}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    assert!(
        matched > pairs.len() / 10,
        "generator too weak: only {matched} matches"
    );
}

// -------------------------------------------------------------- JSON ---

#[test]
fn manifest_json_is_byte_identical_to_python_json_dumps() {
    use grokmirror::formats::manifest::{Manifest, RepoEntry};
    let mut rng = StdRng::seed_from_u64(seed() ^ 0x15a);
    let chars: Vec<char> = "ab/ .\"\\\n\t\r\u{1}\u{7f}\u{e9}\u{2028}\u{1F980}'<>&"
        .chars()
        .collect();
    let manifests: Vec<Manifest> = (0..cases(300))
        .map(|_| {
            let mut m = Manifest::new();
            for _ in 0..rng.random_range(0..6) {
                let key = format!("/{}.git", random_string(&mut rng, &chars, 10));
                let mut entry = RepoEntry {
                    fingerprint: Some(random_string(&mut rng, &chars, 6)),
                    modified: rng.random_range(-5..2_000_000_000),
                    head: rng
                        .random_bool(0.7)
                        .then(|| random_string(&mut rng, &chars, 8)),
                    description: rng
                        .random_bool(0.5)
                        .then(|| random_string(&mut rng, &chars, 12)),
                    owner: rng
                        .random_bool(0.3)
                        .then(|| random_string(&mut rng, &chars, 5)),
                    reference: rng
                        .random_bool(0.3)
                        .then(|| random_string(&mut rng, &chars, 5)),
                    forkgroup: rng
                        .random_bool(0.3)
                        .then(|| random_string(&mut rng, &chars, 5)),
                    symlinks: (0..rng.random_range(0..3))
                        .map(|_| random_string(&mut rng, &chars, 5))
                        .collect(),
                    ..Default::default()
                };
                if rng.random_bool(0.2) {
                    entry
                        .extra
                        .insert("zz_future".into(), json!([1, {"b": null, "a": "x"}]));
                }
                m.repos.insert(key, entry);
            }
            m
        })
        .collect();
    let script = r#"
import sys, json
out = []
for text in json.load(sys.stdin):
    data = json.loads(text)
    out.append([json.dumps(data, sort_keys=True), json.dumps(data, indent=2, sort_keys=True)])
print(json.dumps(out))
"#;
    let texts: Vec<String> = manifests.iter().map(|m| m.to_json(false)).collect();
    let theirs = python(script, &json!(texts));
    for (m, t) in manifests.iter().zip(theirs) {
        assert_eq!(json!(m.to_json(false)), t[0], "compact");
        assert_eq!(json!(m.to_json(true)), t[1], "pretty");
    }
}

/// The committed corpus of config files whose rules are subtle
/// (`tests/corpus/config/`): each is read by our INI reader and by
/// configparser, and the views must agree, errors included.
#[test]
fn ini_corpus_matches_configparser() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus is in {}", dir.display());
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let theirs = python(INI_VIEW, &json!(texts));
    for ((file, text), expected) in files.iter().zip(&texts).zip(theirs) {
        assert_eq!(
            our_ini_view(text),
            expected,
            "{} is read differently from configparser",
            file.display()
        );
    }
}
