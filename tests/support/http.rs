//! A real HTTP/1.1 server on 127.0.0.1 serving files from a directory, with
//! `Last-Modified` and `If-Modified-Since` (304) like nginx does for static
//! files, and switchable failure modes (5xx, truncated bodies). Requests are
//! recorded so tests can check what the client sent.
//!
//! Hand-written on std::net rather than a server crate: the failure modes
//! (cutting a body short, answering with arbitrary statuses) are easiest to
//! get exactly right on raw sockets, and it is test code only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

/// How the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Serve files, 304 when not modified since.
    Normal,
    /// Answer every request with this status and a short body.
    Status(u16),
    /// Send the headers of a file and only the first half of its body,
    /// then close the connection.
    Truncate,
    /// Send the headers of a file and the first half of its body, then
    /// nothing more, holding the connection open until the server stops:
    /// an origin that hangs mid-response.
    Stall,
    /// Answer every request with a 302 back to the same URL, forever.
    RedirectLoop,
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request path.
    pub path: String,
    /// The If-Modified-Since header, if sent.
    pub if_modified_since: Option<String>,
    /// The Authorization header, if sent.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
}

struct State {
    root: PathBuf,
    stop: Arc<AtomicBool>,
    mode: Mode,
    requests: Vec<Request>,
}

/// The running server; stops when dropped.
pub struct HttpServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serve `root` on a free port of 127.0.0.1.
    pub fn serve(root: &Path) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State {
            root: root.to_path_buf(),
            stop: stop.clone(),
            mode: Mode::Normal,
            requests: Vec::new(),
        }));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = handle(conn, &state);
                    });
                }
            })
        };
        HttpServer {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Change how the server answers.
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Forget the requests seen so far.
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    // A client talking to us as its proxy sends the absolute URL.
    let path = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => target.to_string(),
    };
    let mut ims = None;
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let value = value.trim().to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "if-modified-since" => ims = Some(value),
                "authorization" => auth = Some(value),
                _ => {}
            }
        }
    }
    let (root, mode, stop) = {
        let s = state.lock().unwrap();
        (s.root.clone(), s.mode.clone(), s.stop.clone())
    };
    let mut out = conn;
    let record = |status: u16| {
        state.lock().unwrap().requests.push(Request {
            path: path.clone(),
            if_modified_since: ims.clone(),
            authorization: auth.clone(),
            status,
        });
    };
    if let Mode::Status(code) = mode {
        record(code);
        let body = format!("status {code}\n");
        write!(
            out,
            "HTTP/1.1 {code} Test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    if mode == Mode::RedirectLoop {
        record(302);
        write!(
            out,
            "HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    }
    let file = root.join(path.trim_start_matches('/'));
    let Ok(meta) = std::fs::metadata(&file) else {
        record(404);
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        return Ok(());
    };
    let mtime = meta.modified()?;
    let mtime_secs = mtime.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime_secs));
    if let Some(since) = ims
        .as_deref()
        .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        let since = since.duration_since(UNIX_EPOCH).unwrap().as_secs();
        if mtime_secs <= since {
            record(304);
            write!(
                out,
                "HTTP/1.1 304 Not Modified\r\nLast-Modified: {last_modified}\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
    }
    let mut body = Vec::new();
    std::fs::File::open(&file)?.read_to_end(&mut body)?;
    record(200);
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nLast-Modified: {last_modified}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if mode == Mode::Truncate {
        out.write_all(&body[..body.len() / 2])?;
        out.flush()?;
        let _ = out.shutdown(std::net::Shutdown::Both);
        return Ok(());
    }
    if mode == Mode::Stall {
        out.write_all(&body[..body.len() / 2])?;
        out.flush()?;
        // Keep the connection open and silent until the server goes.
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return Ok(());
    }
    out.write_all(&body)?;
    out.flush()
}

/// A port on 127.0.0.1 that nothing listens on (bound and released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
