//! A real HAProxy (Debian's package) on 127.0.0.1 in front of shards,
//! loading the map `grok-manifest --shard-map N --shard-map-format haproxy`
//! makes: the repository is cut from the path and looked up exactly (the
//! form the README documents). Stopped when dropped.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::nginx::{free_port, stop, wait_for};

/// The running HAProxy.
pub struct Front {
    child: Child,
    port: u16,
}

/// The haproxy binary, if installed.
pub fn haproxy_binary() -> Option<PathBuf> {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The lines of the README's HAProxy recipe for `map` (the part the
/// test and the documentation share).
pub fn routing_lines(map: &Path) -> String {
    format!(
        "  http-request set-var(txn.repo) 'path,regsub(\"^(/.+?[.]git)(/.*)?$\",\"\\1\")'\n\
         \x20 http-request set-var(txn.shard) var(txn.repo),map({map})\n\
         \x20 http-request return status 404 unless {{ var(txn.shard) -m found }}\n\
         \x20 use_backend shard%[var(txn.shard)]\n",
        map = map.display()
    )
}

impl Front {
    /// Start HAProxy under `dir`, sending each repository of `map` to
    /// `127.0.0.1:<shard_ports[K]>`.
    pub fn start(dir: &Path, shard_ports: &[u16], map: &Path) -> Front {
        let haproxy =
            haproxy_binary().expect("haproxy is not installed: run scripts/setup-test-tools");
        let port = free_port();
        let mut conf = format!(
            "global\n  log stderr format raw local0\ndefaults\n  mode http\n  log global\n\
             \x20 timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend git\n  bind 127.0.0.1:{port}\n{}",
            routing_lines(map)
        );
        for (i, p) in shard_ports.iter().enumerate() {
            conf.push_str(&format!("backend shard{i}\n  server s{i} 127.0.0.1:{p}\n"));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, conf).unwrap();
        let log = dir.join("haproxy.log");
        let mut child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("start haproxy");
        wait_for(
            "haproxy",
            &mut child,
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
            &log,
        );
        Front { child, port }
    }

    /// The URL of a repository through HAProxy.
    pub fn url(&self, key: &str) -> String {
        format!("http://127.0.0.1:{}{key}", self.port)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
