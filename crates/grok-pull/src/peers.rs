//! The other shards' manifests (`[pull] shard_peers`): a repository that
//! left this replica's shard is purged only once the shard that now holds
//! it lists it. They are read like the origin's manifest (bounded, every
//! entry validated, [`grokmirror::formats::remote_manifest`]), and only
//! those of the shards that repositories we hold moved to.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use grokmirror::formats::manifest::{decoding_reader, Manifest};
use grokmirror::formats::remote_manifest::{self, RemoteManifest, Rules};
use tracing::{info, warn};

use crate::plan::PeerListings;
use crate::settings::Settings;

/// The shards whose manifests are worth reading: those that repositories
/// in our local manifest moved to.
pub fn needed(elsewhere: &BTreeMap<String, u32>, local: &Manifest) -> BTreeSet<u32> {
    elsewhere
        .iter()
        .filter(|(key, _)| local.repos.contains_key(*key))
        .map(|(_, owner)| *owner)
        .collect()
}

/// Read the manifests of the shards in `needed`; a shard whose manifest
/// cannot be read is left out (one warning line says so), and what moved
/// to it is kept.
pub async fn read(settings: &Settings, rules: &Rules, needed: &BTreeSet<u32>) -> PeerListings {
    let mut listings = PeerListings::new();
    if settings.shard_peers.is_empty() {
        return listings;
    }
    for shard in needed {
        let Some(url) = settings.shard_peers.get(*shard as usize) else {
            continue;
        };
        match read_one(settings, url, rules).await {
            Ok(m) => {
                info!(
                    "    shard: shard {shard}'s manifest {url} lists {} repositories",
                    m.repos.len()
                );
                listings.insert(*shard, m.repos.into_keys().collect());
            }
            Err(e) => warn!(
                "    shard: cannot read shard {shard}'s manifest: {e:#}; keeping the repositories \
                 that moved to it"
            ),
        }
    }
    listings
}

/// One peer manifest, from `http(s)://` or `file://`.
async fn read_one(settings: &Settings, url: &str, rules: &Rules) -> anyhow::Result<RemoteManifest> {
    let max = settings.manifest_max_bytes;
    if let Some(path) = url.strip_prefix("file://") {
        let path = std::path::PathBuf::from(path);
        let (what, rules) = (url.to_string(), rules.clone());
        return tokio::task::spawn_blocking(move || -> anyhow::Result<RemoteManifest> {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let len = file.metadata()?.len();
            if len > max {
                bail!("{what} is {len} bytes, over the [remote] manifest_max_bytes limit of {max}");
            }
            let reader = decoding_reader(file, Some(max), &what)?;
            Ok(remote_manifest::parse_untrusted_reader(
                reader, &what, &rules,
            )?)
        })
        .await
        .context("the manifest parser panicked")?;
    }
    match crate::source::fetch_http(url, None, max, settings.manifest_timeout, rules, &|| {})
        .await?
    {
        Some((m, _, _)) => Ok(m),
        None => bail!("{url} answered 304 Not Modified to a request without If-Modified-Since"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::formats::manifest::RepoEntry;

    #[test]
    fn only_shards_our_repositories_moved_to() {
        let elsewhere: BTreeMap<String, u32> = [
            ("/held.git".to_string(), 2),
            ("/never-here.git".to_string(), 1),
        ]
        .into();
        let mut local = Manifest::default();
        local
            .repos
            .insert("/held.git".to_string(), RepoEntry::default());
        assert_eq!(needed(&elsewhere, &local), [2].into());
        let peers: PeerListings = [(2, ["/held.git".to_string()].into())].into();
        assert!(crate::plan::awaiting_owner(&elsewhere, &peers)
            .iter()
            .eq(["/never-here.git"]));
        assert_eq!(
            crate::plan::awaiting_owner(&elsewhere, &PeerListings::new()).len(),
            2
        );
    }
}
