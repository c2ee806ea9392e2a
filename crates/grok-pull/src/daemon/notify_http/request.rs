//! The pure half of the notification endpoint: what a request head says,
//! what its body names, and the answer for each outcome. No I/O, so every
//! rule is unit-tested here; the connection handling is in the parent
//! module.

use crate::daemon::listener::{classify, Line, Notification};

/// The longest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// The most repository paths one request may name.
pub const MAX_PATHS: usize = grokmirror_notify::MAX_PATHS;

/// What a request gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 204: the paths went to the engine.
    Accepted,
    /// 400: the body or head is not what we take (why).
    BadRequest(String),
    /// 401: unsigned or wrongly signed.
    Unauthorized,
    /// 405: not a POST.
    MethodNotAllowed,
    /// 411: no Content-Length (chunked bodies are not taken).
    LengthRequired,
    /// 413: head, body or number of paths over its bound.
    TooLarge(String),
    /// 429: rate-limited.
    TooMany,
}

impl Answer {
    /// The status line's code and reason.
    pub fn status(&self) -> &'static str {
        match self {
            Answer::Accepted => "204 No Content",
            Answer::BadRequest(_) => "400 Bad Request",
            Answer::Unauthorized => "401 Unauthorized",
            Answer::MethodNotAllowed => "405 Method Not Allowed",
            Answer::LengthRequired => "411 Length Required",
            Answer::TooLarge(_) => "413 Content Too Large",
            Answer::TooMany => "429 Too Many Requests",
        }
    }

    /// The short text body telling the client what to do.
    pub fn body(&self) -> String {
        match self {
            Answer::Accepted => String::new(),
            Answer::BadRequest(why) | Answer::TooLarge(why) => format!("{why}\n"),
            Answer::Unauthorized => {
                "sign the body: X-Hub-Signature-256: sha256=<HMAC-SHA256 hex>\n".into()
            }
            Answer::MethodNotAllowed => "POST manifest paths, one per line\n".into(),
            Answer::LengthRequired => "send a Content-Length\n".into(),
            Answer::TooMany => "too many requests; retry later\n".into(),
        }
    }

    /// The whole HTTP response.
    pub fn response(&self) -> String {
        let body = self.body();
        let extra = match self {
            Answer::MethodNotAllowed => "Allow: POST\r\n",
            Answer::TooMany => "Retry-After: 1\r\n",
            _ => "",
        };
        format!(
            "HTTP/1.1 {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            self.status(),
            body.len()
        )
    }
}

/// Where a request head ends (the index just past its blank line), if it
/// has arrived.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the head of a POST says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The body's length.
    pub content_length: usize,
    /// The `X-Hub-Signature-256` value, if sent.
    pub signature: Option<String>,
}

/// Read a request head (without the blank line or with it).
pub fn parse_head(head: &[u8]) -> Result<Head, Answer> {
    let text = std::str::from_utf8(head)
        .map_err(|_| Answer::BadRequest("the request head is not UTF-8".into()))?;
    let mut lines = text.lines();
    let request = lines.next().unwrap_or("");
    let mut parts = request.split_whitespace();
    let (method, _target, version) = (parts.next(), parts.next(), parts.next());
    if !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(Answer::BadRequest("not an HTTP/1.x request".into()));
    }
    if method != Some("POST") {
        return Err(Answer::MethodNotAllowed);
    }
    let mut length = None;
    let mut signature = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| Answer::BadRequest("Content-Length is not a number".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(Answer::BadRequest("two different Content-Lengths".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Answer::LengthRequired);
        } else if name.eq_ignore_ascii_case(grokmirror_notify::signature::HEADER) {
            signature = Some(value.to_string());
        }
    }
    let content_length = length.ok_or(Answer::LengthRequired)?;
    if content_length > MAX_BODY {
        return Err(Answer::TooLarge(format!(
            "the body is limited to {MAX_BODY} bytes"
        )));
    }
    Ok(Head {
        content_length,
        signature,
    })
}

/// The repository paths a (signed) body names: manifest paths one per
/// line, or a Google Pub/Sub push message as grokmirror's
/// `contrib/pubsubv1.py` takes it (JSON, the path in
/// `message.attributes.repo`). Every path goes through the push socket's
/// validation ([`classify`]); one bad path refuses the whole request.
pub fn parse_body(body: &[u8]) -> Result<Vec<Notification>, Answer> {
    let lines: Vec<Vec<u8>> = if body.trim_ascii_start().starts_with(b"{") {
        vec![pubsub_repo(body)?.into_bytes()]
    } else {
        body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
    };
    let mut notes = Vec::new();
    for line in &lines {
        match classify(line) {
            Line::Blank => {}
            Line::Path(note) => {
                if notes.len() == MAX_PATHS {
                    return Err(Answer::TooLarge(format!(
                        "at most {MAX_PATHS} paths per request; send several"
                    )));
                }
                notes.push(note);
            }
            Line::Rejected { why, shown } => {
                return Err(Answer::BadRequest(format!("{shown:?}: {why}")));
            }
        }
    }
    if notes.is_empty() {
        return Err(Answer::BadRequest("no repository path in the body".into()));
    }
    Ok(notes)
}

/// `message.attributes.repo` of a Pub/Sub push body.
fn pubsub_repo(body: &[u8]) -> Result<String, Answer> {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Answer::BadRequest(format!("the body is not valid JSON: {e}")))?;
    match doc.pointer("/message/attributes/repo") {
        Some(serde_json::Value::String(repo)) if !repo.contains('\n') => Ok(repo.clone()),
        _ => Err(Answer::BadRequest(
            "not a Pub/Sub push message with message.attributes.repo".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, Answer> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn heads() {
        let h = head("POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 7\r\nX-Hub-Signature-256: sha256=ab\r\n\r\n").unwrap();
        assert_eq!(h.content_length, 7);
        assert_eq!(h.signature.as_deref(), Some("sha256=ab"));
        assert_eq!(
            head("GET / HTTP/1.1\r\n\r\n"),
            Err(Answer::MethodNotAllowed)
        );
        assert_eq!(head("POST / HTTP/1.1\r\n\r\n"), Err(Answer::LengthRequired));
        assert_eq!(
            head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Answer::LengthRequired)
        );
        assert!(matches!(
            head("POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"),
            Err(Answer::TooLarge(_))
        ));
        assert!(matches!(
            head("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(Answer::BadRequest(_))
        ));
        assert!(matches!(head("hello\r\n\r\n"), Err(Answer::BadRequest(_))));
        assert_eq!(head_end(b"POST / HTTP/1.1\r\n\r\nbody"), Some(19));
        assert_eq!(head_end(b"POST / HTTP/1.1\n\nbody"), Some(17));
        assert_eq!(head_end(b"POST / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn bodies() {
        assert_eq!(
            parse_body(b"/a.git\n\npub/b.git\r\n").unwrap(),
            vec![
                Notification("/a.git".into()),
                Notification("/pub/b.git".into())
            ]
        );
        assert!(matches!(
            parse_body(b"/a.git\n/../etc\n"),
            Err(Answer::BadRequest(_))
        ));
        assert!(matches!(parse_body(b"\n\n"), Err(Answer::BadRequest(_))));
        let many: String = (0..=MAX_PATHS).map(|i| format!("/r{i}.git\n")).collect();
        assert!(matches!(
            parse_body(many.as_bytes()),
            Err(Answer::TooLarge(_))
        ));
        let pubsub = br#" {"message": {"attributes": {"proj": "kernel", "repo": "/pub/a.git"}, "data": "", "messageId": "1"}, "subscription": "s"}"#;
        assert_eq!(
            parse_body(pubsub).unwrap(),
            vec![Notification("/pub/a.git".into())]
        );
        assert!(matches!(
            parse_body(br#"{"message": {"attributes": {"repo": "/../x"}}}"#),
            Err(Answer::BadRequest(_))
        ));
        assert!(matches!(
            parse_body(br#"{"message": {}}"#),
            Err(Answer::BadRequest(_))
        ));
        assert!(matches!(parse_body(b"{nope"), Err(Answer::BadRequest(_))));
    }

    #[test]
    fn responses() {
        let r = Answer::Accepted.response();
        assert!(r.starts_with("HTTP/1.1 204 No Content\r\n"), "{r}");
        assert!(r.contains("Content-Length: 0\r\n"), "{r}");
        assert!(Answer::MethodNotAllowed.response().contains("Allow: POST"));
        assert!(Answer::TooMany.response().starts_with("HTTP/1.1 429 "));
        assert!(Answer::Unauthorized.response().starts_with("HTTP/1.1 401 "));
    }
}
