//! The push socket's line protocol on hostile input, without a socket:
//! [`read_client`] (framing, limits) and [`classify`] (validation) fed a
//! committed corpus of interesting streams (replayed on every test run) and
//! property tests over arbitrary bytes, arbitrary chunkings and path-like
//! strings built from nasty pieces. Nothing may panic; what comes out is
//! always a well-formed manifest path; an over-long line is never read to
//! its end (memory stays bounded, whatever the client sends).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use grok_pull::daemon::listener::{
    classify, read_client, Line, Notification, MAX_BAD_LINES, MAX_LINE,
};
use grokmirror::tree::key::{normalize_path, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// A client's byte stream: `data`, handed out in pieces of the given
/// sizes (cycled), then `endless` bytes of `b'x'` forever if set. Counts
/// what was read.
struct Client {
    data: Vec<u8>,
    pos: usize,
    pieces: Vec<usize>,
    piece: usize,
    endless: bool,
    read: Arc<AtomicUsize>,
}

impl AsyncRead for Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let want = this.pieces[this.piece % this.pieces.len()].max(1);
        this.piece += 1;
        let n = want.min(buf.remaining());
        if this.pos < this.data.len() {
            let n = n.min(this.data.len() - this.pos);
            buf.put_slice(&this.data[this.pos..this.pos + n]);
            this.pos += n;
            this.read.fetch_add(n, Ordering::SeqCst);
        } else if this.endless {
            buf.put_slice(&vec![b'x'; n]);
            this.read.fetch_add(n, Ordering::SeqCst);
        }
        Poll::Ready(Ok(()))
    }
}

/// Feed `data` to [`read_client`]; the paths it passes on and how many
/// bytes it read before it stopped.
fn feed(data: &[u8], pieces: &[usize], endless: bool) -> (Vec<String>, usize) {
    let read = Arc::new(AtomicUsize::new(0));
    let client = Client {
        data: data.to_vec(),
        pos: 0,
        pieces: pieces.to_vec(),
        piece: 0,
        endless,
        read: read.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::channel(data.len() + 1);
    rt.block_on(read_client(client, tx));
    let mut out = Vec::new();
    while let Ok(Notification(key)) = rx.try_recv() {
        out.push(key);
    }
    (out, read.load(Ordering::SeqCst))
}

/// What the protocol says `data` should yield: lines split at `\n`, a line
/// that does not end within `MAX_LINE` bytes ends the connection, so do
/// `MAX_BAD_LINES` bad lines; blank lines are skipped.
fn model(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut bad = 0;
    for seg in data.split_inclusive(|&b| b == b'\n') {
        if seg.len() > MAX_LINE || (!seg.ends_with(b"\n") && seg.len() >= MAX_LINE) {
            break;
        }
        match classify(seg) {
            Line::Blank => {}
            Line::Path(Notification(k)) => out.push(k),
            Line::Rejected { .. } => {
                bad += 1;
                if bad >= MAX_BAD_LINES {
                    break;
                }
            }
        }
    }
    out
}

/// Every path that comes out is one the rest of grok-pull can trust.
fn assert_well_formed(key: &str) {
    assert!(key.starts_with('/'), "{key:?}");
    assert_eq!(normalize_path(key).as_deref(), Ok(key), "not normalized");
    assert!(key.len() <= MAX_PATH_BYTES, "{} bytes", key.len());
    for comp in key[1..].split('/') {
        assert!(!comp.is_empty() && comp != "." && comp != "..", "{key:?}");
        assert!(!comp.chars().any(char::is_control), "{key:?}");
        assert!(comp.len() <= MAX_COMPONENT_BYTES, "{key:?}");
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/corpus/socket")
}

#[test]
fn corpus_yields_what_each_file_expects() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "in"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 20, "the corpus went missing");
    for input in inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&input).unwrap();
        let expect_file = input.with_extension("expect");
        let expected: Vec<String> = std::fs::read_to_string(&expect_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_file.display()))
            .lines()
            .map(str::to_string)
            .collect();
        // All at once, a byte at a time, and in odd pieces: the same.
        for pieces in [&[usize::MAX][..], &[1][..], &[7, 1, 4093, 2][..]] {
            let (got, read) = feed(&data, pieces, false);
            assert_eq!(got, expected, "{name}, read in pieces of {pieces:?}");
            assert!(read <= data.len());
            got.iter().for_each(|k| assert_well_formed(k));
        }
        assert_eq!(model(&data), expected, "{name}: the model disagrees");
    }
}

#[test]
fn a_line_that_never_ends_is_not_read_to_its_end() {
    // 10 MB and then forever, without a newline: the reader gives up
    // after one line's worth (plus what one buffered read brings).
    for prefix in [&b""[..], b"/a.git\n", b"/a.git\n/b"] {
        let (got, read) = feed(prefix, &[64 * 1024], true);
        let expected: Vec<String> = if prefix.starts_with(b"/a.git\n") {
            vec!["/a.git".into()]
        } else {
            vec![]
        };
        assert_eq!(got, expected);
        assert!(read <= prefix.len() + 2 * MAX_LINE, "read {read} bytes");
    }
}

#[test]
fn classify_reports_bad_lines_briefly() {
    let junk: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    match classify(&junk) {
        Line::Rejected { shown, why } => {
            assert!(shown.len() <= 1024, "{} bytes shown", shown.len());
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
            assert!(!why.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

/// Path-like text from pieces that matter: separators, dot components,
/// NUL and control characters, non-ASCII, whitespace, over-long parts.
fn path_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"/".to_vec()),
        Just(b"//".to_vec()),
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b"...".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\x1b".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\xff".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just("\u{85}".as_bytes().to_vec()),
        Just(vec![b'L'; 256]),
        Just(vec![b'M'; 255]),
        "[a-z0-9_.-]{1,12}".prop_map(String::into_bytes),
        Just(b".git".to_vec()),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// The independent judgement of a path-like line: what the protocol
/// promises to accept, and as what.
fn judge(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    let body = text.strip_prefix('/').unwrap_or(text);
    if body.is_empty() || text.len() > MAX_PATH_BYTES {
        return None;
    }
    for comp in body.split('/') {
        if comp.is_empty()
            || comp == "."
            || comp == ".."
            || comp.len() > MAX_COMPONENT_BYTES
            || comp.chars().any(char::is_control)
        {
            return None;
        }
    }
    Some(format!("/{body}"))
}

proptest! {
    // Each case runs a reader over up to 5 KB in odd pieces: 256 cases keep
    // this file within a few seconds in debug builds.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes, read in arbitrary pieces: no panic, only
    /// well-formed paths come out, exactly those the protocol model
    /// predicts, and never more is read than was sent.
    #[test]
    fn arbitrary_streams(
        data in proptest::collection::vec(
            prop_oneof![
                8 => any::<u8>(),
                2 => Just(b'\n'),
                2 => Just(b'/'),
                1 => Just(b'.'),
                1 => Just(0u8),
            ],
            0..5000,
        ),
        pieces in proptest::collection::vec(1usize..5000, 1..6),
    ) {
        let (got, read) = feed(&data, &pieces, false);
        prop_assert!(read <= data.len());
        for k in &got {
            assert_well_formed(k);
        }
        prop_assert_eq!(got, model(&data));
    }

    /// Lines of valid paths mixed with path-like junk: each valid path gets
    /// through, in order, whatever surrounds it.
    #[test]
    fn path_like_lines(lines in proptest::collection::vec(path_like(), 0..12)) {
        let mut data = Vec::new();
        let mut expected = Vec::new();
        let mut bad = 0;
        for raw in &lines {
            // One line each: a newline inside would make two.
            let raw: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\n').collect();
            data.extend_from_slice(&raw);
            data.push(b'\n');
            if raw.len() + 1 > MAX_LINE || bad >= MAX_BAD_LINES {
                break;
            }
            let verdict = judge(&raw);
            match (&verdict, classify(&raw)) {
                (Some(want), Line::Path(Notification(got))) => {
                    prop_assert_eq!(want, &got);
                    expected.push(got);
                }
                (None, Line::Rejected { .. }) => bad += 1,
                (None, Line::Blank) => prop_assert!(raw.iter().all(u8::is_ascii_whitespace)),
                (v, c) => prop_assert!(false, "{:?}: judged {:?}, classified {:?}", raw, v, c),
            }
        }
        let (got, _) = feed(&data, &[usize::MAX], false);
        prop_assert_eq!(got, expected);
    }

    /// A line that never ends, after any prefix: the reader stops within a
    /// line's worth of bytes past the prefix.
    #[test]
    fn endless_lines_are_cut_off(
        prefix in proptest::collection::vec(any::<u8>(), 0..3000),
        piece in 1usize..100_000,
    ) {
        let (_, read) = feed(&prefix, &[piece], true);
        prop_assert!(read <= prefix.len() + MAX_LINE + piece.min(MAX_LINE), "read {}", read);
    }
}
