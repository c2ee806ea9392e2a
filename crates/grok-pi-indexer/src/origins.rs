//! Where an inbox's settings come from: the `refs/meta/origins` file `i`
//! that lore-style origins keep in the epochs (the newest epoch first), or
//! else the config the origin serves over HTTP. Both are untrusted and
//! read up to [`MAX_ORIGINS_BYTES`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use grokmirror::git::Git;
use tracing::debug;

use crate::plan::MAX_ORIGINS_BYTES;

/// The blob holding an inbox's config in its epochs.
const ORIGINS_BLOB: &str = "refs/meta/origins:i";
/// How long the origin may take to answer, and between pieces of the body.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the origin's config could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The blob in an epoch is too big.
    #[error("{ORIGINS_BLOB} in {} is larger than {MAX_ORIGINS_BYTES} bytes", .0.display())]
    BlobTooBig(PathBuf),
    /// Not UTF-8 text.
    #[error("{0} is not UTF-8 text")]
    NotText(String),
    /// The HTTP request failed.
    #[error("cannot get {url}: {why}")]
    Http {
        /// What was asked for.
        url: String,
        /// Why it failed.
        why: String,
    },
}

/// The config in `refs/meta/origins:i` of the newest epoch that has one.
pub fn from_epochs(git: &Git, epochs: &[PathBuf]) -> Result<Option<String>, Error> {
    for epoch in epochs.iter().rev() {
        let Some(size) = blob_size(git, epoch) else {
            continue;
        };
        if size > MAX_ORIGINS_BYTES as u64 {
            return Err(Error::BlobTooBig(epoch.clone()));
        }
        let Ok(out) = git.run(Some(epoch), ["cat-file", "blob", ORIGINS_BLOB]) else {
            continue;
        };
        if !out.success() {
            continue;
        }
        let text = String::from_utf8(out.stdout)
            .map_err(|_| Error::NotText(format!("{ORIGINS_BLOB} in {}", epoch.display())))?;
        debug!("origins of {} from {ORIGINS_BLOB}", epoch.display());
        return Ok(Some(text));
    }
    Ok(None)
}

fn blob_size(git: &Git, epoch: &Path) -> Option<u64> {
    let out = git
        .run(Some(epoch), ["cat-file", "-s", ORIGINS_BLOB])
        .ok()?;
    if !out.success() {
        return None;
    }
    out.stdout_str().trim().parse().ok()
}

/// GET `url`, at most [`MAX_ORIGINS_BYTES`] of UTF-8 text.
pub fn from_http(url: &str) -> Result<String, Error> {
    let failed = |why: String| Error::Http {
        url: url.to_string(),
        why,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let body = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "grok-pi-indexer (grokmirror-rs ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .connect_timeout(HTTP_TIMEOUT)
            .read_timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let mut response = client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| failed(e.to_string()))?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ORIGINS_BYTES {
                return Err(failed(format!(
                    "the answer is larger than {MAX_ORIGINS_BYTES} bytes"
                )));
            }
        }
        Ok(body)
    })?;
    String::from_utf8(body).map_err(|_| Error::NotText(url.to_string()))
}
