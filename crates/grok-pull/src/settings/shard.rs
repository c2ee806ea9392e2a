//! `[pull] shard` (or `GROKMIRROR_SHARD`) and `[pull] shard_peers`, read
//! and checked; the rules themselves are [`grokmirror::shard`].

use grokmirror::config::{self, Config};
use grokmirror::shard::{self, Shard};

use super::bad;

/// The host name, for `ordinal/N`: `$HOSTNAME` (which Kubernetes sets to
/// the pod's name), else the kernel's.
pub(super) fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
}

/// `[pull] shard` (replaced by `env`, the value of `GROKMIRROR_SHARD`,
/// when that is set and not empty) and `[pull] shard_peers`, checked.
pub(super) fn from_config(
    config: &Config,
    env: Option<String>,
    hostname: impl FnOnce() -> Option<String>,
) -> Result<(Option<Shard>, Vec<String>), config::Error> {
    let refused = |what: String, cause| config::Error::Shard {
        path: config.path.clone(),
        what,
        cause,
    };
    let (value, what) = match env.filter(|v| !v.trim().is_empty()) {
        Some(v) => (Some(v.clone()), format!("{}={v:?}", shard::ENV_SHARD)),
        None => (
            config
                .get("pull", "shard")?
                .filter(|v| !v.trim().is_empty()),
            "[pull] shard".to_string(),
        ),
    };
    let Some(value) = value else {
        return Ok((None, Vec::new()));
    };
    let shard = Shard::parse(&value, hostname).map_err(|e| refused(what, e))?;
    let peers = shard::peer_urls(&config.get_lines("pull", "shard_peers")?, shard.count())
        .map_err(|e| refused("[pull] shard_peers".into(), e))?;
    for url in &peers {
        if !(url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("file:///"))
        {
            return Err(bad(
                config,
                "pull",
                "shard_peers",
                url.clone(),
                "a list of http://, https:// or file:/// manifest URLs",
            ));
        }
    }
    Ok((Some(shard), peers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn shard_from_config_env_and_ordinal() {
        let conf = |pull: &str| {
            let text = format!("[core]\ntoplevel = /tmp\n[pull]\n{pull}");
            Config::from_text(&text, Path::new("t.conf"), 0).unwrap()
        };
        let host = || Some("grok-pull-1".to_string());
        let none = conf("");
        assert_eq!(from_config(&none, None, host).unwrap(), (None, vec![]));
        assert_eq!(
            from_config(&none, Some(" ".into()), host).unwrap(),
            (None, vec![])
        );
        let (s, peers) = from_config(&none, Some("ordinal/3".into()), host).unwrap();
        assert_eq!(
            (s.unwrap().index(), s.unwrap().count(), peers.len()),
            (1, 3, 0)
        );
        let two = conf("shard = 0/2\nshard_peers = file:///p/{K}.js\n");
        let (s, peers) = from_config(&two, None, host).unwrap();
        assert_eq!(s, Shard::new(0, 2));
        assert_eq!(peers, vec!["file:///p/0.js", "file:///p/1.js"]);
        // The environment wins over the file.
        let (s, _) = from_config(&two, Some("1/2".into()), host).unwrap();
        assert_eq!(s, Shard::new(1, 2));
        let err = from_config(&two, Some("2/2".into()), host).unwrap_err();
        assert!(
            err.to_string().contains("GROKMIRROR_SHARD=\"2/2\""),
            "{err}"
        );
        let err = from_config(&conf("shard = 1/x\n"), None, host).unwrap_err();
        assert!(err.to_string().contains("[pull] shard"), "{err}");
        let err =
            from_config(&conf("shard = 0/3\nshard_peers = file:///a\n"), None, host).unwrap_err();
        assert!(err.to_string().contains("one per shard"), "{err}");
        let err = from_config(&conf("shard = 0/1\nshard_peers = /a\n"), None, host).unwrap_err();
        assert!(err.to_string().contains("shard_peers"), "{err}");
    }
}
