//! A small pull reader for JSON (RFC 8259), written for remote manifests.
//!
//! Why not serde_json or a streaming crate: serde_json materialises every
//! string whole, so one 400 MB `description` costs 400 MB before any limit
//! can be checked, and the streaming readers we looked at (struson) still
//! buffer object names and number literals whole. Here every string,
//! number and value is read against a byte budget given by the caller:
//! what fits is kept, the rest is scanned (and validated) but thrown away,
//! so memory follows the limits and never the input.

use std::io::{self, BufRead, BufReader, Read};

use serde_json::{Map, Value};

/// serde_json's nesting limit, kept so documents it refused stay refused.
const MAX_DEPTH: usize = 128;

/// The longest number literal we keep (longer ones count as over budget).
const MAX_NUMBER_BYTES: usize = 1024;

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The underlying reader failed.
    Io(io::Error),
    /// The text is not JSON; the message says where.
    Syntax(String),
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

/// A string read against a limit: the first `limit` bytes (cut at a
/// character boundary) and the length of the whole string.
#[derive(Debug)]
pub(crate) struct Text {
    /// What was kept.
    pub text: String,
    /// The whole string's length in bytes, decoded.
    pub total: u64,
}

impl Text {
    /// Whether the string was longer than what was kept.
    pub fn cut(&self) -> bool {
        self.total > self.text.len() as u64
    }
}

/// A value read against a byte budget.
#[derive(Debug)]
pub(crate) struct Bounded {
    /// The value, or `None` when it did not fit the budget.
    pub value: Option<Value>,
    /// What the value cost (string and literal bytes plus one a container
    /// item); counted to the end even when over budget.
    pub cost: u64,
}

/// Pull reader over any [`Read`]; tracks line and column for messages.
pub(crate) struct Tokens<R: Read> {
    inner: BufReader<R>,
    line: u64,
    column: u64,
    depth: usize,
}

/// Incremental UTF-8 check for the bytes of a string: how many
/// continuation bytes are still due, and the range the next one must be
/// in (tighter after E0, ED, F0 and F4).
#[derive(Default)]
struct Utf8 {
    due: u8,
    low: u8,
    high: u8,
}

impl Utf8 {
    fn step(&mut self, b: u8) -> bool {
        if self.due > 0 {
            if b < self.low || b > self.high {
                return false;
            }
            self.due -= 1;
            self.low = 0x80;
            self.high = 0xbf;
            return true;
        }
        let (due, low, high) = match b {
            0x00..=0x7f => return true,
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        self.due = due;
        self.low = low;
        self.high = high;
        true
    }
}

impl<R: Read> Tokens<R> {
    /// Read from `inner`.
    pub fn new(inner: R) -> Tokens<R> {
        Tokens {
            inner: BufReader::with_capacity(64 * 1024, inner),
            line: 1,
            column: 0,
            depth: 0,
        }
    }

    /// A syntax error at the current position.
    pub fn error(&self, what: &str) -> Fault {
        Fault::Syntax(format!(
            "{what} at line {} column {}",
            self.line, self.column
        ))
    }

    fn peek_byte(&mut self) -> Result<Option<u8>, Fault> {
        loop {
            match self.inner.fill_buf() {
                Ok(buf) => return Ok(buf.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fault::Io(e)),
            }
        }
    }

    fn next_byte(&mut self) -> Result<Option<u8>, Fault> {
        let b = self.peek_byte()?;
        if let Some(b) = b {
            self.inner.consume(1);
            if b == b'\n' {
                self.line += 1;
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
        Ok(b)
    }

    fn need_byte(&mut self) -> Result<u8, Fault> {
        self.next_byte()?
            .ok_or_else(|| self.error("EOF while parsing a value"))
    }

    /// Skip whitespace and return the next byte without taking it.
    pub fn peek(&mut self) -> Result<Option<u8>, Fault> {
        while let Some(b) = self.peek_byte()? {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Ok(Some(b));
            }
            self.next_byte()?;
        }
        Ok(None)
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(), Fault> {
        match self.peek()? {
            Some(b) if b == want => {
                self.next_byte()?;
                Ok(())
            }
            Some(_) => Err(self.error(what)),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    /// Take the `{` that opens an object (the caller has peeked it).
    pub fn begin_object(&mut self) -> Result<(), Fault> {
        self.enter()?;
        self.expect(b'{', "expected `{`")
    }

    fn enter(&mut self) -> Result<(), Fault> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        Ok(())
    }

    /// The next member name of the current object (`first`: none read
    /// yet), kept up to `limit` bytes, with its `:` taken; `None` after
    /// the closing `}`.
    pub fn next_key(&mut self, first: &mut bool, limit: usize) -> Result<Option<Text>, Fault> {
        if !self.more(first, b'}')? {
            return Ok(None);
        }
        if self.peek()? != Some(b'"') {
            return Err(self.error("key must be a string"));
        }
        self.next_byte()?;
        let key = self.string(limit)?;
        self.expect(b':', "expected `:`")?;
        Ok(Some(key))
    }

    /// Whether the container closed by `close` has another item; takes the
    /// comma between items and the closing byte after the last.
    fn more(&mut self, first: &mut bool, close: u8) -> Result<bool, Fault> {
        match self.peek()? {
            Some(b) if b == close => {
                self.next_byte()?;
                self.depth -= 1;
                Ok(false)
            }
            Some(b',') if !*first => {
                self.next_byte()?;
                if self.peek()? == Some(close) {
                    return Err(self.error("trailing comma"));
                }
                Ok(true)
            }
            Some(_) if *first => {
                *first = false;
                Ok(true)
            }
            Some(_) => Err(self.error("expected `,` or the end of the container")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    /// Read a string whose opening quote was taken, keeping `limit` bytes.
    fn string(&mut self, limit: usize) -> Result<Text, Fault> {
        let mut kept: Vec<u8> = Vec::new();
        let mut total: u64 = 0;
        let mut utf8 = Utf8::default();
        let push = |kept: &mut Vec<u8>, total: &mut u64, bytes: &[u8]| {
            *total += bytes.len() as u64;
            for &b in bytes {
                if kept.len() < limit {
                    kept.push(b);
                }
            }
        };
        loop {
            // Fast path: take plain bytes straight from the buffer.
            let (plain, valid) = {
                let buf = match self.inner.fill_buf() {
                    Ok(buf) => buf,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Fault::Io(e)),
                };
                let plain = buf
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .unwrap_or(buf.len());
                let valid = buf[..plain].iter().all(|&b| utf8.step(b));
                let room = limit.saturating_sub(kept.len()).min(plain);
                kept.extend_from_slice(&buf[..room]);
                (plain, valid && !buf.is_empty())
            };
            if !valid {
                return Err(if plain == 0 {
                    self.error("EOF while parsing a string")
                } else {
                    self.error("invalid UTF-8 in a string")
                });
            }
            if plain > 0 {
                total += plain as u64;
                self.column += plain as u64;
                self.inner.consume(plain);
                continue;
            }
            let b = self.need_byte()?;
            if utf8.due > 0 {
                return Err(self.error("invalid UTF-8 in a string"));
            }
            match b {
                b'"' => break,
                b'\\' => {
                    let c = self.escape()?;
                    let mut tmp = [0u8; 4];
                    push(&mut kept, &mut total, c.encode_utf8(&mut tmp).as_bytes());
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
        if utf8.due > 0 {
            return Err(self.error("invalid UTF-8 in a string"));
        }
        let text = match String::from_utf8(kept) {
            Ok(s) => s,
            // Only a cut can split a character; keep the whole ones.
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        };
        Ok(Text { text, total })
    }

    fn hex4(&mut self) -> Result<u32, Fault> {
        let mut n = 0u32;
        for _ in 0..4 {
            let b = self.need_byte()?;
            let d = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid escape"))?;
            n = n * 16 + d;
        }
        Ok(n)
    }

    fn escape(&mut self) -> Result<char, Fault> {
        Ok(match self.need_byte()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let n = self.hex4()?;
                match n {
                    0xd800..=0xdbff => {
                        if self.need_byte()? != b'\\' || self.need_byte()? != b'u' {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        let c = 0x10000 + ((n - 0xd800) << 10) + (low - 0xdc00);
                        char::from_u32(c).ok_or_else(|| self.error("invalid escape"))?
                    }
                    0xdc00..=0xdfff => {
                        return Err(self.error("lone trailing surrogate in hex escape"))
                    }
                    n => char::from_u32(n).ok_or_else(|| self.error("invalid escape"))?,
                }
            }
            _ => return Err(self.error("invalid escape")),
        })
    }

    /// A number literal, kept up to [`MAX_NUMBER_BYTES`]; its grammar is
    /// checked as it goes. Returns the literal and its full length.
    fn number(&mut self) -> Result<(String, u64), Fault> {
        let mut text = String::new();
        let mut len = 0u64;
        let mut take = |t: &mut Self, text: &mut String| -> Result<u8, Fault> {
            let b = t.need_byte()?;
            len += 1;
            if text.len() < MAX_NUMBER_BYTES {
                text.push(b as char);
            }
            Ok(b)
        };
        let is_digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
        if self.peek_byte()? == Some(b'-') {
            take(self, &mut text)?;
        }
        match self.peek_byte()? {
            Some(b'0') => {
                take(self, &mut text)?;
            }
            Some(b'1'..=b'9') => {
                while is_digit(self.peek_byte()?) {
                    take(self, &mut text)?;
                }
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek_byte()? == Some(b'.') {
            take(self, &mut text)?;
            if !is_digit(self.peek_byte()?) {
                return Err(self.error("invalid number"));
            }
            while is_digit(self.peek_byte()?) {
                take(self, &mut text)?;
            }
        }
        if matches!(self.peek_byte()?, Some(b'e' | b'E')) {
            take(self, &mut text)?;
            if matches!(self.peek_byte()?, Some(b'+' | b'-')) {
                take(self, &mut text)?;
            }
            if !is_digit(self.peek_byte()?) {
                return Err(self.error("invalid number"));
            }
            while is_digit(self.peek_byte()?) {
                take(self, &mut text)?;
            }
        }
        Ok((text, len))
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fault> {
        for &want in word {
            if self.need_byte()? != want {
                return Err(self.error("expected value"));
            }
        }
        Ok(())
    }

    /// Read one value, building it while it fits in `budget` bytes and
    /// scanning the rest. Strings inside keep at most what is left.
    pub fn value(&mut self, budget: u64) -> Result<Bounded, Fault> {
        let mut cost = 0u64;
        let value = self.value_inner(budget, &mut cost)?;
        Ok(Bounded {
            value: (cost <= budget).then_some(value).flatten(),
            cost,
        })
    }

    /// Skip one value without keeping any of it.
    pub fn skip(&mut self) -> Result<u64, Fault> {
        Ok(self.value(0)?.cost)
    }

    /// Read a value if it is a string, keeping `limit` bytes; anything
    /// else is left for [`Tokens::value`].
    pub fn string_value(&mut self, limit: usize) -> Result<Option<Text>, Fault> {
        if self.peek()? != Some(b'"') {
            return Ok(None);
        }
        self.next_byte()?;
        self.string(limit).map(Some)
    }

    fn value_inner(&mut self, budget: u64, cost: &mut u64) -> Result<Option<Value>, Fault> {
        let room = |cost: &u64| budget.saturating_sub(*cost);
        let Some(b) = self.peek()? else {
            return Err(self.error("EOF while parsing a value"));
        };
        let value = match b {
            b'"' => {
                self.next_byte()?;
                let keep = usize::try_from(room(cost)).unwrap_or(usize::MAX);
                let t = self.string(keep)?;
                *cost += t.total;
                Value::String(t.text)
            }
            b'{' => {
                self.begin_object()?;
                let mut map = Map::new();
                let mut first = true;
                loop {
                    let keep = usize::try_from(room(cost)).unwrap_or(usize::MAX);
                    let Some(k) = self.next_key(&mut first, keep)? else {
                        break;
                    };
                    *cost += k.total + 1;
                    let v = self.value_inner(budget, cost)?;
                    if let Some(v) = v.filter(|_| *cost <= budget) {
                        map.insert(k.text, v);
                    }
                }
                *cost += 1;
                Value::Object(map)
            }
            b'[' => {
                self.next_byte()?;
                self.enter()?;
                let mut items = Vec::new();
                let mut first = true;
                while self.more(&mut first, b']')? {
                    *cost += 1;
                    let v = self.value_inner(budget, cost)?;
                    if let Some(v) = v.filter(|_| *cost <= budget) {
                        items.push(v);
                    }
                }
                *cost += 1;
                Value::Array(items)
            }
            b't' => {
                self.literal(b"true")?;
                *cost += 4;
                Value::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                *cost += 5;
                Value::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                *cost += 4;
                Value::Null
            }
            b'-' | b'0'..=b'9' => {
                let (text, len) = self.number()?;
                *cost += len;
                if len as usize > MAX_NUMBER_BYTES || *cost > budget {
                    return Ok(None);
                }
                let n: serde_json::Number =
                    serde_json::from_str(&text).map_err(|_| self.error("number out of range"))?;
                Value::Number(n)
            }
            _ => return Err(self.error("expected value")),
        };
        Ok((*cost <= budget).then_some(value))
    }

    /// After the document: only whitespace may follow.
    pub fn finish(&mut self) -> Result<(), Fault> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, budget: u64) -> Result<Bounded, Fault> {
        let mut t = Tokens::new(text.as_bytes());
        let v = t.value(budget)?;
        t.finish()?;
        Ok(v)
    }

    #[test]
    fn agrees_with_serde_json_on_what_fits() {
        for text in [
            r#"{"a": [1, -2.5e3, true, false, null, "x\u00e9\ud83d\ude00\n"], "b": {}}"#,
            "[]",
            "0",
            r#""caf\u00e9 \"q\" \\ \/""#,
            " [ { } , [ ] ] ",
        ] {
            let ours = read(text, u64::MAX).unwrap().value.unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"\u{1}\"",
            "{1:2}",
            "[1 2]",
            "\"\\ud800\"",
            "1 2",
            "\"abc",
        ] {
            assert!(read(text, u64::MAX).is_err(), "{text:?} accepted");
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text:?}");
        }
        let mut bad_utf8 = b"\"a".to_vec();
        bad_utf8.extend([0xc3, b'"']);
        let mut t = Tokens::new(bad_utf8.as_slice());
        assert!(t.value(100).is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(read(&deep, u64::MAX).is_err());
    }

    #[test]
    fn long_strings_are_cut_and_measured() {
        let text = format!("\"{}\u{e9}\"", "x".repeat(9));
        let mut t = Tokens::new(text.as_bytes());
        let s = t.string_value(10).unwrap().unwrap();
        assert_eq!((s.text.as_str(), s.total), ("xxxxxxxxx", 11));
        assert!(s.cut());
        let v = read(&format!("[\"{}\"]", "y".repeat(1000)), 100).unwrap();
        assert!(v.value.is_none());
        assert_eq!(v.cost, 1002);
    }
}
