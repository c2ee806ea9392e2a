//! grok-publish (ours): a grokmirror tree published to an S3-compatible
//! bucket, as trees git's dumb HTTP protocol reads, with the manifest and
//! grok-bundle's bundles, so replicas, CDNs and `git clone` can all read
//! the mirror from object storage.
//!
//! A run takes the status file's lock (runs take turns), then publishes
//! each repository named (all of the manifest when none is): under the
//! repository's lock, and its object storage's, it reads the refs and
//! opens the object files the bucket lacks ([`snapshot`]); without the
//! locks it uploads them in the order of [`plan`] (objects, then the
//! lists, then refs), so a reader never sees a ref it cannot fetch. Files
//! the repository no longer lists stay for `[fsck] consumer_grace`
//! ([`status`] remembers since when). Then the manifest goes up, listing
//! what the bucket holds, and the bundles ([`bundles`]).

pub mod bucket;
pub mod bundles;
pub mod check;
pub mod cli;
pub mod plan;
pub mod settings;
pub mod snapshot;
pub mod status;
pub mod work;

use std::io::{BufRead as _, Read as _};

use anyhow::Context as _;
use clap::Parser;
use grokmirror::config::Config;
use grokmirror::tree::{Reserved, Tree};
use tracing::{error, info};

pub use cli::Cli;

/// The most repository paths read from standard input.
pub const MAX_STDIN_REPOS: usize = 100_000;
/// The longest line read from standard input.
const MAX_STDIN_LINE: usize = 4096 + 2;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-publish", || run(&cli))
}

/// The repository paths on standard input, bounded in number and length.
fn stdin_repos() -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_STDIN_LINE as u64)
            .read_until(b'\n', &mut line)
            .context("cannot read repository paths from standard input")?;
        if n == 0 {
            break;
        }
        if n == MAX_STDIN_LINE && !line.ends_with(b"\n") {
            anyhow::bail!("a line of standard input is longer than {MAX_STDIN_LINE} bytes; give one repository path per line");
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        if !text.is_empty() {
            out.push(text);
        }
        if out.len() > MAX_STDIN_REPOS {
            anyhow::bail!("more than {MAX_STDIN_REPOS} repository paths on standard input");
        }
    }
    Ok(out)
}

/// Tell `[publish] notify_peers` that `keys` changed in the bucket (best
/// effort: a peer that fails is logged, the run does not fail for it).
fn notify(
    peers: &grokmirror_notify::downstream::Downstream,
    keys: Vec<String>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the notification runtime")?
        .block_on(peers.notify(keys));
    Ok(())
}

/// Run grok-publish with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    let config = Config::load(&cli.config)?;
    let _log = grokmirror_cli::init_logging(
        "publish",
        cli.verbose,
        config.core.log.clone(),
        config.core.loglevel,
    )?;
    let s = settings::Settings::from_config(&config)
        .map_err(|e| grokmirror_cli::usage(e.to_string()))?;
    let credentials = settings::credentials(&s.profile, &settings::credentials_file())
        .map_err(|e| grokmirror_cli::usage(e.to_string()))?;
    // Loaded first, so a missing secret stops the run before anything is sent.
    let peers = match (&s.notify_secret_file, s.notify_peers.is_empty()) {
        (Some(path), false) => {
            let secret = grokmirror_notify::Secret::load(path)
                .map_err(|e| grokmirror_cli::usage(e.to_string()))?;
            Some(grokmirror_notify::downstream::Downstream::new(
                &s.notify_peers,
                secret,
            )?)
        }
        _ => None,
    };
    let mut repos = cli.repos.clone();
    if cli.stdin {
        repos.extend(stdin_repos()?);
    }
    // Without names, the manifest's repositories: those that changed since
    // they were published, or with --full all of them, compared with the
    // bucket.
    let whole_manifest = repos.is_empty() && !cli.stdin;
    if whole_manifest {
        repos = work::manifest_keys(&s.manifest)?;
    }
    let tree = Tree::open(&s.toplevel, Reserved::from_config(&config))
        .with_context(|| format!("cannot open the toplevel {}", s.toplevel.display()))?;
    let bucket = bucket::Bucket::open(
        &s.target.bucket,
        s.endpoint.as_deref(),
        &s.region,
        &credentials,
    )?;
    let guard = status::lock(&s.statusfile, cli.wait)?.ok_or_else(|| {
        anyhow::anyhow!(
            "another grok-publish still holds {} after {:?}",
            s.statusfile.display(),
            cli.wait
        )
    })?;
    let started = std::time::Instant::now();
    let mut publisher = work::Publisher::new(
        &s,
        &tree,
        &bucket,
        status::Status::read(&s.statusfile)?,
        cli.wait,
    );
    let mut failed = 0;
    for (n, raw) in repos.iter().enumerate() {
        if whole_manifest && !cli.full && !publisher.may_have_changed(raw) {
            publisher.totals.unchanged += 1;
            continue;
        }
        if let Err(e) = publisher.publish_repo(raw) {
            error!("{e:#}");
            failed += 1;
        }
        // Now and then, so an interrupted full run keeps what it learned.
        if n % 100 == 99 {
            publisher.status.write(&s.statusfile, &guard)?;
        }
    }
    let manifest = publisher.publish_manifest();
    if let Err(e) = &manifest {
        error!("manifest: {e:#}");
        failed += 1;
    }
    if let Some(outdir) = &s.bundles {
        let mut known = std::mem::take(&mut publisher.status.bundles);
        match bundles::publish(&bucket, &s.target.prefix, outdir, &mut known) {
            Ok((files, bytes)) => {
                publisher.totals.files += files;
                publisher.totals.bytes += bytes;
            }
            Err(e) => {
                error!("bundles: {e:#}");
                failed += 1;
            }
        }
        publisher.status.bundles = known;
    }
    publisher.status.write(&s.statusfile, &guard)?;
    if let (Some(peers), true) = (&peers, manifest.is_ok()) {
        if !publisher.changed_keys.is_empty() {
            notify(peers, std::mem::take(&mut publisher.changed_keys))?;
        }
    }
    let t = publisher.totals;
    info!(
        "published {} repositories ({} unchanged, {} failed) to s3://{}/{}: {} files, {:.1} KiB, {} removed, in {} ms",
        t.changed,
        t.unchanged,
        failed,
        s.target.bucket,
        s.target.prefix,
        t.files,
        t.bytes as f64 / 1024.0,
        t.deleted,
        started.elapsed().as_millis()
    );
    Ok(if failed > 0 {
        grokmirror_cli::EXIT_FAILURE
    } else {
        grokmirror_cli::EXIT_OK
    })
}
