//! Publishing: one repository (and the object storage it borrows from) at
//! a time, then the manifest, then the bundles. The order inside a
//! repository is [`crate::plan`]'s; the status file records what went up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use grokmirror::git::Git;
use grokmirror::lock::{RepoLock, Wait};
use grokmirror::repo::alternates;
use grokmirror::tree::{Dir, Kind, Tree};
use sha1::{Digest as _, Sha1};
use tracing::{debug, info};

use crate::bucket::{Bucket, Caching};
use crate::plan::{self, ObjectFile};
use crate::settings::Settings;
use crate::snapshot::{self, Content, Taken};
use crate::status::{Published, Status};

/// What a run did, for its last log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Repositories whose files or lists went up.
    pub changed: usize,
    /// Repositories looked at and found published already.
    pub unchanged: usize,
    /// Files uploaded.
    pub files: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Files removed from the bucket.
    pub deleted: usize,
}

/// One publishing run.
pub struct Publisher<'a> {
    settings: &'a Settings,
    tree: &'a Tree,
    bucket: &'a Bucket,
    git: Git,
    /// What the status file says, updated as the run goes.
    pub status: Status,
    wait: Duration,
    /// What the run did so far.
    pub totals: Totals,
    /// The manifest keys of the repositories whose files or lists went up.
    pub changed_keys: Vec<String>,
}

/// Unix seconds now.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A repository opened under its lock, with where it goes in the bucket.
struct Held {
    dir: Dir,
    lock: RepoLock,
    bucket_path: String,
}

impl<'a> Publisher<'a> {
    /// A run over `tree` into `bucket`, starting from `status`.
    pub fn new(
        settings: &'a Settings,
        tree: &'a Tree,
        bucket: &'a Bucket,
        status: Status,
        wait: Duration,
    ) -> Publisher<'a> {
        Publisher {
            settings,
            tree,
            bucket,
            git: Git::from_env(),
            status,
            wait,
            totals: Totals::default(),
            changed_keys: Vec::new(),
        }
    }

    /// The bucket path of a repository at `path` below the top level.
    fn bucket_path_of(&self, path: &Path) -> anyhow::Result<String> {
        let rel = path
            .strip_prefix(self.tree.path())
            .ok()
            .or_else(|| {
                let real = std::fs::canonicalize(self.tree.path()).ok()?;
                let rel = path.strip_prefix(&real).ok()?.to_path_buf();
                Some(Box::leak(rel.into_boxed_path()))
            })
            .ok_or_else(|| {
                anyhow!(
                    "{} is outside the top level {}: only what is below it can be published \
                     (keep [core] objstore below [core] toplevel)",
                    path.display(),
                    self.tree.path().display()
                )
            })?;
        let rel = rel
            .to_str()
            .ok_or_else(|| anyhow!("{}: the path is not UTF-8", path.display()))?;
        Ok(plan::bucket_path(&self.settings.target.prefix, rel))
    }

    /// Lock and open the repository `raw` names.
    fn hold_named(&self, raw: &str) -> anyhow::Result<(String, Held)> {
        let key = self
            .tree
            .key(&grokmirror::tree::key::key_of_argument(
                self.tree.path(),
                raw,
            ))
            .map_err(|why| anyhow!("{raw}: {why}"))?;
        let parent = self
            .tree
            .parent_of(&key, false)
            .with_context(|| format!("{}: no such repository in the mirror", key.as_str()))?;
        if parent.kind_of(key.name())? != Some(Kind::Dir) {
            return Err(anyhow!(
                "{}: no such repository in the mirror",
                key.as_str()
            ));
        }
        let lock = parent
            .lock_entry(key.name(), Wait::UpTo(self.wait))
            .with_context(|| {
                format!(
                    "{}: its lock was held for longer than {:?} (grok-pull holds it while \
                     post_update_hook runs: run grok-publish as post_work_complete_hook)",
                    key.as_str(),
                    self.wait
                )
            })?
            .ok_or_else(|| anyhow!("{}: still locked; try again later", key.as_str()))?;
        let dir = parent.open_dir(key.name())?;
        if !grokmirror::repo::is_bare_repo(&dir.io_path()) {
            return Err(anyhow!(
                "{}: {} is not a bare repository",
                key.as_str(),
                dir.shown().display()
            ));
        }
        let bucket_path = plan::bucket_path(&self.settings.target.prefix, key.as_str());
        Ok((
            key.as_str().to_string(),
            Held {
                dir,
                lock,
                bucket_path,
            },
        ))
    }

    /// Lock and open the repository `held` borrows objects from, if any.
    fn hold_lender(&self, held: &Held) -> anyhow::Result<Option<Held>> {
        let Some(lender) = alternates::lender(&held.dir.io_path()) else {
            return Ok(None);
        };
        let bucket_path = self.bucket_path_of(&lender)?;
        let lock = self
            .tree
            .lock_repo(&lender, Wait::UpTo(self.wait))
            .with_context(|| format!("cannot lock {}", lender.display()))?
            .ok_or_else(|| anyhow!("{}: still locked; try again later", lender.display()))?;
        let dir = self
            .tree
            .pin(&lender)
            .with_context(|| format!("{} is not in the mirror", lender.display()))?;
        if alternates::lender(&dir.io_path()).is_some() {
            return Err(anyhow!(
                "{} borrows objects from {}, which borrows from another: \
                 chains of lenders are not published",
                held.dir.shown().display(),
                lender.display()
            ));
        }
        Ok(Some(Held {
            dir,
            lock,
            bucket_path,
        }))
    }

    /// Whether the repository of manifest key `key` may have changed
    /// since it was published: its recorded fingerprint (what grok-pull
    /// wrote after its last fetch) is not the one the bucket lists, or
    /// either is unknown. Reads one small file; sends nothing.
    pub fn may_have_changed(&self, key: &str) -> bool {
        let bucket_path = plan::bucket_path(&self.settings.target.prefix, key);
        let Some(published) = self.status.repos.get(&bucket_path) else {
            return true;
        };
        let Ok(key) = self.tree.key(key) else {
            return true;
        };
        let recorded = self
            .tree
            .parent_of(&key, false)
            .and_then(|parent| parent.open_dir(key.name()))
            .ok()
            .and_then(|dir| grokmirror::repo::read_fingerprint_in(&dir));
        recorded.as_deref() != Some(published.fingerprint.as_str())
    }

    /// Publish the repository `raw` names (a manifest key or its full
    /// path), after the object storage it borrows from.
    pub fn publish_repo(&mut self, raw: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let (key, member) = self.hold_named(raw)?;
        let lender = self.hold_lender(&member)?;
        // What the bucket holds: listed while the locks are held, since the
        // snapshot decides from it what to read.
        let member_remote = self.bucket.list(&member.bucket_path)?;
        let lender_remote = match &lender {
            Some(l) => Some(self.bucket.list(&l.bucket_path)?),
            None => None,
        };
        let member_taken =
            snapshot::take(&self.git, &member.dir, &member.lock, &member_remote, true)?;
        let lender_taken = match (&lender, &lender_remote) {
            (Some(l), Some(remote)) => {
                let with_refs = !grokmirror::repo::is_objstore_repo(&l.dir.io_path());
                Some(snapshot::take(
                    &self.git, &l.dir, &l.lock, remote, with_refs,
                )?)
            }
            _ => None,
        };
        // Everything needed is open or read: other programs may go on.
        let member_path = member.bucket_path.clone();
        let member_shown = member.dir.shown().to_path_buf();
        let lender_paths = lender
            .as_ref()
            .map(|l| (l.bucket_path.clone(), l.dir.shown().to_path_buf()));
        drop(lender);
        drop(member);
        let before = self.totals;
        if let (Some((path, shown)), Some(taken), Some(remote)) =
            (lender_paths.as_ref(), lender_taken, lender_remote)
        {
            self.upload(path, shown, taken, &remote, None)?;
        }
        let alternates = lender_paths
            .as_ref()
            .map(|(lender, _)| plan::http_alternates(&member_path, lender));
        self.upload(
            &member_path,
            &member_shown,
            member_taken,
            &member_remote,
            alternates,
        )?;
        let sent = self.totals.bytes - before.bytes;
        if self.totals.files > before.files || self.totals.deleted > before.deleted {
            self.totals.changed += 1;
            self.changed_keys.push(key.clone());
            info!(
                "{key}: published to s3://{}/{member_path}: {} files, {:.1} KiB, {} removed, in {} ms",
                self.settings.target.bucket,
                self.totals.files - before.files,
                sent as f64 / 1024.0,
                self.totals.deleted - before.deleted,
                started.elapsed().as_millis()
            );
        } else {
            self.totals.unchanged += 1;
            debug!("{key}: already published");
        }
        Ok(())
    }

    /// Upload what `remote` lacks of `taken`, then its lists (when they
    /// changed or are missing), then expire what it no longer lists.
    fn upload(
        &mut self,
        bucket_path: &str,
        shown: &Path,
        taken: Taken,
        remote: &BTreeMap<String, u64>,
        alternates: Option<String>,
    ) -> anyhow::Result<()> {
        let Taken {
            refs,
            head,
            packs,
            files,
        } = taken;
        let listed: Vec<ObjectFile> = files.iter().map(|(f, _)| f.clone()).collect();
        let mut contents: BTreeMap<String, Content> =
            files.into_iter().map(|(f, c)| (f.rel, c)).collect();
        for file in plan::missing_object_files(&listed, remote) {
            let key = format!("{bucket_path}/{}", file.rel);
            let shown_file = shown.join(&file.rel).display().to_string();
            match contents.remove(&file.rel) {
                Some(Content::Open(mut f)) => {
                    self.bucket
                        .put_reader(&key, &mut f, file.size, &shown_file)?
                }
                Some(Content::Read(data)) => self.bucket.put_bytes(
                    &key,
                    data,
                    Caching::Immutable,
                    "application/octet-stream",
                )?,
                // Taken as there by the snapshot, from the same listing.
                Some(Content::There) | None => continue,
            }
            debug!("sent {key}: {} bytes", file.size);
            self.totals.files += 1;
            self.totals.bytes += file.size;
        }
        let with_refs = !refs.is_empty() || !head.is_empty();
        let mut lists: Vec<(&str, Vec<u8>)> =
            vec![(plan::INFO_PACKS, plan::info_packs(&packs).into_bytes())];
        if let Some(alt) = alternates {
            lists.push((plan::HTTP_ALTERNATES, alt.into_bytes()));
        }
        if with_refs {
            lists.push((plan::INFO_REFS, plan::info_refs(&refs).into_bytes()));
            lists.push((plan::HEAD, head));
        }
        let digest = {
            let mut h = Sha1::new();
            for (name, data) in &lists {
                h.update(name.as_bytes());
                h.update([0]);
                h.update(data);
                h.update([0]);
            }
            hex::encode(h.finalize())
        };
        let fingerprint = grokmirror::repo::refs::fingerprint_of_show_ref(
            &plan::show_ref_text(&refs),
            &grokmirror::config::glob::GlobList::new([]),
        )
        .unwrap_or_default();
        let known = self.status.repos.get(bucket_path);
        let all_there = lists.iter().all(|(name, _)| remote.contains_key(*name));
        if known.map(|k| k.lists.as_str()) != Some(digest.as_str()) || !all_there {
            for (name, data) in lists {
                let size = data.len() as u64;
                let key = format!("{bucket_path}/{name}");
                self.bucket.put_bytes(
                    &key,
                    data,
                    Caching::Revalidate,
                    "text/plain; charset=utf-8",
                )?;
                debug!("sent {key}: {size} bytes");
                self.totals.files += 1;
                self.totals.bytes += size;
            }
        }
        self.status.repos.insert(
            bucket_path.to_string(),
            Published {
                fingerprint,
                lists: digest,
            },
        );
        self.expire(bucket_path, remote, &listed)
    }

    /// Remove the object files of `bucket_path` that it stopped listing
    /// more than the grace ago; remember when the others were first seen.
    fn expire(
        &mut self,
        bucket_path: &str,
        remote: &BTreeMap<String, u64>,
        listed: &[ObjectFile],
    ) -> anyhow::Result<()> {
        let prefix = format!("{bucket_path}/");
        let pending: BTreeMap<String, i64> = self
            .status
            .unlisted
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k[prefix.len()..].to_string(), *v))
            .collect();
        let local: BTreeSet<&str> = listed.iter().map(|f| f.rel.as_str()).collect();
        let verdict = plan::expire(
            remote,
            &local,
            &pending,
            now(),
            self.settings.grace.as_secs() as i64,
        );
        for rel in pending.keys() {
            self.status.unlisted.remove(&format!("{prefix}{rel}"));
        }
        for rel in &verdict.delete {
            self.bucket.delete(&format!("{prefix}{rel}"))?;
            self.totals.deleted += 1;
        }
        for (rel, since) in verdict.pending {
            self.status.unlisted.insert(format!("{prefix}{rel}"), since);
        }
        Ok(())
    }

    /// Upload the local manifest, keeping the repositories published so
    /// far, each with the fingerprint of the refs the bucket lists, when it
    /// differs from what was uploaded last. Whether it went up.
    pub fn publish_manifest(&mut self) -> anyhow::Result<bool> {
        let path = &self.settings.manifest;
        let mut manifest = grokmirror::formats::manifest::Manifest::read(path)?
            .ok_or_else(|| anyhow!("the local manifest {} does not exist", path.display()))?;
        let prefix = &self.settings.target.prefix;
        manifest.repos.retain(|key, entry| {
            match self.status.repos.get(&plan::bucket_path(prefix, key)) {
                Some(published) => {
                    if !published.fingerprint.is_empty() {
                        entry.fingerprint = Some(published.fingerprint.clone());
                    }
                    true
                }
                None => false,
            }
        });
        let json = manifest.to_json(false);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        std::io::Write::write_all(&mut gz, json.as_bytes()).expect("writing to memory");
        let data = gz.finish().expect("writing to memory");
        let digest = hex::encode(Sha1::digest(&data));
        if digest == self.status.manifest {
            return Ok(false);
        }
        let name = manifest_name(path);
        let key = plan::bucket_path(prefix, &name);
        let size = data.len() as u64;
        self.bucket
            .put_bytes(&key, data, Caching::Revalidate, "application/gzip")?;
        self.totals.files += 1;
        self.totals.bytes += size;
        self.status.manifest = digest;
        info!(
            "manifest: {} repositories published as s3://{}/{key}",
            manifest.repos.len(),
            self.settings.target.bucket
        );
        Ok(true)
    }
}

/// The manifest's name in the bucket: the local one's, `.gz` added when
/// missing (the bucket copy is always gzip).
pub fn manifest_name(local: &Path) -> String {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest.js.gz".into());
    if name.ends_with(".gz") {
        name
    } else {
        format!("{name}.gz")
    }
}

/// The repositories a full run publishes: every key of the local
/// manifest.
pub fn manifest_keys(manifest: &Path) -> anyhow::Result<Vec<String>> {
    let m = grokmirror::formats::manifest::Manifest::read(manifest)?
        .ok_or_else(|| anyhow!("the local manifest {} does not exist", manifest.display()))?;
    Ok(m.repos.into_keys().collect())
}
