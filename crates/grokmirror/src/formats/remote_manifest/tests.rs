//! Unit tests of remote-manifest validation.

use super::*;
use std::collections::BTreeSet;

const FP: &str = "0123456789abcdef0123456789abcdef01234567";

fn parse(text: &str) -> RemoteManifest {
    parse_untrusted(text.as_bytes(), "t", &Rules::default()).unwrap()
}

fn entry(extra: &str) -> String {
    format!(r#"{{"fingerprint": "{FP}", "modified": 1, "reference": null{extra}}}"#)
}

#[test]
fn paths() {
    assert_eq!(normalize_path("/a/b.git").unwrap(), "/a/b.git");
    assert_eq!(normalize_path("a/b.git").unwrap(), "/a/b.git");
    for bad in [
        "",
        "/",
        "//a.git",
        "/a//b.git",
        "/a/",
        "/../etc",
        "/a/../../b",
        "/./a",
        "/a\0b",
        "/a\nb",
    ] {
        assert!(normalize_path(bad).is_err(), "{bad:?}");
    }
    assert!(normalize_path(&format!("/{}", "x".repeat(256))).is_err());
    assert!(is_at_or_under("/a/b", "/a"));
    assert!(is_at_or_under("/a", "/a"));
    assert!(!is_at_or_under("/ab", "/a"));
}

#[test]
fn heads_and_forkgroups() {
    assert!(is_valid_head("ref: refs/heads/main"));
    assert!(is_valid_head("ref: refs/heads/feature/x-1.2"));
    assert!(is_valid_head(&"a".repeat(40)));
    for bad in [
        "ref: /etc/passwd",
        "ref: refs/../../etc",
        "ref: HEAD",
        "ref: refs/heads/a b",
        "ref: refs/heads/x.lock",
        "ref: refs/heads/.hidden",
        "ref: refs/heads/main\nref: x",
        "refs/heads/main",
        "../../x",
    ] {
        assert!(!is_valid_head(bad), "{bad:?}");
    }
    assert!(is_valid_forkgroup("0b6e6a7c-1c0f-4f8e-9a2b-3f1c2d4e5f60"));
    for bad in ["", ".", "..", "a/b", ".hidden", "a b", "x\0"] {
        assert!(!is_valid_forkgroup(bad), "{bad:?}");
    }
}

#[test]
fn bad_entries_are_rejected_alone() {
    let text = format!(
        r#"{{
          "/good.git": {good},
          "/../escape.git": {good},
          "/abs//x.git": {good},
          "/nul\u0000.git": {good},
          "/head.git": {badhead},
          "/fg.git": {badfg},
          "/link.git": {badlink},
          "/types.git": {{"fingerprint": 5}},
          "/nofp.git": {{"modified": 1}},
          "/notobj.git": [1],
          "/ref.git": {badref}
        }}"#,
        good = entry(""),
        badhead = entry(r#", "head": "ref: ../../etc/passwd""#),
        badfg = entry(r#", "forkgroup": "../x""#),
        badlink = entry(r#", "symlinks": ["/../../etc"]"#),
        badref = entry(r#", "reference": "/../other.git""#),
    );
    let m = parse(&text);
    assert_eq!(m.repos.keys().collect::<Vec<_>>(), vec!["/good.git"]);
    let rejected: BTreeSet<&str> = m.rejected.iter().map(|r| r.key.as_str()).collect();
    for k in [
        "/../escape.git",
        "/abs//x.git",
        "/nul\\x00.git",
        "/head.git",
        "/fg.git",
        "/link.git",
        "/types.git",
        "/nofp.git",
        "/notobj.git",
        "/ref.git",
    ] {
        assert!(rejected.contains(k), "{k} not rejected: {:?}", m.rejected);
    }
}

#[test]
fn overlaps_and_duplicates() {
    let text = format!(
        r#"{{
          "/a.git": {plain},
          "/a.git/objects/evil.git": {plain},
          "/b.git": {link_on_a},
          "/c.git": {link_s},
          "/d.git": {link_t},
          "/f.git": {link_t},
          "/s/inside.git": {plain},
          "e.git": {plain},
          "/e.git": {plain}
        }}"#,
        plain = entry(""),
        link_on_a = entry(r#", "symlinks": ["/a.git"]"#),
        link_s = entry(r#", "symlinks": ["/s"]"#),
        link_t = entry(r#", "symlinks": ["/t"]"#),
    );
    let m = parse(&text);
    let kept: Vec<&str> = m.repos.keys().map(String::as_str).collect();
    assert_eq!(
        kept,
        vec!["/a.git", "/d.git", "/e.git", "/s/inside.git"],
        "{:?}",
        m.rejected
    );
    let reasons: BTreeMap<&str, &str> = m
        .rejected
        .iter()
        .map(|r| (r.key.as_str(), r.reason.as_str()))
        .collect();
    assert!(reasons["/a.git/objects/evil.git"].contains("inside"));
    assert!(reasons["/b.git"].contains("overlaps"));
    assert!(reasons["/c.git"].contains("overlaps"));
    assert!(reasons["/f.git"].contains("already claimed by /d.git"));
    assert!(reasons["e.git"].contains("duplicate"));
}

#[test]
fn reserved_paths() {
    let rules = Rules {
        reserved: crate::tree::Reserved::dirs_at(["/objstore"]),
    };
    let text = format!(
        r#"{{"/objstore/x.git": {0}, "/objstores.git": {0}}}"#,
        entry("")
    );
    let m = parse_untrusted(text.as_bytes(), "t", &rules).unwrap();
    assert_eq!(m.repos.keys().collect::<Vec<_>>(), vec!["/objstores.git"]);
}

#[test]
fn whole_document_errors() {
    assert!(parse_untrusted(b"[1,2]", "t", &Rules::default()).is_err());
    assert!(parse_untrusted(b"{", "t", &Rules::default()).is_err());
    assert!(parse_untrusted(b"{}", "t", &Rules::default())
        .unwrap()
        .repos
        .is_empty());
}
