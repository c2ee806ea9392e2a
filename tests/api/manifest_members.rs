//! Gzipped manifests are written as gzip members of 1,024 entries, each
//! with its index in the header's extra field, deflated in parallel (the
//! "ten times kernel.org" issue). grokmirror's own `read_manifest` (the
//! reference 2.0.12, in its virtualenv) must read ours entry for entry,
//! and we must read what its `write_manifest` writes.

use std::io::Read;
use std::process::Command;

use grokmirror::formats::manifest::{Manifest, RepoEntry};

fn big_manifest(n: usize) -> Manifest {
    let mut m = Manifest::new();
    for i in 0..n {
        let entry = RepoEntry {
            description: Some(format!("Dépôt n°{i} — \"quoted\", }}, \"/ and \\ too")),
            fingerprint: Some(format!("{:040x}", i as u128 * 7_919)),
            head: Some("ref: refs/heads/main".into()),
            modified: 1_700_000_000 + i as i64,
            owner: (i % 5 == 0).then(|| format!("Owner {i}")),
            symlinks: if i % 7 == 0 {
                vec![format!("/links/r{i}.git")]
            } else {
                vec![]
            },
            ..RepoEntry::default()
        };
        m.repos
            .insert(format!("/pub/group{:02}/repo{i:06}.git", i % 40), entry);
    }
    m
}

/// How many gzip members a file holds (each decoded on its own).
fn members(gz: &[u8]) -> usize {
    let mut rest = gz;
    let mut count = 0;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        rest = d.into_inner();
        count += 1;
    }
    count
}

fn python(script: &str, arg: &std::path::Path) -> String {
    let out = Command::new(crate::support::oracle_venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_reference_reads_our_multi_member_manifests_and_we_read_its() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("manifest.js.gz");
    let m = big_manifest(40_000);
    m.write(&ours, false).unwrap();
    let gz = std::fs::read(&ours).unwrap();
    assert_eq!(members(&gz), 40, "40,000 entries in members of 1,024");
    // Ours, read back by us.
    assert_eq!(Manifest::read(&ours).unwrap().unwrap(), m);
    // Ours, read by grokmirror's read_manifest: the same JSON value.
    let seen = python(
        "import sys, json, grokmirror; print(json.dumps(grokmirror.read_manifest(sys.argv[1]), sort_keys=True))",
        &ours,
    );
    let theirs: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(theirs, m.to_value());
    // And the text inside is byte for byte what one member would hold.
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(gz.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, m.to_json(false));

    // Theirs, as large, read by us.
    let written = dir.path().join("theirs.js.gz");
    std::fs::write(dir.path().join("theirs.js.gz.json"), m.to_json(false)).unwrap();
    python(
        "import sys, json, grokmirror; grokmirror.write_manifest(sys.argv[1], json.load(open(sys.argv[1] + '.json')))",
        &written,
    );
    assert_eq!(Manifest::read(&written).unwrap().unwrap(), m);
}
