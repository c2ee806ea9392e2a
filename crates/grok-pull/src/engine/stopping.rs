//! Signals, the shutdown grace period, and the end of a run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use grokmirror_cli::{EXIT_FAILURE, EXIT_OK};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use super::{plural, Engine};

/// The signals we act on.
pub(super) struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sig {
    /// SIGTERM or SIGINT (named).
    Stop(&'static str),
    /// SIGHUP: reopen the log file.
    Reopen,
}

impl Signals {
    /// Catch SIGTERM, SIGINT and SIGHUP from now on.
    pub fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.term.recv() => Sig::Stop("SIGTERM"),
            _ = self.int.recv() => Sig::Stop("SIGINT"),
            _ = self.hup.recv() => Sig::Reopen,
        }
    }
}

/// A run that is stopping.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stopping {
    /// The signal that stopped it.
    pub signal: &'static str,
    /// When the running jobs are killed.
    pub deadline: Instant,
    /// Whether they were.
    pub killed: bool,
}

/// What a stop signal means now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StopSignal {
    /// The first one: start stopping.
    Begin,
    /// A second one while jobs still run: kill them.
    KillNow,
    /// Nothing more to do.
    Nothing,
}

/// Decide [`StopSignal`].
pub(super) fn stop_signal_means(stopping: Option<&Stopping>, running: usize) -> StopSignal {
    match stopping {
        None => StopSignal::Begin,
        Some(s) if !s.killed && running > 0 => StopSignal::KillNow,
        Some(_) => StopSignal::Nothing,
    }
}

/// Whether a stop signal ends the running jobs at once, without the grace
/// period: SIGINT (Ctrl-C) on a one-shot run.
pub(super) fn ctrl_c_stops_at_once(daemon: bool, signal: &str) -> bool {
    !daemon && signal == "SIGINT"
}

/// The exit status of a run a stop signal ended, when it is not the usual
/// one: a one-shot run stopped by SIGINT exits 130, as a shell reports a
/// program Ctrl-C ended. SIGTERM (a service manager's stop) and the
/// daemon's stops keep theirs (0 unless something failed before).
pub(super) fn interrupted_status(daemon: bool, signal: &str) -> Option<i32> {
    ctrl_c_stops_at_once(daemon, signal).then_some(EXIT_INTERRUPTED)
}

/// What a shell reports for a program that SIGINT ended (128 + 2).
const EXIT_INTERRUPTED: i32 = 130;

/// Whether the grace period is over with jobs still running.
pub(super) fn grace_is_over(stop: &Stopping, running: usize, now: Instant) -> bool {
    !stop.killed && running > 0 && stop.deadline <= now
}

impl Engine {
    pub(super) fn on_signal(&mut self, sig: Sig) {
        match sig {
            Sig::Reopen => {
                self.log.reopen();
                info!("pull: reopened the log file (SIGHUP)");
            }
            Sig::Stop(name) => self.on_stop_signal(name),
        }
    }

    fn on_stop_signal(&mut self, name: &'static str) {
        match stop_signal_means(self.stopping.as_ref(), self.running.len()) {
            StopSignal::KillNow => {
                warn!("stopping: second {name}: not waiting any longer");
                self.kill_running("second signal");
                return;
            }
            StopSignal::Nothing => return,
            StopSignal::Begin => {}
        }
        // Ctrl-C on a one-shot run: a person wants it to stop now; the
        // grace period is for service managers (SIGTERM) and the daemon.
        let grace = if ctrl_c_stops_at_once(self.opts.daemon, name) {
            Duration::ZERO
        } else {
            self.settings().shutdown_grace
        };
        info!("{name} received: stopping");
        self.service.stopping();
        self.stopping = Some(Stopping {
            signal: name,
            deadline: Instant::now() + grace,
            killed: false,
        });
        let dropped = self.sched.clear_queue();
        self.hk.set_claims(self.sched.running_keys());
        if dropped > 0 {
            info!(
                "stopping: {} not started, left for the next run",
                plural(dropped, "repository", "repositories")
            );
        }
        if let Some(p) = self.polling.task.take() {
            p.abort();
        }
        self.push.close();
        self.watches.stop();
        self.hk.stop();
        let running = self.running.len();
        if running > 0 {
            if grace.is_zero() {
                self.kill_running(if ctrl_c_stops_at_once(self.opts.daemon, name) {
                    "Ctrl-C"
                } else {
                    "[pull] shutdown_grace is 0"
                });
            } else {
                let keys: BTreeSet<String> = self.running.sorted_keys().into_iter().collect();
                info!(
                    "stopping: waiting up to {}s for {} to finish ({}); signal again to stop at once",
                    grace.as_secs(),
                    plural(running, "running job", "running jobs"),
                    keys.into_iter().collect::<Vec<_>>().join(" ")
                );
            }
        }
    }

    pub(super) fn kill_running(&mut self, why: &str) {
        if let Some(s) = &mut self.stopping {
            s.killed = true;
        }
        info!(
            "stopping: {why}: interrupting {}",
            plural(self.running.len(), "running job", "running jobs")
        );
        // Aborting drops each job: its git processes are killed and a
        // staged clone is removed with it.
        self.running.abort_all();
    }

    /// Wind up: write the local manifest, run the last hooks, wait for
    /// housekeeping (one-shot), and say how it went.
    pub(super) async fn finish(&mut self, signals: &mut Signals) -> anyhow::Result<i32> {
        let mut stopped = self.stopping;
        self.progress = None;
        self.flush();
        if stopped.is_none() && !self.recorder.fresh_clones.is_empty() {
            let clones = std::mem::take(&mut self.recorder.fresh_clones);
            crate::work::hooks::post_clone_complete(
                &self.settings().post_clone_complete_hook,
                &clones,
                self.settings().hook_timeout,
            )
            .await;
        }
        if stopped.is_none() && !self.opts.daemon && self.worked.jobs_finished > 0 {
            crate::work::hooks::post_work_complete(
                &self.settings().post_work_complete_hook,
                self.settings().hook_timeout,
            )
            .await;
        }
        // The peers hear of the last fetches; like the hooks, within the
        // grace period.
        self.maybe_notify_peers(true);
        // Hooks started earlier get what is left of the grace period.
        if !self.hooks.is_empty() {
            let until = stopped.map_or_else(
                || Instant::now() + Duration::from_secs(3600 * 24),
                |s| s.deadline,
            );
            let wait = async { while self.hooks.join_next().await.is_some() {} };
            if tokio::time::timeout_at(until.into(), wait).await.is_err() {
                warn!("stopping: interrupting hooks still running");
                self.hooks.abort_all();
            }
        }
        if stopped.is_none() && self.hk.load().total() > 0 {
            info!("      spa: waiting for housekeeping to finish");
            loop {
                tokio::select! {
                    _ = self.hk.drained() => break,
                    sig = signals.next() => match sig {
                        Sig::Reopen => self.log.reopen(),
                        Sig::Stop(name) => {
                            warn!("{name} received: not waiting for housekeeping");
                            stopped = Some(Stopping { signal: name, deadline: Instant::now(), killed: true });
                            break;
                        }
                    },
                }
            }
        }
        self.hk.shutdown();
        let summary = self.recorder.summary.clone();
        let problems = summary.failed > 0 || summary.rejected > 0 || self.purge_refused;
        if stopped.is_none() && !problems && self.polling.done > 0 {
            if let Some((true, state)) = self.batch.take_complete() {
                self.write_state(state);
            }
        }
        self.write_metrics();
        if let Some(e) = self.record_error.take() {
            error!("pull: the local manifest could not be written: {e:#}");
            return Ok(EXIT_FAILURE);
        }
        if self.opts.daemon {
            info!(
                "pull: stopped on {}; {}",
                stopped.map_or("request", |s| s.signal),
                self.stats.line(self.activity())
            );
            return Ok(EXIT_OK);
        }
        if let Some(s) = stopped {
            error!(
                "pull: interrupted by {}; unfinished repositories will be done next run",
                s.signal
            );
        }
        if self.purge_refused {
            error!("pull: purge refused by purgeprotect (see above)");
        }
        if !self.recorder.failures.is_empty() {
            let names: Vec<&str> = self
                .recorder
                .failures
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            error!("pull: failed: {}", names.join(" "));
        }
        if let Some(code) = stopped.and_then(|s| interrupted_status(self.opts.daemon, s.signal)) {
            info!("pull: {summary}");
            return Ok(code);
        }
        if problems {
            error!("pull: {summary}");
            Ok(EXIT_FAILURE)
        } else {
            if self.polling.done > 0 && (summary != Default::default() || stopped.is_some()) {
                info!("pull: {summary}");
            }
            Ok(EXIT_OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_ends_a_one_shot_run_at_once_with_130() {
        assert!(ctrl_c_stops_at_once(false, "SIGINT"));
        assert!(!ctrl_c_stops_at_once(false, "SIGTERM"));
        assert!(!ctrl_c_stops_at_once(true, "SIGINT"));
        assert_eq!(interrupted_status(false, "SIGINT"), Some(130));
        assert_eq!(interrupted_status(false, "SIGTERM"), None);
        assert_eq!(interrupted_status(true, "SIGINT"), None);
    }

    #[test]
    fn what_a_stop_signal_means() {
        let now = Instant::now();
        let stop = Stopping {
            signal: "SIGTERM",
            deadline: now,
            killed: false,
        };
        assert_eq!(stop_signal_means(None, 3), StopSignal::Begin);
        assert_eq!(stop_signal_means(Some(&stop), 3), StopSignal::KillNow);
        assert_eq!(stop_signal_means(Some(&stop), 0), StopSignal::Nothing);
        let killed = Stopping {
            killed: true,
            ..stop
        };
        assert_eq!(stop_signal_means(Some(&killed), 3), StopSignal::Nothing);
    }

    #[test]
    fn the_grace_period_ends_at_its_deadline() {
        let now = Instant::now();
        let stop = Stopping {
            signal: "SIGINT",
            deadline: now + Duration::from_secs(10),
            killed: false,
        };
        assert!(!grace_is_over(&stop, 2, now));
        assert!(grace_is_over(&stop, 2, now + Duration::from_secs(10)));
        assert!(!grace_is_over(&stop, 0, now + Duration::from_secs(10)));
    }
}
