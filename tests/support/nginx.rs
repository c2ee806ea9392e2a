//! A real nginx (Debian's package) on 127.0.0.1 routing smart-HTTP git
//! clones to shards: one `server` per shard serving its top level through
//! `git http-backend` under a real `fcgiwrap`, and a router `server` that
//! sends each repository to the shard the `--shard-map` file names. Both
//! run in their own process groups and are stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The router and its shards.
pub struct Router {
    nginx: Child,
    fcgiwrap: Child,
    port: u16,
    shard_ports: Vec<u16>,
    dir: PathBuf,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The nginx binary (Debian puts it in /usr/sbin, which a user's PATH may
/// lack); `None` when it is not installed.
pub fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn fcgiwrap_binary() -> Option<PathBuf> {
    ["/usr/sbin/fcgiwrap", "/usr/bin/fcgiwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Wait until `ready`, panicking with `log` if `child` exits first or it
/// takes more than 20 seconds.
pub fn wait_for(what: &str, child: &mut Child, ready: impl Fn() -> bool, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not start");
}

impl Router {
    /// Start fcgiwrap and nginx under `dir`: shard `i` serves `tops[i]`,
    /// the router loads `map` (an nginx `--shard-map` file). Panics with
    /// nginx's error log if it does not come up.
    pub fn start(dir: &Path, tops: &[PathBuf], map: &Path) -> Router {
        let nginx = nginx_binary().expect("nginx is not installed: run scripts/setup-test-tools");
        let fcgiwrap =
            fcgiwrap_binary().expect("fcgiwrap is not installed: run scripts/setup-test-tools");
        let dir = dir.join("nginx");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let socket = dir.join("fcgiwrap.sock");
        let fcgi_log = dir.join("fcgiwrap.log");
        let mut fcgi = Command::new(fcgiwrap)
            .args(["-c", "4", "-s"])
            .arg(format!("unix:{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&fcgi_log).unwrap())
            .process_group(0)
            .spawn()
            .expect("start fcgiwrap");
        wait_for("fcgiwrap", &mut fcgi, || socket.exists(), &fcgi_log);
        let exec_path = super::git(None, &["--exec-path"]);
        let backend = Path::new(&exec_path).join("git-http-backend");
        let port = free_port();
        let mut conf = String::new();
        // As root, nginx's workers would become `nobody`, who cannot read
        // the test's private temp dirs.
        if nix::unistd::geteuid().is_root() {
            conf.push_str("user root root;\n");
        }
        let d = dir.display();
        conf.push_str(&format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/tmp/body;\nproxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fastcgi;\nuwsgi_temp_path {d}/tmp/uwsgi;\n\
             scgi_temp_path {d}/tmp/scgi;\n\
             map $repo $grok_shard {{\n    default \"\";\n    include {map};\n}}\n",
            map = map.display()
        ));
        let mut shard_ports = Vec::new();
        for (i, top) in tops.iter().enumerate() {
            let shard_port = free_port();
            shard_ports.push(shard_port);
            conf.push_str(&format!(
                "upstream shard{i} {{ server 127.0.0.1:{shard_port}; }}\n\
                 server {{\n    listen 127.0.0.1:{shard_port};\n\
                 access_log {d}/shard{i}.log;\n\
                 location / {{\n\
                 fastcgi_pass unix:{socket};\n\
                 fastcgi_param SCRIPT_FILENAME {backend};\n\
                 fastcgi_param GIT_PROJECT_ROOT {top};\n\
                 fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
                 fastcgi_param PATH_INFO $uri;\n\
                 fastcgi_param QUERY_STRING $args;\n\
                 fastcgi_param REQUEST_METHOD $request_method;\n\
                 fastcgi_param CONTENT_TYPE $content_type;\n\
                 fastcgi_param CONTENT_LENGTH $content_length;\n\
                 fastcgi_param REMOTE_ADDR $remote_addr;\n\
                 fastcgi_param HTTP_GIT_PROTOCOL $http_git_protocol;\n\
                 fastcgi_param PATH {path};\n\
                 }}\n}}\n",
                socket = socket.display(),
                backend = backend.display(),
                top = top.display(),
                path = std::env::var("PATH").unwrap_or_default(),
            ));
        }
        conf.push_str(&format!(
            "server {{\n    listen 127.0.0.1:{port};\n\
             location ~ \"^(?<repo>/.+?\\.git)(/.*)?$\" {{\n\
             if ($grok_shard = \"\") {{ return 404; }}\n\
             proxy_pass http://shard$grok_shard;\n\
             }}\n}}\n}}\n"
        ));
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let error_log = dir.join("error.log");
        let mut child = Command::new(nginx)
            .arg("-e")
            .arg(&error_log)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start nginx");
        wait_for(
            "nginx",
            &mut child,
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
            &error_log,
        );
        Router {
            nginx: child,
            fcgiwrap: fcgi,
            port,
            shard_ports,
            dir,
        }
    }

    /// The URL of a repository through the router.
    pub fn url(&self, key: &str) -> String {
        format!("http://127.0.0.1:{}{key}", self.port)
    }

    /// The port of shard `i`'s own server (`git http-backend` of its top
    /// level), for another front.
    pub fn shard_port(&self, shard: usize) -> u16 {
        self.shard_ports[shard]
    }

    /// The paths shard `i` was asked for, in order.
    pub fn requests_to(&self, shard: usize) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("shard{shard}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('"').nth(1))
            .filter_map(|req| req.split(' ').nth(1))
            .map(str::to_string)
            .collect()
    }
}

/// Kill `child`'s process group and reap it.
pub fn stop(child: &mut Child) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

impl Drop for Router {
    fn drop(&mut self) {
        stop(&mut self.nginx);
        stop(&mut self.fcgiwrap);
    }
}
