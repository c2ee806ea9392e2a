//! The endpoint's defences against a flood, as pure state machines over
//! an `Instant` the caller passes: token buckets (per client address and
//! for everyone) that refuse with 429 before any signature is computed,
//! and the refusal log that says one line per misbehaving address and
//! then a count at most once a minute, never a line per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Requests one address may send in a burst.
pub const PER_CLIENT_BURST: f64 = 20.0;
/// Requests per second one address gets back after a burst.
pub const PER_CLIENT_RATE: f64 = 2.0;
/// Requests everybody together may send in a burst.
pub const GLOBAL_BURST: f64 = 100.0;
/// Requests per second everybody together gets back.
pub const GLOBAL_RATE: f64 = 20.0;
/// Addresses remembered at most (by the limiter and by the log); beyond,
/// new ones share the global bucket only and are counted together.
pub const MAX_TRACKED: usize = 4096;
/// How often the refusals of one address are summarized, at most.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// A token bucket: `burst` tokens, refilled at `rate` a second.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(burst: f64, rate: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * self.rate).min(self.burst);
        self.at = now;
    }

    /// Take a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// Every request costs a token of its address's bucket and one of the
/// global bucket; without both it is refused.
#[derive(Debug)]
pub struct Limiter {
    clients: HashMap<IpAddr, Bucket>,
    global: Bucket,
}

impl Limiter {
    /// Full buckets.
    pub fn new(now: Instant) -> Limiter {
        Limiter {
            clients: HashMap::new(),
            global: Bucket::new(GLOBAL_BURST, GLOBAL_RATE, now),
        }
    }

    /// Whether a request from `ip` may go on.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.clients.contains_key(&ip) && self.clients.len() >= MAX_TRACKED {
            // Forget the addresses that have been quiet long enough to be
            // full again: they lose nothing.
            self.clients.retain(|_, b| !b.is_full(now));
        }
        let own = if self.clients.len() < MAX_TRACKED || self.clients.contains_key(&ip) {
            self.clients
                .entry(ip)
                .or_insert_with(|| Bucket::new(PER_CLIENT_BURST, PER_CLIENT_RATE, now))
                .take(now)
        } else {
            true
        };
        own && self.global.take(now)
    }
}

#[derive(Debug)]
struct Source {
    since: Instant,
    count: u64,
}

/// The log lines of refused requests: the first refusal of an address is
/// told in full; later ones are counted and summarized at most every
/// [`SUMMARY_EVERY`]; an address quiet for that long starts afresh.
#[derive(Debug, Default)]
pub struct RefusalLog {
    sources: HashMap<IpAddr, Source>,
    /// Refusals of addresses beyond [`MAX_TRACKED`], since the last tick.
    others: u64,
}

fn summary(count: u64, who: &str, secs: u64) -> String {
    format!(
        "refused {count} more notification{} from {who} in the last {secs} s",
        if count == 1 { "" } else { "s" }
    )
}

impl RefusalLog {
    /// A request from `ip` was refused for `why`: the line to log, if any.
    pub fn refused(&mut self, ip: IpAddr, why: &str, now: Instant) -> Option<String> {
        if let Some(s) = self.sources.get_mut(&ip) {
            s.count += 1;
            let age = now.saturating_duration_since(s.since);
            if age < SUMMARY_EVERY {
                return None;
            }
            let line = summary(s.count, &ip.to_string(), age.as_secs());
            s.since = now;
            s.count = 0;
            return Some(line);
        }
        if self.sources.len() >= MAX_TRACKED {
            self.others += 1;
            return None;
        }
        self.sources.insert(
            ip,
            Source {
                since: now,
                count: 0,
            },
        );
        Some(format!(
            "refused a notification from {ip}: {why} (further refusals from it are counted, and summarized at most once a minute)"
        ))
    }

    /// Called about once a minute: the summaries that are due, and the
    /// addresses that were quiet for a whole period forgotten.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        self.sources.retain(|ip, s| {
            let age = now.saturating_duration_since(s.since);
            if age < SUMMARY_EVERY {
                return true;
            }
            if s.count == 0 {
                return false;
            }
            lines.push(summary(s.count, &ip.to_string(), age.as_secs()));
            s.since = now;
            s.count = 0;
            true
        });
        if self.others > 0 {
            lines.push(summary(
                self.others,
                "other addresses",
                SUMMARY_EVERY.as_secs(),
            ));
            self.others = 0;
        }
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_flood_from_one_address_is_cut_to_the_refill_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        let allowed = (0..300).filter(|_| l.allow(ip(1), t0)).count();
        assert_eq!(allowed, PER_CLIENT_BURST as usize);
        // Another address is not punished for it.
        assert!(l.allow(ip(2), t0));
        // Tokens come back at the rate.
        assert!(!l.allow(ip(1), t0 + Duration::from_millis(100)));
        assert!(l.allow(ip(1), t0 + Duration::from_millis(600)));
    }

    #[test]
    fn many_addresses_together_meet_the_global_bucket() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        let allowed = (0..=255u8).filter(|i| l.allow(ip(*i), t0)).count();
        assert_eq!(allowed, GLOBAL_BURST as usize);
    }

    #[test]
    fn the_tracked_addresses_are_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        l.global = Bucket::new(1e9, 0.0, t0);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            l.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(l.clients.len(), MAX_TRACKED);
        // Once they refilled, they make room.
        let later = t0 + Duration::from_secs(60);
        assert!(l.allow(IpAddr::from([1, 2, 3, 4]), later));
        assert_eq!(l.clients.len(), 1);
    }

    #[test]
    fn refusals_are_told_once_then_summarized_once_a_minute() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        let first = log.refused(ip(1), "unsigned", t0).unwrap();
        assert!(first.contains("10.0.0.1: unsigned"), "{first}");
        let lines = (1..=300)
            .filter_map(|i| log.refused(ip(1), "unsigned", t0 + Duration::from_millis(i)))
            .count();
        assert_eq!(lines, 0, "a flood logs nothing more at once");
        assert!(log.tick(t0 + Duration::from_secs(30)).is_empty());
        let due = log.tick(t0 + Duration::from_secs(61));
        assert_eq!(
            due,
            vec!["refused 300 more notifications from 10.0.0.1 in the last 61 s".to_string()]
        );
        // A refusal after a full minute is summarized by itself.
        let t1 = t0 + Duration::from_secs(130);
        let line = log.refused(ip(1), "unsigned", t1).unwrap();
        assert!(
            line.starts_with("refused 1 more notification from"),
            "{line}"
        );
        // Quiet for a whole period: forgotten, the next one is told in full.
        assert!(log.tick(t1 + Duration::from_secs(61)).is_empty());
        assert!(log.tick(t1 + Duration::from_secs(200)).is_empty());
        let again = log.refused(ip(1), "wrong signature", t1 + Duration::from_secs(201));
        assert!(again.unwrap().contains("wrong signature"));
    }
}
