//! When each repository is due, and what it needs now: the decisions of a
//! run, kept free of I/O so they can be tested on their own.

use chrono::{Days, NaiveDate};
use grokmirror::repo::object_counts::{repack_level, ObjectCounts, RepackLevel, RepackThresholds};
use grokmirror::repo::repack::Deltas;
use rand::Rng;

/// What the command line asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mode {
    /// `-f` (also implied by the repack-all modes).
    pub force: bool,
    /// `--repack-only`.
    pub repack_only: bool,
    /// `--repack-all-quick`.
    pub repack_all_quick: bool,
    /// `--repack-all-full`.
    pub repack_all_full: bool,
}

impl Mode {
    /// Whether `git fsck` may run at all in this mode.
    pub fn checks(&self) -> bool {
        !(self.repack_only || self.repack_all_quick || self.repack_all_full)
    }
}

/// The date `days` after `today`.
pub fn add_days(today: NaiveDate, days: u32) -> NaiveDate {
    today
        .checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

/// First check of a repository we have not seen before: today when forced,
/// otherwise a random day from today to `frequency` days on, so that a
/// whole new tree is spread over the period.
pub fn first_check(today: NaiveDate, frequency: u32, force: bool, rng: &mut impl Rng) -> NaiveDate {
    if force {
        today
    } else {
        add_days(today, rng.random_range(0..=frequency))
    }
}

/// The check after one done today: `frequency` days on, or (when forced)
/// a random day within the period, so forced runs don't bunch the
/// schedule onto one day.
pub fn next_check(today: NaiveDate, frequency: u32, force: bool, rng: &mut impl Rng) -> NaiveDate {
    if force {
        add_days(today, rng.random_range(1..=frequency.max(1)))
    } else {
        add_days(today, frequency)
    }
}

/// The facts about one repository that its decision rests on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Its scheduled check is today or earlier.
    pub due: bool,
    /// Its fingerprint differs from the one recorded at its last check.
    pub changed: bool,
    /// Its object counts.
    pub counts: &'a ObjectCounts,
    /// Somebody asked for a full repack (`grokmirror.repack`).
    pub repack_requested: bool,
    /// Whether that request recomputes deltas.
    pub requested_deltas: Deltas,
    /// `precious = always` and the repository has `preciousObjects` on.
    pub precious_always: bool,
    /// Its quick repacks are geometric (`repack::is_geometric`): they
    /// never drop an object, so its scheduled repack is a full one.
    pub geometric: bool,
    /// Its stored deltas are poor ([`grokmirror::repo::repack::delta_probe`]):
    /// a full repack that would reuse them (a new object storage, one that
    /// asked for it) searches afresh instead. Only probed where that
    /// repack is about to happen.
    pub poor_deltas: bool,
}

/// What to do with one repository this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Repack at this level.
    pub repack: Option<RepackLevel>,
    /// Whether a full repack recomputes deltas (only when asked).
    pub deltas: Deltas,
    /// Run `git fsck`.
    pub fsck: bool,
    /// Move its next check now (the repack stands in for the scheduled
    /// work, as grokmirror does for changed repos and precious ones).
    pub reschedule: bool,
    /// Why it is repacked (for the log).
    pub reason: &'static str,
}

/// Decide for a repository of the tree (not object storage). Its object
/// counts are looked at whether or not it changed since its last check: a
/// repository new to the status file, or one that piled up loose objects
/// or packs without a new fingerprint (objects written by a fetch that
/// moved no ref, a grok-pull quick repack that loosened its unreachable
/// objects), is repacked by need on this run.
pub fn decide(facts: &Facts, mode: &Mode, repack_enabled: bool) -> Decision {
    let c = facts.counts;
    let mut d = Decision::default();
    if repack_enabled {
        if mode.repack_all_full && (c.count > 0 || c.packs > 1) {
            d.repack = Some(RepackLevel::Full);
            d.deltas = Deltas::Recompute;
            d.reason = "--repack-all-full";
        } else if mode.repack_all_quick && c.count > 0 {
            d.repack = Some(RepackLevel::Quick);
            d.reason = "--repack-all-quick";
        } else if facts.repack_requested {
            d.repack = Some(RepackLevel::Full);
            d.deltas = facts.requested_deltas;
            d.reason = "requested";
        } else if let Some(level) = repack_level(c, None, &RepackThresholds::default()) {
            d.repack = Some(level);
            d.reason = "objects piled up";
        }
        // Changed since its last check and due: worth a repack even when
        // the counts don't ask for one. Geometric quick repacks keep every
        // object, so this is where unreachable ones leave: a full repack
        // (reusing deltas), once per check period.
        if facts.due && facts.changed && (d.repack.is_none() || facts.geometric) {
            d.repack = Some(match facts.geometric {
                true => RepackLevel::Full,
                false => RepackLevel::Quick,
            });
            d.reschedule = true;
            d.reason = "aged";
        }
    }
    if d.repack.is_some() && facts.precious_always {
        // preciousObjects repos only ever get full repacks, on schedule.
        if facts.due {
            d.repack = Some(RepackLevel::Full);
            d.reschedule = true;
            d.reason = "scheduled (preciousObjects)";
        } else {
            d.repack = None;
        }
    }
    d.fsck = mode.checks() && (facts.due || mode.force) && !stands_for_the_check(&d);
    d
}

/// A full repack stands for the check: it walks every reachable object
/// (a missing one fails it) and reads every object it keeps, inflating
/// what it recomputes and checking the CRC of what it reuses as is (git
/// does, against the pack index). A quick one reads only some, so a due
/// repository still gets its fsck.
fn stands_for_the_check(d: &Decision) -> bool {
    d.repack == Some(RepackLevel::Full)
}

/// Decide for an object-storage repository: its counts alone decide the
/// repack, full repacks only on schedule (or when new or requested).
pub fn decide_objstore(facts: &Facts, is_new: bool, mode: &Mode, repack_enabled: bool) -> Decision {
    let mut d = Decision::default();
    if repack_enabled {
        if facts.repack_requested {
            d.repack = Some(RepackLevel::Full);
            d.deltas = facts.requested_deltas;
            d.reason = "requested";
        } else if is_new {
            // The members' packs usually hold good deltas: reuse them.
            d.repack = Some(RepackLevel::Full);
            d.reason = "new";
        } else {
            d.repack = repack_level(facts.counts, None, &RepackThresholds::default());
            d.reason = "objects piled up";
        }
        if d.repack == Some(RepackLevel::Full) && !facts.due && !facts.repack_requested {
            d.repack = Some(RepackLevel::Quick);
        }
        // Packs from a host that packs loosely: the one full repack that
        // would carry their deltas over searches afresh, once.
        if facts.poor_deltas && carries_deltas_over(&d, facts, is_new) {
            d.deltas = Deltas::Recompute;
            d.reason = match is_new {
                true => "new, with poor deltas",
                false => "requested, with poor deltas",
            };
        }
        // Geometric quick repacks keep every object: a due object storage
        // gets its full repack (reusing deltas), where what no member
        // needs any more leaves.
        if facts.geometric && facts.due && d.repack != Some(RepackLevel::Full) {
            d.repack = Some(RepackLevel::Full);
            d.reason = "scheduled";
        }
    }
    d.fsck = mode.checks() && (facts.due || mode.force) && !stands_for_the_check(&d);
    d
}

/// Whether `d` is the full repack that carries an object storage's stored
/// deltas over as they came (its first, or one it asked for): the one a
/// delta probe is worth running for.
pub fn carries_deltas_over(d: &Decision, facts: &Facts, is_new: bool) -> bool {
    d.repack == Some(RepackLevel::Full)
        && d.deltas == Deltas::Reuse
        && (is_new || facts.repack_requested)
}

/// A repository that just joined (or lent to) object storage gets at least
/// a quick repack: it drops what the object storage now holds.
pub fn after_rewiring(mut d: Decision, rewired: bool) -> Decision {
    if rewired && d.repack.is_none() {
        d.repack = Some(RepackLevel::Quick);
        d.reason = "object storage";
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn counts(count: u64, packs: u64) -> ObjectCounts {
        ObjectCounts {
            count,
            packs,
            in_pack: 100_000,
            size_pack: 100_000,
            ..Default::default()
        }
    }

    fn facts(counts: &ObjectCounts, due: bool, changed: bool) -> Facts<'_> {
        Facts {
            due,
            changed,
            counts,
            repack_requested: false,
            requested_deltas: Deltas::Recompute,
            precious_always: false,
            geometric: false,
            poor_deltas: false,
        }
    }

    #[test]
    fn schedule_dates() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let today = day("2026-01-30");
        assert_eq!(first_check(today, 30, true, &mut rng), today);
        assert_eq!(next_check(today, 30, false, &mut rng), day("2026-03-01"));
        for _ in 0..200 {
            let f = first_check(today, 7, false, &mut rng);
            assert!(f >= today && f <= day("2026-02-06"));
            let n = next_check(today, 7, true, &mut rng);
            assert!(n > today && n <= day("2026-02-06"));
        }
    }

    #[test]
    fn unchanged_repos_are_only_checked_when_due() {
        let m = Mode::default();
        let c = counts(3, 1);
        assert_eq!(
            decide(&facts(&c, false, false), &m, true),
            Decision::default()
        );
        let d = decide(&facts(&c, true, false), &m, true);
        assert_eq!((d.repack, d.fsck), (None, true));
        let forced = Mode { force: true, ..m };
        assert!(decide(&facts(&c, false, false), &forced, true).fsck);
    }

    #[test]
    fn unchanged_or_unknown_repos_are_repacked_by_need() {
        let m = Mode::default();
        let forced = Mode { force: true, ..m };
        // 3,000 loose objects in a repository whose fingerprint did not
        // change (or that the status file has never seen, when forced).
        let loose = counts(3000, 1);
        for (mode, due) in [(m, false), (m, true), (forced, false)] {
            let d = decide(&facts(&loose, due, false), &mode, true);
            assert_eq!(d.repack, Some(RepackLevel::Quick), "{mode:?} {due}");
            assert_eq!(d.reason, "objects piled up");
        }
        let many_packs = counts(0, 30);
        let d = decide(&facts(&many_packs, false, false), &m, true);
        assert_eq!(d.repack, Some(RepackLevel::Full));
        assert_eq!(d.deltas, Deltas::Reuse);
        // repack = no still means never.
        assert_eq!(decide(&facts(&loose, true, false), &m, false).repack, None);
    }

    #[test]
    fn changed_repos_are_repacked_by_need() {
        let m = Mode::default();
        let many_packs = counts(0, 25);
        let d = decide(&facts(&many_packs, false, true), &m, true);
        assert_eq!((d.repack, d.fsck), (Some(RepackLevel::Full), false));
        let loose = counts(1500, 1);
        let d = decide(&facts(&loose, false, true), &m, true);
        assert_eq!((d.repack, d.fsck), (Some(RepackLevel::Quick), false));
        // Due and changed: at least a quick repack, plus the check.
        let tidy = counts(3, 1);
        let d = decide(&facts(&tidy, true, true), &m, true);
        assert_eq!(d.repack, Some(RepackLevel::Quick));
        assert!(d.fsck && d.reschedule);
        // repack = no: never repacked.
        let d = decide(&facts(&loose, true, true), &m, false);
        assert_eq!((d.repack, d.fsck), (None, true));
    }

    #[test]
    fn modes() {
        let c = counts(10, 3);
        let full = Mode {
            force: true,
            repack_all_full: true,
            ..Default::default()
        };
        let d = decide(&facts(&c, false, false), &full, true);
        assert_eq!((d.repack, d.fsck), (Some(RepackLevel::Full), false));
        assert_eq!(d.deltas, Deltas::Recompute);
        let tidy = counts(0, 1);
        assert_eq!(decide(&facts(&tidy, true, false), &full, true).repack, None);
        assert!(!decide(&facts(&tidy, true, false), &full, true).fsck);
        let quick = Mode {
            force: true,
            repack_all_quick: true,
            ..Default::default()
        };
        assert_eq!(
            decide(&facts(&c, false, false), &quick, true).repack,
            Some(RepackLevel::Quick)
        );
        let only = Mode {
            repack_only: true,
            ..Default::default()
        };
        assert!(!decide(&facts(&tidy, true, false), &only, true).fsck);
    }

    #[test]
    fn requests_and_precious() {
        let m = Mode::default();
        let c = counts(0, 1);
        let mut f = facts(&c, false, false);
        f.repack_requested = true;
        let d = decide(&f, &m, true);
        assert_eq!(d.repack, Some(RepackLevel::Full));
        // Asked for: the one full repack that recomputes deltas.
        assert_eq!(d.deltas, Deltas::Recompute);
        let loose = counts(2000, 1);
        let mut f = facts(&loose, false, true);
        f.precious_always = true;
        assert_eq!(decide(&f, &m, true).repack, None);
        f.due = true;
        let d = decide(&f, &m, true);
        assert_eq!(d.repack, Some(RepackLevel::Full));
        assert!(d.reschedule && !d.fsck);
    }

    #[test]
    fn objstore_full_repacks_only_on_schedule() {
        let m = Mode::default();
        let many = counts(0, 30);
        let d = decide_objstore(&facts(&many, false, false), false, &m, true);
        assert_eq!(d.repack, Some(RepackLevel::Quick));
        let d = decide_objstore(&facts(&many, true, false), false, &m, true);
        assert_eq!(d.repack, Some(RepackLevel::Full));
        let tidy = counts(0, 1);
        let d = decide_objstore(&facts(&tidy, true, false), true, &m, true);
        assert_eq!((d.repack, d.fsck), (Some(RepackLevel::Full), false));
        assert_eq!(
            d.deltas,
            Deltas::Reuse,
            "a new object storage keeps its deltas"
        );
        let d = decide_objstore(&facts(&tidy, true, false), false, &m, true);
        assert_eq!((d.repack, d.fsck), (None, true));
    }

    #[test]
    fn poor_deltas_are_recomputed_only_where_they_would_be_carried_over() {
        let m = Mode::default();
        let tidy = counts(0, 1);
        let mut f = facts(&tidy, true, false);
        f.poor_deltas = true;
        // New object storage, due: its first full repack searches afresh.
        let d = decide_objstore(&f, true, &m, true);
        assert_eq!(
            (d.repack, d.deltas, d.reason),
            (
                Some(RepackLevel::Full),
                Deltas::Recompute,
                "new, with poor deltas"
            )
        );
        // Its own request to reuse deltas (joining members) too.
        f.repack_requested = true;
        f.requested_deltas = Deltas::Reuse;
        let d = decide_objstore(&f, false, &m, true);
        assert_eq!(
            (d.deltas, d.reason),
            (Deltas::Recompute, "requested, with poor deltas")
        );
        // Good deltas are kept.
        f.poor_deltas = false;
        let d = decide_objstore(&f, false, &m, true);
        assert_eq!(d.deltas, Deltas::Reuse);
        assert!(carries_deltas_over(&d, &f, false), "worth a probe");
        // Asked to recompute anyway: nothing to probe.
        f.requested_deltas = Deltas::Recompute;
        let d = decide_objstore(&f, false, &m, true);
        assert!(!carries_deltas_over(&d, &f, false));
        // A scheduled full repack of an old object storage keeps them,
        // whatever a probe said: that is paid once, at its creation.
        let mut f = facts(&tidy, true, false);
        f.geometric = true;
        f.poor_deltas = true;
        let d = decide_objstore(&f, false, &m, true);
        assert_eq!((d.reason, d.deltas), ("scheduled", Deltas::Reuse));
        assert!(!carries_deltas_over(&d, &f, false), "not worth a probe");
        // Not due: a new object storage gets a quick repack, no search.
        let mut f = facts(&tidy, false, false);
        f.poor_deltas = true;
        let d = decide_objstore(&f, true, &m, true);
        assert_eq!(
            (d.repack, d.deltas),
            (Some(RepackLevel::Quick), Deltas::Reuse)
        );
        // Repacks disabled: nothing.
        assert_eq!(decide_objstore(&f, true, &m, false).repack, None);
    }

    #[test]
    fn with_geometric_quick_repacks_the_scheduled_repack_is_full() {
        let m = Mode::default();
        let tidy = counts(3, 1);
        let mut f = facts(&tidy, true, true);
        f.geometric = true;
        let d = decide(&f, &m, true);
        assert_eq!(
            (d.repack, d.deltas),
            (Some(RepackLevel::Full), Deltas::Reuse)
        );
        assert!(!d.fsck && d.reschedule);
        // Not due: the counts decide, geometric or not.
        f.due = false;
        assert_eq!(decide(&f, &m, true).repack, None);
        let loose = counts(2000, 1);
        let mut f = facts(&loose, false, false);
        f.geometric = true;
        assert_eq!(decide(&f, &m, true).repack, Some(RepackLevel::Quick));
        // Object storage: full when due, quick by need otherwise.
        let mut f = facts(&tidy, true, false);
        f.geometric = true;
        let d = decide_objstore(&f, false, &m, true);
        assert_eq!((d.repack, d.reason), (Some(RepackLevel::Full), "scheduled"));
        assert!(!d.fsck);
        f.due = false;
        assert_eq!(decide_objstore(&f, false, &m, true).repack, None);
    }

    #[test]
    fn rewired_repositories_get_at_least_a_quick_repack() {
        let d = after_rewiring(Decision::default(), true);
        assert_eq!(
            (d.repack, d.reason),
            (Some(RepackLevel::Quick), "object storage")
        );
        assert_eq!(
            after_rewiring(Decision::default(), false),
            Decision::default()
        );
        let full = Decision {
            repack: Some(RepackLevel::Full),
            reason: "requested",
            ..Default::default()
        };
        assert_eq!(after_rewiring(full, true), full);
    }
}
