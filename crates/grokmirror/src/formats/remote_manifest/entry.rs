//! Reading a remote manifest entry by entry from a stream, every field
//! against its own limit (see [`super::limits`]), so that memory follows
//! the number of entries and never the size of one value.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::{Map, Value};

use super::limits::{
    DESCRIPTION_MAX_BYTES, EXTRA_MAX_BYTES, FINGERPRINT_MAX_BYTES, FORKGROUP_MAX_BYTES,
    HEAD_MAX_BYTES, MAX_SYMLINKS, MODIFIED_MAX_BYTES, OWNER_MAX_BYTES,
};
use super::tokens::{Fault, Tokens};
use super::{shown, MAX_PATH_BYTES};
use crate::formats::manifest::{lenient_seconds, RepoEntry};

/// The raw key of one top-level member and what became of it.
pub(super) struct Member {
    /// The key, kept up to [`MAX_PATH_BYTES`] + 1 bytes.
    pub key: String,
    /// Its full length in bytes.
    pub key_len: u64,
    /// The entry, when it was read (the key was acceptable and the value
    /// an object), or why not.
    pub entry: Option<Result<RepoEntry, String>>,
}

/// Read the next member of the top-level object; `None` after its end.
/// `wanted` says, from the key alone, whether the value is worth reading
/// (otherwise it is skipped without being kept).
pub(super) fn next_member<R: Read>(
    t: &mut Tokens<R>,
    first: &mut bool,
    wanted: impl FnOnce(&str, u64) -> bool,
) -> Result<Option<Member>, Fault> {
    let Some(key) = t.next_key(first, MAX_PATH_BYTES + 1)? else {
        return Ok(None);
    };
    let mut member = Member {
        key_len: key.total,
        key: key.text,
        entry: None,
    };
    if !wanted(&member.key, member.key_len) {
        t.skip()?;
        return Ok(Some(member));
    }
    if t.peek()? != Some(b'{') {
        t.skip()?;
        member.entry = Some(Err("entry is not a JSON object".into()));
        return Ok(Some(member));
    }
    member.entry = Some(read_entry(t)?);
    Ok(Some(member))
}

/// One field's limit in bytes and how it is decoded.
fn limit_of(field: &str) -> Option<u64> {
    Some(match field {
        "description" => DESCRIPTION_MAX_BYTES,
        "owner" => OWNER_MAX_BYTES,
        "fingerprint" => FINGERPRINT_MAX_BYTES,
        "head" => HEAD_MAX_BYTES,
        "forkgroup" => FORKGROUP_MAX_BYTES,
        "reference" => MAX_PATH_BYTES as u64,
        "modified" => MODIFIED_MAX_BYTES,
        // Each symlink is a path; brackets, commas and quotes aside.
        "symlinks" => (MAX_SYMLINKS as u64 + 1) * (MAX_PATH_BYTES as u64 + 1),
        _ => return None,
    })
}

/// Read one entry object (its `{` is next). Always consumes the whole
/// object; a field that is too large or of the wrong type makes it
/// `Err(reason)`. Later duplicates of a field win, as in Python.
fn read_entry<R: Read>(t: &mut Tokens<R>) -> Result<Result<RepoEntry, String>, Fault> {
    t.begin_object()?;
    let mut e = RepoEntry::default();
    let mut extra = Map::new();
    let mut extra_cost = 0u64;
    // Per field, so that a later good duplicate clears an earlier problem.
    let mut problems: BTreeMap<String, String> = BTreeMap::new();
    let mut first = true;
    while let Some(name) = t.next_key(&mut first, MAX_PATH_BYTES)? {
        let field = name.text;
        problems.remove(&field);
        let Some(limit) = limit_of(&field) else {
            // Unknown fields are kept as they are, all together within
            // one budget.
            extra_cost += name.total + 1;
            let room = EXTRA_MAX_BYTES.saturating_sub(extra_cost);
            let v = t.value(room)?;
            extra_cost += v.cost;
            match v.value {
                Some(v) if extra_cost <= EXTRA_MAX_BYTES => {
                    extra.insert(field, v);
                }
                _ => {
                    problems.insert(
                        field.clone(),
                        format!(
                            "unknown field {} takes the entry's unknown fields over the \
                             {EXTRA_MAX_BYTES}-byte limit",
                            shown(&field, name.total)
                        ),
                    );
                }
            }
            continue;
        };
        // Strings are read directly, so that an over-long one can be shown
        // (its start and its length).
        let value = match t.string_value(usize::try_from(limit).unwrap_or(usize::MAX))? {
            Some(s) if s.cut() => {
                problems.insert(
                    field.clone(),
                    if field == "reference" {
                        format!(
                            "reference {:?}: path is longer than {MAX_PATH_BYTES} bytes",
                            shown(&s.text, s.total)
                        )
                    } else {
                        format!(
                            "{field} {:?} is over the {limit}-byte limit",
                            shown(&s.text, s.total)
                        )
                    },
                );
                continue;
            }
            Some(s) => Value::String(s.text),
            None => {
                let v = t.value(limit)?;
                match v.value {
                    Some(v) => v,
                    None => {
                        problems.insert(
                            field.clone(),
                            format!(
                                "{field} is {} bytes of JSON, over the {limit}-byte limit",
                                v.cost
                            ),
                        );
                        continue;
                    }
                }
            }
        };
        if let Err(why) = set_field(&mut e, &field, value) {
            problems.insert(field, format!("malformed entry: {why}"));
        }
    }
    if let Some((_, why)) = problems.into_iter().next() {
        return Ok(Err(why));
    }
    if e.symlinks.len() > MAX_SYMLINKS {
        return Ok(Err(format!(
            "entry has {} symlinks, more than the {MAX_SYMLINKS} allowed",
            e.symlinks.len()
        )));
    }
    e.extra = extra;
    Ok(Ok(e))
}

/// Decode one known field's value the way the manifest's serde rules do,
/// so the error text is serde's.
fn set_field(e: &mut RepoEntry, field: &str, v: Value) -> Result<(), serde_json::Error> {
    let text = |v: Value| serde_json::from_value::<Option<String>>(v);
    match field {
        "description" => e.description = text(v)?,
        "owner" => e.owner = text(v)?,
        "fingerprint" => e.fingerprint = text(v)?,
        "head" => e.head = text(v)?,
        "forkgroup" => e.forkgroup = text(v)?,
        "reference" => e.reference = text(v)?,
        "modified" => e.modified = lenient_seconds(v)?,
        "symlinks" => {
            e.symlinks = serde_json::from_value::<Option<Vec<String>>>(v)?.unwrap_or_default()
        }
        _ => unreachable!("only known fields are decoded here"),
    }
    Ok(())
}
