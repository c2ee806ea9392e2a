//! The options of `[manifest]`: how grok-manifest builds the manifest.

use super::kind::{BOOL, GLOBS};
use super::ConfOption;
use super::{MANIFEST, MANIFEST_PULL_FSCK};

/// The options of the section, in the order the example config lists them.
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "manifest",
        key: "pretty",
        kind: BOOL,
        example: "no",
        alternatives: &[],
        default: "no",
        read_by: MANIFEST_PULL_FSCK,
        doc: "Write manifests as indented JSON with sorted keys: bigger and \
                  slower, but easy to read and diff.",
        ours: false,
    },
    ConfOption {
        section: "manifest",
        key: "ignore",
        kind: GLOBS,
        example: "",
        alternatives: &["#ignore = */testing/*", "#         */scratch/*"],
        default: "empty (nothing is skipped)",
        read_by: MANIFEST,
        doc: "Shell-style patterns (one per line) of paths to leave out of the \
                  manifest. They are matched against the full path on disk, and \
                  * also matches /. Replaced by grok-manifest -i when given.",
        ours: false,
    },
    ConfOption {
        section: "manifest",
        key: "fetch_objstore",
        kind: BOOL,
        example: "no",
        alternatives: &[],
        default: "no",
        read_by: MANIFEST,
        doc: "After a push, also fetch the new objects into the repository's \
                  object storage (like grok-manifest -o). Saves work when the same \
                  objects get pushed to a sibling soon after, but makes the hook \
                  slower; otherwise grok-fsck picks them up on its next run.",
        ours: false,
    },
    ConfOption {
        section: "manifest",
        key: "check_export_ok",
        kind: BOOL,
        example: "no",
        alternatives: &[],
        default: "no",
        read_by: MANIFEST,
        doc: "Only list repositories containing a git-daemon-export-ok file, \
                  the marker git daemon uses (like grok-manifest -c).",
        ours: false,
    },
];
