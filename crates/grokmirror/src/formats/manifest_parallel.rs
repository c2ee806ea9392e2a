//! A large manifest parsed on two threads (the "ten times kernel.org"
//! issue): the text is cut between two top-level entries, each half is
//! parsed on its own thread and the results are joined, giving exactly
//! what one thread would. (Writing in parallel is
//! [`super::manifest_members`]' job.)

use std::collections::BTreeMap;

use super::manifest::{Error, RepoEntry};

/// Texts from this size up are parsed on two threads (about 10,000
/// entries).
pub const PARALLEL_FROM: usize = 2 << 20;

/// Whether a text of `len` bytes is parsed in two halves with `cpus`
/// CPUs.
fn in_halves(len: usize, cpus: usize) -> bool {
    len >= PARALLEL_FROM && cpus >= 2
}

/// Where compact or pretty manifest JSON can be cut near `at`: the offset
/// of the `,` that ends a top-level entry. In the text `}, "/` (or
/// `},\n  "/`) the quote cannot be inside a string (it would be escaped),
/// so it opens a key; whether that key is at the top level is checked by
/// parsing: a cut one level down leaves both halves unbalanced, and the
/// caller falls back to one thread.
fn cut_near(data: &[u8], at: usize) -> Option<usize> {
    let from = at.min(data.len());
    data[from..].iter().enumerate().find_map(|(i, &b)| {
        let rest = &data[from + i + 1..];
        (b == b'}' && (rest.starts_with(b", \"/") || rest.starts_with(b",\n  \"/")))
            .then_some(from + i + 1)
    })
}

fn parse_object(data: &[u8], what: &str) -> Result<BTreeMap<String, RepoEntry>, Error> {
    serde_json::from_slice(data).map_err(|cause| Error::Parse {
        path: what.to_string(),
        cause,
    })
}

/// Parse manifest JSON, on two threads when it is large (see the module's
/// documentation); the same result as one `serde_json` parse, errors
/// included. The text is cut in place: the `,` after the entry where it
/// is cut becomes the first half's closing `}` and the byte after it the
/// second half's opening `{` (a space or a newline in the text we cut at).
pub fn parse(mut data: Vec<u8>, what: &str) -> Result<BTreeMap<String, RepoEntry>, Error> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !in_halves(data.len(), cpus) {
        return parse_object(&data, what);
    }
    let Some(cut) = cut_near(&data, data.len() / 2) else {
        return parse_object(&data, what);
    };
    let saved = (data[cut], data[cut + 1]);
    data[cut] = b'}';
    data[cut + 1] = b'{';
    let (first, second) = data.split_at(cut + 1);
    let (a, b) = std::thread::scope(|s| {
        let b = s.spawn(|| parse_object(second, what));
        (parse_object(first, what), b.join())
    });
    match (a, b) {
        (Ok(mut a), Ok(Ok(mut b))) => {
            // Later keys win, as in one parse of a text with duplicates.
            a.append(&mut b);
            Ok(a)
        }
        _ => {
            (data[cut], data[cut + 1]) = saved;
            parse_object(&data, what)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::manifest::Manifest;

    fn manifest(n: usize) -> Manifest {
        let mut m = Manifest::new();
        for i in 0..n {
            let entry = RepoEntry {
                description: Some(format!("repo {i}, with \"quotes\" and }}, \"/ inside")),
                fingerprint: Some(format!("{i:040x}")),
                modified: i as i64,
                symlinks: if i % 3 == 0 {
                    vec![format!("/l/{i}.git")]
                } else {
                    vec![]
                },
                ..RepoEntry::default()
            };
            m.repos.insert(format!("/pub/r{i:06}.git"), entry);
        }
        m
    }

    #[test]
    fn large_texts_on_two_cpus_are_parsed_in_halves() {
        assert!(!in_halves(1000, 8));
        assert!(!in_halves(PARALLEL_FROM - 1, 8));
        assert!(!in_halves(PARALLEL_FROM, 1));
        assert!(in_halves(PARALLEL_FROM, 2));
        assert!(in_halves(100 << 20, 64));
    }

    #[test]
    fn a_parse_in_halves_equals_one_parse() {
        let m = manifest(30_000);
        for pretty in [false, true] {
            let text = m.to_json(pretty);
            assert!(text.len() > PARALLEL_FROM);
            let cut = cut_near(text.as_bytes(), text.len() / 2).unwrap();
            assert!(cut > 0);
            let parsed = parse(text.clone().into_bytes(), "t").unwrap();
            assert_eq!(parsed, m.repos);
        }
        // A cut that lands inside an entry (a key starting with / one level
        // down) falls back to one parse.
        let tricky = "{\"/a\": {\"x\": {\"k\": 1}, \"/b\": 2, \"modified\": 1}}";
        let cut = cut_near(tricky.as_bytes(), 0).unwrap();
        assert_eq!(&tricky[cut - 1..cut + 3], "}, \"");
        let whole: Result<BTreeMap<String, RepoEntry>, _> = serde_json::from_str(tricky);
        assert_eq!(
            format!("{:?}", parse(tricky.as_bytes().to_vec(), "t").ok()),
            format!("{:?}", whole.ok())
        );
        // Bad JSON is the same error as with one parse.
        let mut bad = m.to_json(false).into_bytes();
        let from = bad.len() * 3 / 4;
        let key = b"\"modified\": ";
        let at = from
            + bad[from..]
                .windows(key.len())
                .position(|w| w == key)
                .unwrap();
        bad[at + key.len() - 2] = b'#';
        assert!(matches!(parse(bad, "t"), Err(Error::Parse { .. })));
    }
}
