//! The bucket, through the `object_store` crate's S3 client (signing,
//! retries, multipart uploads), behind a blocking interface: publishing is
//! a sequence whose order matters, so each call returns when the store
//! has the object.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use crate::settings::Credentials;

/// Files up to this size go up in one request; larger ones in parts.
pub const SINGLE_PUT_MAX: u64 = 32 * 1024 * 1024;
/// The size of each part of a multipart upload.
pub const PART_SIZE: usize = 16 * 1024 * 1024;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most keys one listing returns before it is refused (a repository
/// with more object files than this needs a repack first).
pub const MAX_LISTED: usize = 1_000_000;

/// A request to the bucket that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client could not be built from the settings.
    #[error(
        "cannot use the bucket s3://{bucket}: {cause}; check [publish] bucket, endpoint and region"
    )]
    Setup {
        /// The bucket.
        bucket: String,
        /// Why.
        cause: Box<object_store::Error>,
    },
    /// The key is not one the store can name.
    #[error("cannot name {key:?} in the bucket: {cause}")]
    Key {
        /// The key.
        key: String,
        /// Why.
        cause: object_store::path::Error,
    },
    /// A request failed (after the client's retries).
    #[error("{what} s3://{bucket}/{key} failed: {cause}")]
    Request {
        /// What was asked.
        what: &'static str,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Why (boxed: the store's errors are large).
        cause: Box<object_store::Error>,
    },
    /// A local file could not be read while uploading it.
    #[error("cannot read {path} to upload it: {cause}")]
    ReadLocal {
        /// What was read.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// A listing had more keys than [`MAX_LISTED`].
    #[error("s3://{bucket}/{prefix} holds more than {MAX_LISTED} keys; repack the repository")]
    TooMany {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },
}

/// How long readers and CDNs may keep a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Named by its content (packs, loose objects): kept for a year.
    Immutable,
    /// Lists and the manifest: revalidated every time.
    Revalidate,
}

/// The bucket, opened.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    name: String,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket(s3://{})", self.name)
    }
}

impl Bucket {
    /// A client for `bucket` at `endpoint` (Amazon's when `None`).
    pub fn open(
        bucket: &str,
        endpoint: Option<&str>,
        region: &str,
        credentials: &Credentials,
    ) -> Result<Bucket, Error> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(CONNECT_TIMEOUT)
                    .with_user_agent(
                        format!("grok-publish/{}", env!("CARGO_PKG_VERSION"))
                            .parse()
                            .expect("a valid header value"),
                    ),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 5,
                retry_timeout: Duration::from_secs(120),
            });
        if let Some(token) = &credentials.session_token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = endpoint {
            // Named by the operator, so plain HTTP is what they asked for.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|cause| Error::Setup {
            bucket: bucket.to_string(),
            cause: Box::new(cause),
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        Ok(Bucket {
            store: Arc::new(store),
            name: bucket.to_string(),
            runtime,
        })
    }

    fn path(&self, key: &str) -> Result<StorePath, Error> {
        StorePath::parse(key).map_err(|cause| Error::Key {
            key: key.to_string(),
            cause,
        })
    }

    fn failed(&self, what: &'static str, key: &str, cause: object_store::Error) -> Error {
        Error::Request {
            what,
            bucket: self.name.clone(),
            key: key.to_string(),
            cause: Box::new(cause),
        }
    }

    /// Every key below `prefix/` and its size, the prefix taken off.
    pub fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>, Error> {
        let path = self.path(prefix)?;
        self.runtime.block_on(async {
            let mut stream = self.store.list(Some(&path));
            let mut out = BTreeMap::new();
            let strip = format!("{}/", path.as_ref());
            while let Some(item) = stream.next().await {
                let meta = item.map_err(|e| self.failed("listing", prefix, e))?;
                let key = meta.location.as_ref();
                if let Some(rel) = key.strip_prefix(&strip) {
                    out.insert(rel.to_string(), meta.size);
                }
                if out.len() > MAX_LISTED {
                    return Err(Error::TooMany {
                        bucket: self.name.clone(),
                        prefix: prefix.to_string(),
                    });
                }
            }
            Ok(out)
        })
    }

    fn options(caching: Caching, content_type: &'static str) -> PutOptions {
        let cache = match caching {
            Caching::Immutable => "public, max-age=31536000, immutable",
            Caching::Revalidate => "no-cache",
        };
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::CacheControl, cache.into());
        attributes.insert(Attribute::ContentType, content_type.into());
        PutOptions {
            attributes,
            ..Default::default()
        }
    }

    /// Upload `data` as `key`.
    pub fn put_bytes(
        &self,
        key: &str,
        data: Vec<u8>,
        caching: Caching,
        content_type: &'static str,
    ) -> Result<(), Error> {
        let path = self.path(key)?;
        self.runtime
            .block_on(self.store.put_opts(
                &path,
                PutPayload::from(data),
                Self::options(caching, content_type),
            ))
            .map_err(|e| self.failed("uploading", key, e))?;
        Ok(())
    }

    /// Upload `size` bytes read from `source` (shown as `shown` in
    /// errors) as `key`: in one request when small, in parts otherwise,
    /// so a pack of any size is never held in memory whole.
    pub fn put_reader(
        &self,
        key: &str,
        source: &mut dyn Read,
        size: u64,
        shown: &str,
    ) -> Result<(), Error> {
        let read_err = |cause| Error::ReadLocal {
            path: shown.to_string(),
            cause,
        };
        if size <= SINGLE_PUT_MAX {
            let mut data = Vec::with_capacity(size as usize);
            source.read_to_end(&mut data).map_err(read_err)?;
            return self.put_bytes(key, data, Caching::Immutable, "application/octet-stream");
        }
        let path = self.path(key)?;
        self.runtime.block_on(async {
            let upload = self
                .store
                .put_multipart_opts(
                    &path,
                    PutMultipartOptions {
                        attributes: Self::options(Caching::Immutable, "application/octet-stream")
                            .attributes,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| self.failed("starting the upload of", key, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buf = vec![0u8; PART_SIZE];
            loop {
                let n = source.read(&mut buf).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                // At most a couple of parts in flight at once.
                writer
                    .wait_for_capacity(2)
                    .await
                    .map_err(|e| self.failed("uploading", key, e))?;
                writer.write(&buf[..n]);
            }
            writer
                .finish()
                .await
                .map_err(|e| self.failed("finishing the upload of", key, e))?;
            Ok(())
        })
    }

    /// Remove `key` (gone already is fine).
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("deleting", key, e)),
        }
    }
}
