//! A real Garage (the self-hosted S3-compatible store, built from crates.io
//! by scripts/setup-test-tools) on 127.0.0.1: one node, one bucket named
//! `localhost` with website access, so its anonymous-read web endpoint
//! serves the bucket at `http://localhost:<port>/` (Garage picks the
//! bucket by the Host header), and a key allowed to write it. Runs in its
//! own process group and is stopped when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::nginx::{free_port, wait_for};

/// The bucket every test store has.
pub const BUCKET: &str = "localhost";
/// The test key (Garage's key ids are GK and 24 hex digits).
pub const KEY_ID: &str = "GK0123456789abcdef01234567";
/// Its secret (64 hex digits).
pub const SECRET: &str = "1f2e3d4c5b6a79880123456789abcdef0123456789abcdef0123456789abcdef";

/// A running Garage.
pub struct Garage {
    child: Child,
    dir: PathBuf,
    /// The S3 API port.
    pub s3_port: u16,
    /// The website (anonymous read) port.
    pub web_port: u16,
}

/// The garage binary: `$GARAGE_BIN`, else on PATH, else cargo's bin dir.
pub fn garage_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v garage"])
        .output()
        .expect("sh runs");
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !found.is_empty() {
        return PathBuf::from(found);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let p = home.join("bin/garage");
    assert!(
        p.is_file(),
        "garage is not installed: run scripts/setup-test-tools"
    );
    p
}

impl Garage {
    /// Start Garage with its data under `dir`, lay out its one node and
    /// make the bucket and key. Panics with its log if it does not come up.
    pub fn start(dir: &Path) -> Garage {
        let dir = dir.join("garage");
        std::fs::create_dir_all(&dir).unwrap();
        let (rpc, s3_port, web_port, admin) = (free_port(), free_port(), free_port(), free_port());
        let d = dir.display();
        let conf = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"{SECRET}\"\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\n\
             root_domain = \".s3.garage.localhost\"\n\
             [s3_web]\nbind_addr = \"127.0.0.1:{web_port}\"\nroot_domain = \".web.garage.localhost\"\n\
             index = \"index.html\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n"
        );
        let conf_path = dir.join("garage.toml");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.join("garage.log");
        let mut child = Command::new(garage_binary())
            .arg("-c")
            .arg(&conf_path)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("garage.err")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start garage");
        wait_for(
            "garage",
            &mut child,
            || std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_ok(),
            &dir.join("garage.err"),
        );
        let g = Garage {
            child,
            dir,
            s3_port,
            web_port,
        };
        let id = g.cli(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap().to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&["bucket", "create", BUCKET]);
        g.cli(&["key", "import", "--yes", "-n", "test", KEY_ID, SECRET]);
        g.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "test",
        ]);
        g.cli(&["bucket", "website", "--allow", BUCKET]);
        g
    }

    /// Run a garage command against this node; its stdout. Panics when it
    /// fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(garage_binary())
            .arg("-c")
            .arg(self.dir.join("garage.toml"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run garage");
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The S3 API endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The bucket's anonymous-read URL (its root).
    pub fn web_url(&self) -> String {
        format!("http://localhost:{}", self.web_port)
    }

    /// The `[publish]` section for this store, objects under `prefix`.
    pub fn publish_section(&self, prefix: &str) -> String {
        format!(
            "[publish]\nbucket = s3://{BUCKET}/{prefix}\nendpoint = {}\nregion = garage\n",
            self.endpoint()
        )
    }

    /// Give `cmd` the test key the way operators do, in the environment.
    pub fn credentials(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
    }

    /// Delete `key` through the S3 API, signed with the test key by curl
    /// (`--aws-sigv4`), as another client of the bucket would.
    pub fn delete(&self, key: &str) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "DELETE",
            ])
            .args(["--aws-sigv4", "aws:amz:garage:s3", "--user"])
            .arg(format!("{KEY_ID}:{SECRET}"))
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .arg(format!(
                "{}/{BUCKET}/{}",
                self.endpoint(),
                key.trim_start_matches('/')
            ))
            .output()
            .expect("curl runs: run scripts/setup-test-tools");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "204", "DELETE {key}");
    }

    /// GET `path` from the web endpoint, as an anonymous reader: the
    /// status, the headers (lower-case names) and the body.
    pub fn get(&self, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.web_port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            s,
            "GET /{} HTTP/1.0\r\nHost: localhost:{}\r\n\r\n",
            path.trim_start_matches('/'),
            self.web_port
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, raw[split + 4..].to_vec())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
