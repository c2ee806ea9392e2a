//! Signed HTTP notifications from the tests' side: the shared secret, the
//! signature computed here (not by our programs' code), raw POSTs, and the
//! address a daemon says it listens on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::pulld::{Pulld, PATIENCE};

/// The secret the tests share between daemons.
pub const SECRET: &str = "a shared secret for the tests";

/// `sha256=<hex>` of `body`, computed here (not by grok-pull's code).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// Send raw bytes, return the status code of the answer.
pub fn exchange(addr: &str, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// POST `body` with this signature header value (none: unsigned).
pub fn post(addr: &str, body: &[u8], signature: Option<&str>) -> u16 {
    let mut req = format!(
        "POST /notify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(sig) = signature {
        req.push_str(&format!("X-Hub-Signature-256: {sig}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    exchange(addr, &bytes)
}

pub fn post_signed(addr: &str, body: &str) -> u16 {
    post(addr, body.as_bytes(), Some(&sign(SECRET, body.as_bytes())))
}

/// The secret file, mode 0600.
pub fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("notify.secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The address the daemon says it listens on.
pub fn listen_addr(d: &mut Pulld) -> String {
    const SAYS: &str = "listening for signed notifications on http://";
    d.wait_log(SAYS);
    let log = d.log_text();
    let rest = &log[log.find(SAYS).unwrap() + SAYS.len()..];
    rest[..rest.find('/').unwrap()].to_string()
}

/// The `[pull]` lines of a daemon that takes signed notifications on a
/// port of its choosing, checked with the secret in `secret`, and polls
/// only hourly (so a notification is what explains a fetch).
pub fn listening(secret: &Path) -> String {
    format!(
        "refresh = 3600\nnotify_listen = 127.0.0.1:0\nnotify_secret_file = {}\n",
        secret.display()
    )
}
