//! The option table is the one definition of every option: this test reads
//! the programs' sources and fails when one of them reads an option
//! (`config.get*("section", "key")`) that the table does not document.

use std::path::{Path, PathBuf};

use grokmirror::config::options;

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `(section, key)` pairs read with a literal section and key.
fn options_read(text: &str) -> Vec<(String, String)> {
    let call = regex::Regex::new(
        r#"\.get(?:_or|_bool|_int|_opt_int|_globs|_lines|_path)?\(\s*"([a-z]+)",\s*"([a-z_0-9]+)""#,
    )
    .unwrap();
    call.captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

#[test]
fn every_option_a_program_reads_is_documented() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    // The config reader itself and its own tests are not consumers.
    let reader = crates.join("grokmirror/src/config");
    let mut seen = 0;
    let mut undocumented = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&reader)) {
        for (section, key) in options_read(&std::fs::read_to_string(file).unwrap()) {
            seen += 1;
            if !options::is_documented(&section, &key) {
                undocumented.push(format!("[{section}] {key} in {}", file.display()));
            }
        }
    }
    // The programs read dozens of options: finding few means the pattern
    // no longer matches how they are read, and this test would prove nothing.
    assert!(seen > 50, "only {seen} option reads found");
    assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
}

#[test]
fn the_pattern_sees_calls_split_over_lines() {
    let text = "config.get_int(\n    \"pull\",\n    \"pull_threads\", 4)";
    assert_eq!(
        options_read(text),
        [("pull".to_string(), "pull_threads".to_string())]
    );
}
