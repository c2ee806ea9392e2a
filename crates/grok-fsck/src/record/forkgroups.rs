//! The forkgroup of each object-storage member, and its `reference` for
//! grokmirror 1.x clients, recorded in the manifest.

use std::collections::BTreeMap;

use grokmirror::formats::manifest::{self, Manifest};

use crate::settings::Settings;

/// A member's manifest fields: its `reference` (the group's first member,
/// for 1.x clients; `None` for the first itself) and its `forkgroup`.
pub type ForkgroupFields = (Option<String>, String);

/// Record each member's forkgroup (and reference, for 1.x clients) in
/// the manifest; `updates` is keyed by manifest key. The manifest is only
/// rewritten when something changed.
pub fn record_forkgroups(
    settings: &Settings,
    updates: &BTreeMap<String, ForkgroupFields>,
) -> anyhow::Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let path = &settings.manifest;
    let _guard = manifest::lock(path)?;
    let Some(mut m) = Manifest::read(path)? else {
        return Ok(());
    };
    let mut changed = false;
    for (key, (reference, forkgroup)) in updates {
        let Some(entry) = m.repos.get_mut(key) else {
            continue;
        };
        if entry.reference != *reference || entry.forkgroup.as_deref() != Some(forkgroup) {
            entry.reference = reference.clone();
            entry.forkgroup = Some(forkgroup.clone());
            changed = true;
        }
    }
    if changed {
        m.write(path, settings.pretty)?;
    }
    Ok(())
}
