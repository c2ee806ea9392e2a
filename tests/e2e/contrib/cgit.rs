//! The operators' everyday view of a mirror: a replica made by our
//! grok-manifest (origin) and grok-pull (replica, over a loopback HTTP
//! manifest and `git daemon`) is served by the real cgit (Debian's
//! package, `/usr/lib/cgit/cgit.cgi` run as a CGI process). Its index
//! lists every mirrored repository with its description, owner and idle
//! time (read from `info/web/last-modified`), and `projects.list` decides
//! what it shows.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::http::HttpServer;
use crate::support::mirror::{output_text, Origin, Replica};
use crate::support::{fixture, run};

/// Where Debian's `cgit` package puts the CGI.
const CGIT_CGI: &str = "/usr/lib/cgit/cgit.cgi";

/// The CGI, installed by scripts/setup-test-tools; panics when missing.
fn cgit_cgi() -> PathBuf {
    super::install_tools();
    let cgi = PathBuf::from(CGIT_CGI);
    assert!(
        cgi.is_file(),
        "{CGIT_CGI} IS NOT INSTALLED: install Debian's cgit package \
         (apt-get install cgit; scripts/setup-test-tools does this as root)"
    );
    cgi
}

/// One row of cgit's repository index.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    /// The repository's name (its path under scan-path).
    name: String,
    description: String,
    owner: String,
    /// The idle column as shown ("3 days").
    idle: String,
    /// The idle column's tooltip: the exact date cgit read.
    idle_title: String,
}

/// Run cgit's index page with `cgitrc` under time zone `tz`; the HTML body.
fn cgit_index(cgitrc: &Path, tz: &str) -> String {
    let out = run(Command::new(cgit_cgi())
        .env_clear()
        .env("CGIT_CONFIG", cgitrc)
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "GET")
        .env("QUERY_STRING", "")
        .env("SCRIPT_NAME", "/cgit")
        .env("PATH_INFO", "/")
        .env("SERVER_NAME", "localhost")
        .env("SERVER_PORT", "80")
        .env("HTTP_HOST", "localhost")
        .env("TZ", tz));
    let text = String::from_utf8(out.stdout.clone()).expect("cgit prints UTF-8");
    assert!(
        out.status.success() && text.contains("Content-Type: text/html"),
        "cgit failed: {}",
        output_text(&out)
    );
    text
}

/// The text of an HTML fragment: tags dropped, the entities cgit writes
/// decoded.
fn html_text(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

/// The value of attribute `name` (single-quoted, as cgit writes them) in
/// the first tag of `s` carrying it.
fn attr(s: &str, name: &str) -> Option<String> {
    let start = s.find(&format!("{name}='"))? + name.len() + 2;
    let end = s[start..].find('\'')? + start;
    Some(html_text(&s[start..end]))
}

/// The repository rows of cgit's index page.
fn rows(html: &str) -> Vec<Row> {
    let mut found = Vec::new();
    for chunk in html.split("<tr").skip(1) {
        let row = chunk.split("</tr>").next().unwrap_or_default();
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap_or_default())
            .collect();
        // Repository rows: name, description, owner, idle (and links).
        if cells.len() < 4 || !cells[0].contains("repo") {
            continue;
        }
        let cell = |i: usize| cells[i].split_once('>').map(|x| x.1).unwrap_or_default();
        found.push(Row {
            name: html_text(cell(0)),
            description: html_text(cell(1)),
            owner: html_text(cell(2)),
            idle: html_text(cell(3)),
            idle_title: attr(cells[3], "title").unwrap_or_default(),
        });
    }
    found
}

/// A cgitrc serving `top` (with `project-list` when given: it must come
/// before `scan-path`, which reads it).
fn cgitrc(dir: &Path, name: &str, top: &Path, projects: Option<&Path>) -> PathBuf {
    let mut text = String::from(
        "cache-size=0\nvirtual-root=/cgit/\nenable-git-config=1\nenable-index-owner=1\n\
         agefile=info/web/last-modified\nmax-repo-count=1000\nremove-suffix=0\n",
    );
    if let Some(p) = projects {
        text.push_str(&format!("project-list={}\n", p.display()));
    }
    text.push_str(&format!("scan-path={}\n", top.display()));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn find<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("cgit does not list {name}: {rows:#?}"))
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time, in UTC (cgit's tooltip, without
/// `local-time`, shows the date it read in UTC).
fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[test]
fn cgit_lists_a_replica_with_description_owner_and_idle_time() {
    // A zone far from UTC, for grok-pull (which writes the agefile in
    // local time) and cgit (which reads it in local time) alike: a
    // mismatch would move every date by hours.
    const TZ: &str = "Etc/GMT-5";
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let origin = Origin::new(&dir);
    // Newest commit (the manifest's `modified`, the agefile's date) three
    // days ago, ten hours ago and twenty days ago.
    let three_days = now - 3 * 86_400;
    let ten_hours = now - 10 * 3600;
    let twenty_days = now - 20 * 86_400;
    origin.project("/pub/linux.git", 3, three_days - 120);
    origin.describe(
        "/pub/linux.git",
        "Linux kernel <source> & \"tree\"",
        Some("Linus Torvalds"),
    );
    origin.project("/pub/tools/git.git", 2, ten_hours - 60);
    origin.describe("/pub/tools/git.git", "Git: fast, scalable", None);
    origin.project("/pub/old.git", 1, twenty_days);
    origin.describe("/pub/old.git", "Old project", Some("Ann Archivist"));
    origin.manifest();
    origin.age_manifest(-10);

    let http = HttpServer::serve(&origin.root);
    let daemon = support::daemon::GitDaemon::serve(&origin.root);
    let replica = Replica::new(
        &dir,
        "replica",
        &daemon.site(),
        &http.url("manifest.js.gz"),
        "default_owner = Mirror Admin\n",
    );
    let mut pull = support::grok("grok-pull");
    support::mirror::no_proxy(&mut pull);
    let out = run(pull.arg("-v").arg("-c").arg(&replica.config).env("TZ", TZ));
    assert_success!(out);
    // A repository on the replica's disk that is not mirrored (an
    // operator's scratch copy): not in projects.list.
    fixture::project(&replica.path("/scratch/local.git"), 1, now - 3600);
    let projects = replica.top.join("projects.list");
    let listed = std::fs::read_to_string(&projects).unwrap();
    assert_eq!(
        listed,
        "pub/linux.git\npub/old.git\npub/tools/git.git\n",
        "{}",
        output_text(&out)
    );

    // Control: with scan-path alone, cgit sees every repository on disk,
    // the scratch one too.
    let everything = rows(&cgit_index(
        &cgitrc(&dir, "all.cgitrc", &replica.top, None),
        TZ,
    ));
    find(&everything, "scratch/local.git");

    // With projects.list, exactly the mirrored repositories.
    let html = cgit_index(&cgitrc(&dir, "cgitrc", &replica.top, Some(&projects)), TZ);
    let shown = rows(&html);
    let mut names: Vec<&str> = shown.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["pub/linux.git", "pub/old.git", "pub/tools/git.git"],
        "{html}"
    );

    let linux = find(&shown, "pub/linux.git");
    assert_eq!(linux.description, "Linux kernel <source> & \"tree\"");
    assert_eq!(linux.owner, "Linus Torvalds");
    assert_eq!(linux.idle, "3 days", "{linux:?}");
    assert!(
        linux.idle_title.starts_with(&utc(three_days)),
        "cgit read another date than the newest commit's: {linux:?}, expected {}",
        utc(three_days)
    );

    let git = find(&shown, "pub/tools/git.git");
    assert_eq!(git.description, "Git: fast, scalable");
    assert_eq!(git.owner, "Mirror Admin", "default_owner, as gitweb.owner");
    assert_eq!(git.idle, "10 hours", "{git:?}");
    assert!(git.idle_title.starts_with(&utc(ten_hours)), "{git:?}");

    let old = find(&shown, "pub/old.git");
    assert_eq!(old.description, "Old project");
    assert_eq!(old.owner, "Ann Archivist");
    assert_eq!(old.idle, "3 weeks", "{old:?}");
    assert!(old.idle_title.starts_with(&utc(twenty_days)), "{old:?}");
}
