//! `[core]`, `[publish]` and `[fsck] consumer_grace` resolved once into
//! typed settings; the credentials from the environment or the shared
//! credentials file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use grokmirror::config::{self, Config};

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value of the config file is wrong.
    #[error("config file {path}: [{section}] {key} = {value:?}: {why}")]
    Bad {
        /// The config file.
        path: PathBuf,
        /// Its section.
        section: &'static str,
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// The config file does not interpolate.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// No credentials anywhere.
    #[error(
        "no credentials for the bucket: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
         give profile {profile:?} aws_access_key_id and aws_secret_access_key in {file}"
    )]
    NoCredentials {
        /// The profile looked for.
        profile: String,
        /// The credentials file looked in.
        file: PathBuf,
    },
    /// The credentials file does not parse.
    #[error("the credentials file {file} does not parse: {cause}; fix it")]
    CredentialsFile {
        /// The file.
        file: PathBuf,
        /// Why.
        cause: config::ini::Error,
    },
}

/// Keys for the bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, not even in a debug log.
        write!(f, "Credentials({})", self.access_key_id)
    }
}

/// Where things go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The bucket's name.
    pub bucket: String,
    /// The prefix inside it, without slashes at either end.
    pub prefix: String,
}

/// `s3://BUCKET[/PREFIX]` into its parts; why not, when it is not one.
pub fn parse_bucket_url(url: &str) -> Result<Target, String> {
    let rest = url
        .trim()
        .strip_prefix("s3://")
        .ok_or("use s3://BUCKET or s3://BUCKET/PREFIX")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !valid {
        return Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lower-case letters, digits, dots and dashes)"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix
        .split('/')
        .any(|c| c == "." || c == ".." || (c.is_empty() && !prefix.is_empty()))
    {
        return Err(format!("the prefix {prefix:?} has an empty, . or .. part"));
    }
    Ok(Target {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The top level.
    pub toplevel: PathBuf,
    /// The local manifest.
    pub manifest: PathBuf,
    /// The bucket and prefix.
    pub target: Target,
    /// The S3 endpoint, when not Amazon's.
    pub endpoint: Option<String>,
    /// The signing region.
    pub region: String,
    /// The profile of the credentials file.
    pub profile: String,
    /// The status file.
    pub statusfile: PathBuf,
    /// grok-bundle's output directory, when bundles are published.
    pub bundles: Option<PathBuf>,
    /// How long an unlisted object file stays in the bucket.
    pub grace: Duration,
    /// The replicas told what changed in the bucket.
    pub notify_peers: Vec<String>,
    /// The secret that signs what they are told (`[pull] notify_secret_file`).
    pub notify_secret_file: Option<PathBuf>,
}

impl Settings {
    /// Resolve the settings from the loaded config.
    pub fn from_config(config: &Config) -> Result<Settings, Error> {
        let bad = |key: &'static str, value: String, why: String| Error::Bad {
            path: config.path.clone(),
            section: "publish",
            key,
            value,
            why,
        };
        let url = config.get_or("publish", "bucket", "")?;
        if url.trim().is_empty() {
            return Err(bad(
                "bucket",
                url,
                "grok-publish needs a bucket; set bucket = s3://BUCKET[/PREFIX] in [publish]"
                    .into(),
            ));
        }
        let target = parse_bucket_url(&url).map_err(|why| bad("bucket", url.clone(), why))?;
        let endpoint = config.get_or("publish", "endpoint", "")?;
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        let is_url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !endpoint.is_empty() && !is_url {
            return Err(bad(
                "endpoint",
                endpoint,
                "use an http:// or https:// URL".into(),
            ));
        }
        let profile = match config.get_or("publish", "profile", "")?.trim() {
            "" => std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into()),
            p => p.to_string(),
        };
        let grace_raw = config.get_or("fsck", "consumer_grace", "14d")?;
        let grace =
            grokmirror::formats::freshness::parse_duration(&grace_raw).ok_or_else(|| {
                Error::Bad {
                    path: config.path.clone(),
                    section: "fsck",
                    key: "consumer_grace",
                    value: grace_raw.clone(),
                    why: "a number of seconds, or a number with s, m, h, d or w (14d)".into(),
                }
            })?;
        let notify_peers = grokmirror_notify::downstream::parse_urls(&config.get_or(
            "publish",
            "notify_peers",
            "",
        )?);
        if let Some(url) = grokmirror_notify::downstream::bad_url(&notify_peers) {
            return Err(bad(
                "notify_peers",
                url.to_string(),
                "use the http:// or https:// URL of a replica's [pull] notify_listen".into(),
            ));
        }
        let notify_secret_file = config.get_path("pull", "notify_secret_file")?;
        if !notify_peers.is_empty() && notify_secret_file.is_none() {
            return Err(bad(
                "notify_peers",
                notify_peers.join(" "),
                "notifications are signed: set [pull] notify_secret_file too".into(),
            ));
        }
        let statusfile = config
            .get_path("publish", "statusfile")?
            .unwrap_or_else(|| config.core.toplevel.join(".grok-publish.status"));
        Ok(Settings {
            toplevel: config.core.toplevel.clone(),
            manifest: config.core.manifest.clone(),
            target,
            endpoint: (!endpoint.is_empty()).then_some(endpoint),
            region: match config.get_or("publish", "region", "us-east-1")?.trim() {
                "" => "us-east-1".to_string(),
                r => r.to_string(),
            },
            profile,
            statusfile,
            bundles: config.get_path("publish", "bundles")?,
            grace,
            notify_peers,
            notify_secret_file,
        })
    }
}

/// The shared credentials file: `$AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`.
pub fn credentials_file() -> PathBuf {
    std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| config::expand_user("~/.aws/credentials"))
}

/// The credentials: from the environment when both keys are set there,
/// else from `profile` in `file`.
pub fn credentials(profile: &str, file: &Path) -> Result<Credentials, Error> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN"),
        });
    }
    let missing = || Error::NoCredentials {
        profile: profile.to_string(),
        file: file.to_path_buf(),
    };
    // A credentials file is a few lines; a huge one is not one.
    let text = match std::fs::metadata(file) {
        Ok(m) if m.len() <= 1024 * 1024 => std::fs::read_to_string(file).map_err(|_| missing())?,
        _ => return Err(missing()),
    };
    from_credentials_text(&text, profile).map_err(|e| match e {
        Some(cause) => Error::CredentialsFile {
            file: file.to_path_buf(),
            cause,
        },
        None => missing(),
    })
}

/// The keys of `profile` in a credentials file's text; `Err(None)` when
/// they are not both there.
pub fn from_credentials_text(
    text: &str,
    profile: &str,
) -> Result<Credentials, Option<config::ini::Error>> {
    let ini = config::ini::Ini::parse(text).map_err(Some)?;
    let raw = |k: &str| {
        ini.get_raw(profile, k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    match (raw("aws_access_key_id"), raw("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: raw("aws_session_token"),
        }),
        _ => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls() {
        let t = parse_bucket_url("s3://git-mirror/pub/scm/").unwrap();
        assert_eq!(t.bucket, "git-mirror");
        assert_eq!(t.prefix, "pub/scm");
        assert_eq!(parse_bucket_url("s3://localhost").unwrap().prefix, "");
        for bad in [
            "https://x/y",
            "s3://",
            "s3://UPPER",
            "s3://ab",
            "s3://a_b_c",
            "s3://ok-name/a//b",
            "s3://ok-name/../x",
        ] {
            assert!(parse_bucket_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_file_profiles() {
        let text = "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n\n\
                    [mirror]\naws_access_key_id=MK\naws_secret_access_key=MS\naws_session_token=T\n\
                    [half]\naws_access_key_id = X\n";
        let d = from_credentials_text(text, "default").unwrap();
        assert_eq!((d.access_key_id.as_str(), d.session_token), ("AK", None));
        let m = from_credentials_text(text, "mirror").unwrap();
        assert_eq!(m.secret_access_key, "MS");
        assert_eq!(m.session_token.as_deref(), Some("T"));
        assert!(matches!(from_credentials_text(text, "half"), Err(None)));
        assert!(matches!(from_credentials_text(text, "none"), Err(None)));
        assert!(!format!("{m:?}").contains("MS"));
    }
}
