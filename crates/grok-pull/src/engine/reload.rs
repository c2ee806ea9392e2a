//! Watching the config file and a `file://` manifest, and reloading the
//! config when it changed.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use grokmirror::config::Config;
use grokmirror::tree::deletion;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::{tools_of, Engine};
use crate::daemon::watch::{Changed, FileWatch};
use crate::settings::{ManifestSource, Settings};
use crate::work::job::JobContext;
use crate::work::objstore_clone::Objstore;
use crate::Puller;

/// How long after a change of the config file it is read (editors and
/// config management may take a few writes).
const CONFIG_SETTLE: Duration = Duration::from_millis(500);
/// How long after a change of a `file://` manifest it is read.
const MANIFEST_SETTLE: Duration = Duration::from_millis(200);

/// The file watches, and when what they saw is acted on.
#[derive(Debug)]
pub(super) struct Watches {
    /// Where the watches report.
    pub tx: mpsc::UnboundedSender<Changed>,
    /// What the watches reported.
    pub rx: mpsc::UnboundedReceiver<Changed>,
    /// The config file's watch.
    pub config: Option<FileWatch>,
    /// A `file://` manifest's watch.
    pub manifest: Option<FileWatch>,
    /// The config file's text in use (a touch without change is no
    /// reload).
    pub config_text: Vec<u8>,
    /// When the changed config is read.
    pub config_due: Option<Instant>,
    /// When the changed manifest is polled.
    pub manifest_due: Option<Instant>,
}

impl Watches {
    /// No watches yet; `config_text` is the config in use.
    pub fn new(config_text: Vec<u8>) -> Watches {
        let (tx, rx) = mpsc::unbounded_channel();
        Watches {
            tx,
            rx,
            config: None,
            manifest: None,
            config_text,
            config_due: None,
            manifest_due: None,
        }
    }

    /// A watched file changed: act on it a little later.
    pub fn changed(&mut self, changed: Changed, now: Instant) {
        // Counted from the first event: later ones must not keep pushing
        // it back (a busy neighbour in the same directory would).
        match changed {
            Changed::Config => {
                self.config_due.get_or_insert(now + CONFIG_SETTLE);
            }
            Changed::Manifest => {
                self.manifest_due.get_or_insert(now + MANIFEST_SETTLE);
            }
        }
    }

    /// Stop watching.
    pub fn stop(&mut self) {
        self.config = None;
        self.manifest = None;
    }
}

/// What a new config changes that needs a restart of grok-pull (nothing
/// when it may be applied).
pub(super) fn needs_restart(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut needs_restart = Vec::new();
    if new.toplevel() != old.toplevel() {
        needs_restart.push("[core] toplevel");
    }
    if new.manifest() != old.manifest() {
        needs_restart.push("[core] manifest");
    }
    if new.config.core.objstore != old.config.core.objstore {
        needs_restart.push("[core] objstore");
    }
    if new.socket != old.socket {
        needs_restart.push("[pull] socket");
    }
    if new.metrics_listen != old.metrics_listen {
        needs_restart.push("[pull] metrics_listen");
    }
    if new.notify_listen != old.notify_listen {
        needs_restart.push("[pull] notify_listen");
    }
    if new.notify_secret_file != old.notify_secret_file {
        needs_restart.push("[pull] notify_secret_file");
    }
    if new.notify_peers != old.notify_peers {
        needs_restart.push("[pull] notify_peers");
    }
    if new.refresh.is_none() {
        needs_restart.push("[pull] refresh (unset)");
    }
    needs_restart
}

impl Engine {
    pub(super) fn watch_manifest(&mut self) {
        self.watches.manifest = match &self.settings().source {
            ManifestSource::File(path) => {
                if self
                    .watches
                    .manifest
                    .as_ref()
                    .is_some_and(|w| w.path() == path)
                {
                    return;
                }
                FileWatch::new(path, Changed::Manifest, self.watches.tx.clone())
            }
            _ => None,
        };
    }

    /// Read the changed config; apply it, or keep the old one.
    pub(super) fn reload(&mut self) {
        let path = self.settings().config.path.clone();
        let text = std::fs::read(&path).unwrap_or_default();
        if text == self.watches.config_text {
            debug!("{} was touched but not changed", path.display());
            return;
        }
        let loaded = Config::load(&path)
            .map_err(anyhow::Error::from)
            .and_then(|c| Ok(Settings::from_config(c, self.opts.purge_flag)?));
        let new = match loaded {
            Ok(s) => s,
            Err(e) => {
                self.stats.reloads_failed += 1;
                error!(
                    "   config: cannot reload {}: {e:#}; still using the previous config",
                    path.display()
                );
                return;
            }
        };
        let old = self.settings();
        let needs_restart = needs_restart(old, &new);
        if !needs_restart.is_empty() {
            self.stats.reloads_failed += 1;
            error!(
                "   config: not reloading {}: {} changed, which needs a restart of grok-pull; still using the previous config",
                path.display(),
                needs_restart.join(", ")
            );
            return;
        }
        if new.log != old.log || new.loglevel != old.loglevel {
            warn!("   config: changes to [core] log and loglevel take effect after a restart");
        }
        self.watches.config_text = text;
        self.sched.set_workers(new.pull_threads);
        self.recorder.reconfigure(&new);
        self.fresh.reconfigure(&new);
        self.puller = match Puller::new(new) {
            Ok(p) => p,
            Err(e) => {
                error!("   config: not reloading {}: {e:#}", path.display());
                return;
            }
        };
        self.tools = tools_of(&self.puller, self.opts.daemon);
        let objstore = Arc::new(Objstore {
            groups: self.ctx.objstore.groups.clone(),
            ..Objstore::from_settings(&self.puller.settings)
        });
        self.ctx = Arc::new(JobContext {
            settings: self.puller.settings.clone(),
            git: self.puller.git.clone(),
            tree: self.puller.tree().clone(),
            // Purges approved under the old config are not carried over.
            gate: deletion::Rules {
                wanted: self.ctx.gate.wanted.clone(),
                ..deletion::Rules::default()
            },
            borrowed: OnceLock::new(),
            objstore,
        });
        self.watch_manifest();
        self.stats.reloads += 1;
        info!(
            "   config: reloaded {}; checking every repository again",
            path.display()
        );
        // A new config may include, exclude or set up repositories
        // differently: look at everything (as the `.remote` file's
        // config-last-modified asks for too).
        self.polling.request_full();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        let text = format!(
            "[core]\ntoplevel = {}\n[remote]\nsite = /nowhere\nmanifest = file:///nowhere/m.js\n[pull]\nrefresh = 60\n{extra}",
            std::env::temp_dir().display()
        );
        let config = Config::from_text(&text, std::path::Path::new("t.conf"), 0).unwrap();
        Settings::from_config(config, false).unwrap()
    }

    #[test]
    fn what_a_reload_may_not_change() {
        let old = settings("");
        assert!(needs_restart(&old, &settings("pull_threads = 3\n")).is_empty());
        assert_eq!(
            needs_restart(&old, &settings("socket = /tmp/s\n")),
            vec!["[pull] socket"]
        );
        let text = format!(
            "[core]\ntoplevel = {}\n[remote]\nsite = /nowhere\nmanifest = file:///nowhere/m.js\n",
            std::env::temp_dir().display()
        );
        let config = Config::from_text(&text, std::path::Path::new("t.conf"), 0).unwrap();
        let unset = Settings::from_config(config, false).unwrap();
        assert_eq!(needs_restart(&old, &unset), vec!["[pull] refresh (unset)"]);
    }
}
