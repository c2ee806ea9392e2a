//! Property tests of remote-manifest validation (SPEC §2) on hostile
//! input: whatever an origin sends, validation never panics, accounts for
//! every entry, and everything it accepts is safe to use as a path under the
//! top level.

use std::path::{Component, Path};

use grokmirror::formats::remote_manifest::{self, Rules};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Mostly plausible repository paths, often hostile ones.
fn hostile_path() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "/[a-z]{1,6}(/[a-z]{1,6}){0,2}\\.git",
        3 => attack_path(),
    ]
}

/// Path-like strings built from the pieces attacks are made of.
fn attack_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a".to_string()),
        Just("repo.git".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("\0".to_string()),
        Just("\n".to_string()),
        Just("objstore".to_string()),
        Just(".grok-pull.staging".to_string()),
        Just("etc".to_string()),
        Just("\u{e9}t\u{e9}".to_string()),
        "[a-z~$*? ]{1,4}",
    ];
    (any::<bool>(), proptest::collection::vec(piece, 0..5))
        .prop_map(|(lead, parts)| format!("{}{}", if lead { "/" } else { "" }, parts.join("/")))
}

/// Any JSON value, biased towards the types manifest fields have.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        hostile_path().prop_map(Value::String),
        "[0-9a-f]{40}".prop_map(Value::String),
        "ref: refs/heads/[a-z./]{0,8}".prop_map(Value::String),
        proptest::collection::vec(hostile_path().prop_map(Value::String), 0..3)
            .prop_map(Value::Array),
        Just(json!({"nested": [1, {"x": null}]})),
    ]
}

fn entry() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("fingerprint"),
        Just("modified"),
        Just("head"),
        Just("description"),
        Just("owner"),
        Just("reference"),
        Just("forkgroup"),
        Just("symlinks"),
        Just("unknown"),
    ];
    prop_oneof![
        // Mostly objects with a plausible fingerprint, so acceptance happens.
        4 => proptest::collection::vec((field, any_value()), 0..3).prop_map(|fields| {
            let mut m = Map::new();
            m.insert(
                "fingerprint".into(),
                json!("0123456789abcdef0123456789abcdef01234567"),
            );
            for (k, v) in fields {
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        }),
        1 => any_value(),
    ]
}

/// Joining `key` to a top level stays inside it, lexically.
fn stays_inside(key: &str) -> bool {
    let joined = Path::new("/top").join(key.trim_start_matches('/'));
    let mut depth: i32 = 0;
    for comp in joined.components() {
        match comp {
            Component::RootDir => {}
            Component::ParentDir => return false,
            Component::CurDir => return false,
            Component::Normal(_) => depth += 1,
            Component::Prefix(_) => return false,
        }
    }
    depth >= 2 && joined.starts_with("/top")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn validation_is_total_and_what_it_accepts_is_safe(
        entries in proptest::collection::vec((hostile_path(), entry()), 0..8)
    ) {
        let mut doc = Map::new();
        for (k, v) in entries {
            doc.insert(k, v);
        }
        let n = doc.len();
        let text = Value::Object(doc).to_string();
        let rules = Rules { reserved: grokmirror::tree::Reserved::dirs_at(["/objstore", "/.grok-pull.staging"]) };
        let m = remote_manifest::parse_untrusted(text.as_bytes(), "fuzz", &rules).expect("an object always parses");
        prop_assert!(m.repos.len() + m.rejected.len() >= n, "an entry vanished");
        for r in &m.rejected {
            prop_assert!(!r.key.contains('\n') && !r.key.contains('\0'), "unprintable key in a log line");
        }
        for (key, e) in &m.repos {
            prop_assert!(key.starts_with('/'));
            prop_assert!(stays_inside(key), "accepted {key:?}");
            prop_assert!(!key.chars().any(char::is_control));
            for reserved in &rules.reserved.dirs() {
                prop_assert!(!grokmirror::tree::key::is_at_or_under(key, reserved), "{key} is reserved");
            }
            if let Some(h) = &e.head {
                prop_assert!(remote_manifest::is_valid_head(h), "head {h:?}");
            }
            if let Some(fg) = &e.forkgroup {
                prop_assert!(remote_manifest::is_valid_forkgroup(fg) && !fg.contains('/'), "forkgroup {fg:?}");
            }
            for link in &e.symlinks {
                prop_assert!(stays_inside(link), "symlink {link:?}");
            }
            if let Some(r) = &e.reference {
                prop_assert!(stays_inside(r), "reference {r:?}");
            }
            // No accepted repository sits inside another accepted one.
            for other in m.repos.keys() {
                prop_assert!(other == key || !grokmirror::tree::key::is_at_or_under(other, key), "{other} inside {key}");
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = remote_manifest::parse_untrusted(&data, "fuzz", &Rules::default());
    }
}

#[test]
fn classic_attacks_are_rejected_by_name() {
    const FP: &str = "0123456789abcdef0123456789abcdef01234567";
    let doc = json!({
        "/../../etc/passwd.git": {"fingerprint": FP, "modified": 1},
        "/ok.git": {"fingerprint": FP, "modified": 1, "head": "ref: ../../etc"},
        "/ok2.git": {"fingerprint": FP, "modified": 1, "forkgroup": "../x"},
        "/ok3.git": {"fingerprint": FP, "modified": 1, "symlinks": ["/../outside.git"]},
        "/nul\u{0}.git": {"fingerprint": FP, "modified": 1},
        "/good.git": {"fingerprint": FP, "modified": 1, "head": "ref: refs/heads/main"},
    });
    let m = remote_manifest::parse_untrusted(doc.to_string().as_bytes(), "t", &Rules::default()).unwrap();
    assert_eq!(
        m.repos.keys().collect::<Vec<_>>(),
        vec!["/good.git"],
        "{:?}",
        m.rejected
    );
    assert_eq!(m.rejected.len(), 5, "{:?}", m.rejected);
    let reasons: Vec<&str> = m.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("head")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("forkgroup")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("symlink")), "{reasons:?}");
}

/// The generator must produce accepted entries too, or the safety property
/// above would hold vacuously.
#[test]
fn generator_produces_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec((hostile_path(), entry()), 1..8);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..500 {
        let entries = strategy.new_tree(&mut runner).unwrap().current();
        let doc: Map<String, Value> = entries.into_iter().collect();
        let m = remote_manifest::parse_untrusted(
            Value::Object(doc).to_string().as_bytes(),
            "g",
            &Rules::default(),
        )
        .unwrap();
        accepted += m.repos.len();
        rejected += m.rejected.len();
    }
    assert!(
        accepted > 100 && rejected > 100,
        "accepted {accepted}, rejected {rejected}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// The streaming reader takes exactly the documents serde_json takes
    /// (when they are objects), so nothing that parsed before is refused
    /// now and nothing refused is taken.
    #[test]
    fn streaming_reader_agrees_with_serde_json(
        text in r#"\{[\[\]{}",:0-9a-z\\/ .e+\-]{0,60}\}?"#
    ) {
        let ours = remote_manifest::parse_untrusted(text.as_bytes(), "x", &Rules::default());
        let theirs = serde_json::from_str::<Value>(&text);
        prop_assert_eq!(
            ours.is_ok(),
            matches!(theirs, Ok(Value::Object(_))),
            "{:?}: ours {:?}, serde_json {:?}", text, ours.as_ref().err(), theirs
        );
    }
}

#[test]
fn fields_over_their_limits_reject_only_their_entry() {
    use grokmirror::formats::remote_manifest::limits;
    const FP: &str = "0123456789abcdef0123456789abcdef01234567";
    let big = "d".repeat(limits::DESCRIPTION_MAX_BYTES as usize + 1);
    let links: Vec<String> = (0..=limits::MAX_SYMLINKS)
        .map(|i| format!("/l{i}"))
        .collect();
    let doc = json!({
        "/desc.git": {"fingerprint": FP, "modified": 1, "description": big},
        "/owner.git": {"fingerprint": FP, "modified": 1, "owner": big},
        "/links.git": {"fingerprint": FP, "modified": 1, "symlinks": links},
        "/fp.git": {"fingerprint": "f".repeat(1000), "modified": 1},
        "/extra.git": {"fingerprint": FP, "modified": 1, "future": [big]},
        "/ok.git": {"fingerprint": FP, "modified": 1, "description": "fine", "future": [1]},
    });
    let long_key = format!("/{}.git", "k".repeat(5000));
    let mut doc = doc.as_object().unwrap().clone();
    doc.insert(long_key, json!({"fingerprint": FP, "modified": 1}));
    let m = remote_manifest::parse_untrusted(
        Value::Object(doc).to_string().as_bytes(),
        "t",
        &Rules::default(),
    )
    .unwrap();
    assert_eq!(
        m.repos.keys().collect::<Vec<_>>(),
        vec!["/ok.git"],
        "{:?}",
        m.rejected
    );
    assert_eq!(m.repos["/ok.git"].extra["future"], json!([1]));
    let reason = |k: &str| {
        m.rejected
            .iter()
            .find(|r| r.key == k)
            .map(|r| r.reason.clone())
            .unwrap_or_else(|| panic!("{k} not rejected"))
    };
    let d = reason("/desc.git");
    assert!(
        d.contains("description") && d.contains("65537 bytes") && d.len() < 400,
        "{d}"
    );
    assert!(reason("/owner.git").contains("owner"));
    assert!(reason("/links.git").contains("1001 symlinks"));
    assert!(reason("/fp.git").contains("fingerprint"));
    assert!(reason("/extra.git").contains("unknown field"));
    let long = m
        .rejected
        .iter()
        .find(|r| r.key.starts_with("/kkk"))
        .expect("long key rejected");
    assert!(long.reason.contains("longer than 4096"), "{}", long.reason);
    assert!(
        long.key.len() < 300 && long.key.ends_with("(5005 bytes)"),
        "{}",
        long.key
    );
}

#[test]
fn a_gzip_bomb_stream_is_refused_with_the_size_error() {
    use grokmirror::formats::manifest::{self, decoding_reader};
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b"{\"/a.git\": {\"description\": \"").unwrap();
    for _ in 0..100 {
        enc.write_all(&[b'x'; 100_000]).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let reader = decoding_reader(bomb.as_slice(), Some(1_000_000), "bomb").unwrap();
    let err = remote_manifest::parse_untrusted_reader(reader, "bomb", &Rules::default()).unwrap_err();
    assert!(
        matches!(
            err,
            manifest::Error::TooLarge {
                limit: 1_000_000,
                ..
            }
        ),
        "{err}"
    );
    // The same stream under a larger cap reads to its (truncated) end.
    let reader = decoding_reader(bomb.as_slice(), Some(100_000_000), "bomb").unwrap();
    let err = remote_manifest::parse_untrusted_reader(reader, "bomb", &Rules::default()).unwrap_err();
    assert!(matches!(err, manifest::Error::Parse { .. }), "{err}");
    // Plain data over the cap, and garbage after the gzip magic.
    let reader = decoding_reader(&[b' '; 100][..], Some(10), "plain").unwrap();
    let err = remote_manifest::parse_untrusted_reader(reader, "plain", &Rules::default()).unwrap_err();
    assert!(matches!(err, manifest::Error::TooLarge { .. }), "{err}");
    let reader = decoding_reader(&[0x1f, 0x8b, 1, 2, 3][..], Some(10), "junk").unwrap();
    let err = remote_manifest::parse_untrusted_reader(reader, "junk", &Rules::default()).unwrap_err();
    assert!(matches!(err, manifest::Error::Decompress { .. }), "{err}");
}
