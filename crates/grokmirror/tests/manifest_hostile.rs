//! The manifest reader on hostile input: a committed corpus of interesting
//! files (replayed on every test run) and property tests over arbitrary
//! bytes, arbitrary JSON and arbitrary gzip streams. Nothing may panic,
//! decompression never produces more than the cap, and what parses must
//! write back and parse again to the same thing.

use std::path::PathBuf;

use grokmirror::formats::manifest::{self, decode_bytes, Manifest};
use proptest::prelude::*;

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/manifest");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "corpus went missing from {}",
        dir.display()
    );
    files
}

/// Read a corpus file the way a remote manifest is read: capped decode, then
/// parse.
fn load(raw: Vec<u8>, cap: u64) -> Result<Manifest, manifest::Error> {
    let data = decode_bytes(raw, Some(cap), "corpus")?;
    Manifest::from_json_slice(&data, "corpus")
}

#[test]
fn corpus_outcomes_are_as_named() {
    for file in corpus() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&file).unwrap();
        let result = load(raw, 1_000_000);
        if name.starts_with("ok-") {
            let m = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = Manifest::from_json_slice(m.to_json(false).as_bytes(), "again").unwrap();
            assert_eq!(again, m, "{name}: does not survive a rewrite");
            let pretty = Manifest::from_json_slice(m.to_json(true).as_bytes(), "pretty").unwrap();
            assert_eq!(pretty, m, "{name}: does not survive a pretty rewrite");
        } else if name.starts_with("bomb-") {
            assert!(
                matches!(result, Err(manifest::Error::TooLarge { .. })),
                "{name}: {result:?}"
            );
        } else {
            assert!(
                name.starts_with("bad-"),
                "corpus files are named ok-/bad-/bomb-: {name}"
            );
            let err = result.expect_err(&name);
            // Every error names its source, on one line.
            let msg = err.to_string();
            assert!(
                msg.contains("corpus") && !msg.contains('\n'),
                "{name}: {msg}"
            );
        }
    }
}

#[test]
fn corpus_specifics() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/manifest");
    let read = |n: &str| load(std::fs::read(dir.join(n)).unwrap(), 1_000_000).unwrap();
    let dup = read("ok-duplicate-key-last-wins.json");
    assert_eq!(dup.repos["/a.git"].fingerprint.as_deref(), Some("bb"));
    let old = read("ok-1x-key-float-modified-unknown-field.json");
    assert_eq!(old.repos["a.git"].modified, 1_600_000_000);
    assert!(old.repos["a.git"].extra.contains_key("future_key"));
    assert!(old
        .to_json(false)
        .contains(r#""future_key": {"x": [1, 2, {"y": null}]}"#));
    let uni = read("ok-unicode-escapes.json");
    assert_eq!(
        uni.repos["/d\u{e9}j\u{e0}.git"].description.as_deref(),
        Some("\u{1F600} emoji \"quoted\" \\ back")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(data, 4096);
    }

    #[test]
    fn gzip_magic_then_garbage_never_panics_and_respects_the_cap(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
        cap in 0u64..4096,
    ) {
        let mut data = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03];
        data.extend(tail);
        if let Ok(out) = decode_bytes(data, Some(cap), "x") {
            prop_assert!(out.len() as u64 <= cap);
        }
    }

    #[test]
    fn json_shaped_input_never_panics(text in r#"[\[\]{}",:0-9a-z\\/ .e+-]{0,200}"#) {
        let _ = Manifest::from_json_slice(text.as_bytes(), "x");
    }

    #[test]
    fn well_formed_entries_round_trip(
        entries in proptest::collection::btree_map(
            "/[a-z\u{e9}/]{1,12}\\.git",
            (
                proptest::option::of("[0-9a-f]{40}"),
                any::<i64>(),
                proptest::option::of(".{0,20}"),
                proptest::option::of(".{0,20}"),
                proptest::collection::vec("/[a-z]{1,8}\\.git", 0..3),
            ),
            0..8,
        )
    ) {
        let mut m = Manifest::new();
        for (key, (fp, modified, description, owner, symlinks)) in entries {
            m.repos.insert(key, grokmirror::formats::manifest::RepoEntry {
                fingerprint: fp,
                modified,
                description,
                owner,
                symlinks,
                ..Default::default()
            });
        }
        for pretty in [false, true] {
            let text = m.to_json(pretty);
            prop_assert!(text.is_ascii(), "ensure_ascii output");
            prop_assert_eq!(&Manifest::from_json_slice(text.as_bytes(), "x").unwrap(), &m);
        }
    }
}
