//! Getting the remote manifest: over HTTP(S) with If-Modified-Since, from a
//! `file://` path by mtime, or from `[remote] manifest_command` with its
//! exit-code protocol (0 = manifest on stdout, 127 = unchanged, 1 = error).
//!
//! What comes back is size-capped, decompressed when it is gzip (by its
//! magic bytes, whatever the name says), and validated entry by entry
//! ([`grokmirror::formats::remote_manifest`]) as it arrives: no source is ever held whole,
//! so memory follows the number of entries, not the bytes sent. Nothing
//! here touches the mirror.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use grokmirror::formats::last_remote::{self, unix_now, Recorded, RemoteState};
use grokmirror::formats::manifest::decoding_reader;
use grokmirror::formats::remote_manifest::{self, RemoteManifest, Rules};
use tracing::{debug, info, warn};

use crate::settings::{ManifestSource, Settings};

/// How long to wait for a connection to the origin (at most; a shorter
/// `[remote] manifest_timeout` wins).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries after a connection error or a 5xx answer, with these pauses.
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The result of asking the origin for its manifest.
#[derive(Debug)]
pub enum Poll {
    /// Nothing changed since the last successful run.
    Unchanged,
    /// A new manifest.
    Fetched {
        /// The validated manifest.
        manifest: RemoteManifest,
        /// Its modification time is so recent (or so untrustworthy) that
        /// it may change again unnoticed (see [`last_remote::record_mtime`]).
        racy: bool,
        /// What to record in the `.remote` state file once the run has
        /// mirrored it completely (`None` for `manifest_command`).
        state: Option<RemoteState>,
    },
}

/// Log `message` as a warning unless one was said already for `key` in
/// this process (a daemon polls over and over; once is enough to be
/// noticed).
fn warn_once(key: String, message: impl FnOnce() -> String) {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.insert(key) {
        warn!("{}", message());
    }
}

/// What to record for a manifest from `what` modified at `mtime`, read
/// when its clock said `origin_now` ([`last_remote::record_mtime`]); an mtime in
/// the future is said once, as a warning naming `what`.
fn record(what: &str, mtime: i64, origin_now: i64) -> Recorded {
    let now = unix_now();
    let recorded = last_remote::record_mtime(mtime, origin_now, now);
    if recorded.future {
        warn_once(format!("future {what}"), || {
            format!(
                " manifest: {what} was modified at {}, in the future ({}s ahead of this \
                 machine's clock); taking it as now (check the origin's clock)",
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64)),
                mtime - now
            )
        });
    }
    recorded
}

/// The recorded `last-fetched` to compare with ([`last_remote::usable_last_fetched`]);
/// one in the future is said once and not used.
fn usable_since(previous: &RemoteState, state_file: &Path) -> Option<i64> {
    let usable = last_remote::usable_last_fetched(previous.last_fetched, unix_now());
    if usable.is_none() && previous.last_fetched > unix_now() {
        warn_once(format!("future {}", state_file.display()), || {
            format!(
                " manifest: {} records a last-fetched time in the future; not using it, \
                 reading the whole manifest",
                state_file.display()
            )
        });
    }
    usable
}

/// Ask the origin for its manifest. `force` ignores If-Modified-Since and
/// mtimes (`-n`, or a changed config file for URL sources).
pub async fn poll(
    settings: &Settings,
    force: bool,
    previous: &RemoteState,
    rules: &Rules,
    on_new: &(dyn Fn() + Send + Sync),
) -> anyhow::Result<Poll> {
    let config_mtime = settings.config.last_modified;
    let state_file = last_remote::state_path(settings.manifest());
    match &settings.source {
        ManifestSource::Command(cmd) => poll_command(settings, cmd, force, rules, on_new).await,
        ManifestSource::File(path) => {
            let force = force || previous.config_last_modified != config_mtime;
            info!(" manifest: fetching file://{}", path.display());
            let meta = std::fs::metadata(path)
                .with_context(|| format!("remote manifest {} cannot be read", path.display()))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            let since = (!force)
                .then(|| usable_since(previous, &state_file))
                .flatten();
            if since.is_some_and(|since| mtime <= since) {
                info!(" manifest: unchanged");
                return Ok(Poll::Unchanged);
            }
            if meta.len() > settings.manifest_max_bytes {
                bail!(
                    "remote manifest {} is {} bytes, over the [remote] manifest_max_bytes limit of {}",
                    path.display(),
                    meta.len(),
                    settings.manifest_max_bytes
                );
            }
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read remote manifest {}", path.display()))?;
            on_new();
            let (what, rules, max) = (
                path.display().to_string(),
                rules.clone(),
                settings.manifest_max_bytes,
            );
            let manifest = tokio::task::spawn_blocking(move || {
                let reader = decoding_reader(file, Some(max), &what)?;
                let manifest = remote_manifest::parse_untrusted_reader(reader, &what, &rules)?;
                nonempty(manifest, &what)
            })
            .await
            .context("the manifest parser panicked")??;
            let recorded = record(&format!("file://{}", path.display()), mtime, unix_now());
            Ok(Poll::Fetched {
                manifest,
                racy: recorded.racy,
                state: Some(RemoteState {
                    source: Some(path.display().to_string()),
                    last_fetched: recorded.last_fetched,
                    config_last_modified: config_mtime,
                }),
            })
        }
        ManifestSource::Http(url) => {
            let force = force || previous.config_last_modified != config_mtime;
            let since = (!force)
                .then(|| usable_since(previous, &state_file))
                .flatten();
            match fetch_http(
                url,
                since,
                settings.manifest_max_bytes,
                settings.manifest_timeout,
                rules,
                on_new,
            )
            .await?
            {
                None => {
                    info!(" manifest: unchanged");
                    Ok(Poll::Unchanged)
                }
                Some((manifest, last_modified, server_now)) => {
                    let manifest = nonempty(manifest, url)?;
                    let recorded = record(url, last_modified, server_now);
                    Ok(Poll::Fetched {
                        manifest,
                        racy: recorded.racy,
                        state: Some(RemoteState {
                            source: Some(url.clone()),
                            last_fetched: recorded.last_fetched,
                            config_last_modified: config_mtime,
                        }),
                    })
                }
            }
        }
    }
}

/// An empty manifest is an error (it means something is wrong at the
/// origin, and acting on it would purge everything).
fn nonempty(manifest: RemoteManifest, what: &str) -> anyhow::Result<RemoteManifest> {
    if manifest.repos.is_empty() && manifest.rejected.is_empty() {
        bail!("remote manifest {what} is empty; refusing to act on it (nothing was changed)");
    }
    Ok(manifest)
}

/// How much of a command's stdout and stderr is kept for its error line.
const KEPT_OUTPUT: usize = 64 * 1024;

/// Why reading a command's stdout stopped early.
enum Overrun {
    /// More than `[remote] manifest_max_bytes`.
    TooMuch,
    /// Reading the pipe failed.
    Io(std::io::Error),
}

/// Run `manifest_command`: its stdout is parsed as it is printed, counted
/// against `[remote] manifest_max_bytes`, and the whole run is bounded by
/// `[remote] manifest_timeout`; a command over either is killed (with its
/// whole process group) and nothing changes.
async fn poll_command(
    settings: &Settings,
    cmd: &Path,
    force: bool,
    rules: &Rules,
    on_new: &(dyn Fn() + Send + Sync),
) -> anyhow::Result<Poll> {
    use tokio::io::AsyncReadExt;
    if nix::unistd::access(cmd, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(grokmirror_cli::usage(format!(
            "[remote] manifest_command {} is not an executable file",
            cmd.display()
        )));
    }
    info!(" manifest: executing {}", cmd.display());
    let what = cmd.display().to_string();
    let max = settings.manifest_max_bytes;
    let mut command = tokio::process::Command::new(cmd);
    if force {
        command.arg("--force");
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    // From here on, leaving early (an error, a timeout, our own shutdown)
    // kills whatever the command started.
    let mut group = crate::work::gitio::GroupKiller(child.id());
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr = tokio::spawn(crate::work::piped::read_head(stderr, KEPT_OUTPUT));
    let (tx, parser) = crate::work::piped::spawn_parser(max, &what, rules);
    let mut head: Vec<u8> = Vec::new();
    let mut total = 0u64;
    let run = async {
        let mut tx = Some(tx);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut buf).await.map_err(Overrun::Io)?;
            if n == 0 {
                break;
            }
            if total == 0 {
                on_new();
            }
            total += n as u64;
            if total > max {
                return Err(Overrun::TooMuch);
            }
            let room = KEPT_OUTPUT.saturating_sub(head.len()).min(n);
            head.extend_from_slice(&buf[..room]);
            // A parser that gave up (not JSON: an error message, say)
            // needs no more; the rest is still counted.
            if let Some(sender) = &tx {
                if sender.send(Ok(buf[..n].to_vec())).await.is_err() {
                    tx = None;
                }
            }
        }
        drop(tx);
        child.wait().await.map_err(Overrun::Io)
    };
    let status = match tokio::time::timeout(settings.manifest_timeout, run).await {
        Ok(Ok(status)) => status,
        Ok(Err(Overrun::TooMuch)) => {
            drop(group);
            bail!(
                "[remote] manifest_command {what} printed more than the [remote] \
                 manifest_max_bytes limit of {max} bytes; killed it (nothing was changed)"
            );
        }
        Ok(Err(Overrun::Io(e))) => {
            drop(group);
            bail!("cannot read the output of [remote] manifest_command {what}: {e}");
        }
        Err(_) => {
            drop(group);
            bail!(
                "[remote] manifest_command {what} ran for more than {}s, the [remote] \
                 manifest_timeout; killed it (nothing was changed)",
                settings.manifest_timeout.as_secs()
            );
        }
    };
    group.0 = None;
    let (err_head, err_total) = stderr.await.unwrap_or_default();
    let stderr = crate::work::piped::shown_output(&err_head, err_total);
    match status.code() {
        Some(0) => {
            let manifest = parser.await.context("the manifest parser panicked")??;
            Ok(Poll::Fetched {
                manifest: nonempty(manifest, &what)?,
                racy: false,
                state: None,
            })
        }
        Some(127) => {
            info!(" manifest: unchanged");
            Ok(Poll::Unchanged)
        }
        Some(1) => {
            let stdout = crate::work::piped::shown_output(&head, total);
            let why = [stdout, stderr]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" / ");
            bail!(
                "{} failed: {}",
                cmd.display(),
                if why.is_empty() { "exit 1" } else { &why }
            )
        }
        other => {
            // The protocol makes every other exit non-fatal: nothing to do.
            warn!(
                " manifest: executing {} returned {}{}",
                cmd.display(),
                other.map_or("a signal".to_string(), |c| c.to_string()),
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            );
            Ok(Poll::Unchanged)
        }
    }
}

/// Credentials for `host` from `$NETRC` or `~/.netrc`, as Python's requests
/// finds them (a `default` entry applies to every host).
pub(crate) fn netrc_credentials(host: &str) -> Option<(String, Option<String>)> {
    let path = match std::env::var_os("NETRC") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => grokmirror::config::expand_user("~/.netrc"),
    };
    let file = std::fs::File::open(&path).ok()?;
    let parsed = match netrc::Netrc::parse(std::io::BufReader::new(file)) {
        Ok(n) => n,
        Err(e) => {
            warn!("cannot parse {}: {e:?}; not using it", path.display());
            return None;
        }
    };
    let machine = parsed
        .hosts
        .iter()
        .find(|(h, _)| h == host)
        .map(|(_, m)| m)
        .or(parsed.default.as_ref())?;
    Some((machine.login.clone(), machine.password.clone()))
}

/// An HTTP client for talking to the origin. `idle` bounds every wait for
/// the origin: connecting, the answer, and each piece of the body (a
/// per-read timeout, so a large manifest on a slow link is fine as long as
/// bytes keep coming). Redirects are followed up to reqwest's limit of 10,
/// which stops a redirect loop.
pub(crate) fn client(idle: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(format!(
            "grokmirror/{} (grokmirror-rs {})",
            grokmirror::REFERENCE_VERSION,
            env!("CARGO_PKG_VERSION")
        ))
        .connect_timeout(CONNECT_TIMEOUT.min(idle))
        .read_timeout(idle)
        .build()
        .context("cannot set up the HTTP client")
}

/// Whether an HTTP failure is worth another try: the connection could not
/// be made, or the server said it had a problem.
fn retryable(err: &reqwest::Error) -> bool {
    err.is_connect() || err.status().is_some_and(|s| s.is_server_error())
}

/// GET the manifest. `None` on 304; otherwise the manifest, parsed as the
/// body arrives (which is capped at `max_bytes`, compressed and
/// decompressed), the Last-Modified time (0 when absent) and the server's
/// clock (its Date header; ours when absent).
pub(crate) async fn fetch_http(
    url: &str,
    since: Option<i64>,
    max_bytes: u64,
    idle: Duration,
    rules: &Rules,
    on_new: &(dyn Fn() + Send + Sync),
) -> anyhow::Result<Option<(RemoteManifest, i64, i64)>> {
    info!(" manifest: fetching {url}");
    let client = client(idle)?;
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("[remote] manifest {url} is not a valid URL"))?;
    let credentials = parsed.host_str().and_then(netrc_credentials);
    let mut attempt = 0;
    let response = loop {
        let mut req = client.get(parsed.clone());
        if let Some(secs) = since {
            let when = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
            let header = httpdate::fmt_http_date(when);
            debug!("If-Modified-Since: {header}");
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, header);
        }
        if let Some((login, password)) = &credentials {
            req = req.basic_auth(login, password.as_ref());
        }
        let result = req.send().await.and_then(|r| {
            if r.status().is_server_error() {
                r.error_for_status()
            } else {
                Ok(r)
            }
        });
        match result {
            Ok(r) => break r,
            Err(e) if retryable(&e) && attempt < RETRY_PAUSES.len() => {
                warn!(" manifest: {url}: {}; retrying", describe(&e));
                tokio::time::sleep(RETRY_PAUSES[attempt]).await;
                attempt += 1;
            }
            Err(e) => bail!(fetch_failure(url, &e, idle)),
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if status != reqwest::StatusCode::OK {
        bail!("cannot fetch remote manifest {url}: the server answered {status}");
    }
    on_new();
    let last_modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let server_now = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(unix_now, |d| d.as_secs() as i64);
    if last_modified == 0 {
        debug!("{url} sent no usable Last-Modified; the next run will fetch it again");
    }
    if let Some(len) = response.content_length() {
        if len > max_bytes {
            bail!("remote manifest {url} is {len} bytes, over the [remote] manifest_max_bytes limit of {max_bytes}");
        }
    }
    let (tx, parser) = crate::work::piped::spawn_parser(max_bytes, url, rules);
    let mut response = response;
    let mut total = 0u64;
    let pumped: anyhow::Result<()> = async {
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| anyhow!(fetch_failure(url, &e, idle)))?
        {
            total += chunk.len() as u64;
            if total > max_bytes {
                bail!("remote manifest {url} is over the [remote] manifest_max_bytes limit of {max_bytes} bytes");
            }
            if tx.send(Ok(chunk.to_vec())).await.is_err() {
                // The parser stopped early (its error is the answer).
                break;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = pumped {
        let _ = tx.send(Err(e.to_string())).await;
        drop(tx);
        let _ = parser.await;
        return Err(e);
    }
    drop(tx);
    let manifest = parser.await.context("the manifest parser panicked")??;
    Ok(Some((manifest, last_modified, server_now)))
}

/// The one line reporting a failed manifest fetch: what went wrong, and
/// for the failures an operator can act on, what to do.
fn fetch_failure(url: &str, err: &reqwest::Error, idle: Duration) -> String {
    if err.is_timeout() {
        format!(
            "cannot fetch remote manifest {url}: the origin sent nothing for {}s; check that it \
             is up, or raise [remote] manifest_timeout (nothing was changed)",
            idle.as_secs()
        )
    } else if err.is_redirect() {
        // reqwest's own text repeats the URL; its innermost cause is the
        // reason ("too many redirects").
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        format!(
            "cannot fetch remote manifest {url}: redirects that never end ({reason}); point \
             [remote] manifest at where the manifest really is (nothing was changed)"
        )
    } else {
        format!("cannot fetch remote manifest {url}: {}", describe(err))
    }
}

/// An HTTP error with its causes, on one line.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether the origin answers for its manifest at `url` within `limit`
/// (`--config-check`): one GET, with the replica's credentials, whose body
/// is not read. `Err` says what went wrong.
pub(crate) async fn probe_http(url: &str, limit: Duration) -> Result<(), String> {
    let client = client(limit).map_err(|e| format!("{e:#}"))?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
    let mut req = client.get(parsed.clone());
    if let Some((login, password)) = parsed.host_str().and_then(netrc_credentials) {
        req = req.basic_auth(login, password);
    }
    match tokio::time::timeout(limit, req.send()).await {
        Err(_) => Err(format!("no answer within {} seconds", limit.as_secs())),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok(r)) if r.status().is_success() => Ok(()),
        Ok(Ok(r)) => Err(format!("the origin answered {}", r.status())),
    }
}
