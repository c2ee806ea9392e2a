//! Talking to systemd when it runs us as a `Type=notify` service
//! (`NOTIFY_SOCKET` set): readiness, a status line, stopping, and the
//! watchdog (`WATCHDOG_USEC`). Without those variables every call does
//! nothing. The watchdog is pinged from the engine's loop itself, never
//! from a helper thread, so a wedged loop stops the pings and systemd
//! restarts us.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

/// The service-manager connection.
#[derive(Debug, Clone)]
pub struct Service {
    notify: bool,
    watchdog: Option<Duration>,
}

impl Service {
    /// Read what systemd told us in the environment.
    pub fn from_env() -> Service {
        let notify = std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty());
        let mut usec = 0;
        let watchdog = (notify && sd_notify::watchdog_enabled(false, &mut usec) && usec > 0)
            .then(|| Duration::from_micros(usec));
        Service { notify, watchdog }
    }

    fn send(&self, state: &[NotifyState]) {
        if self.notify {
            if let Err(e) = sd_notify::notify(false, state) {
                debug!("cannot notify systemd: {e}");
            }
        }
    }

    /// How often to ping the watchdog (a third of its timeout), if it is on.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
            .map(|d| (d / 3).max(Duration::from_millis(100)))
    }

    /// Start-up is done.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// The loop is alive.
    pub fn ping(&self) {
        if self.watchdog.is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    /// A status line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// We are shutting down.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}
