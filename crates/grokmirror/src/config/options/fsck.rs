//! The options of `[fsck]`: maintenance done by grok-fsck.

use super::kind::{Kind, PathUse, BOOL, GLOBS, TEXT, WRITTEN_FILE};
use super::ConfOption;
use super::{FSCK, FSCK_PUBLISH, PULL_FSCK};

/// The options of the section, in the order the example config lists them.
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "fsck",
        key: "frequency",
        kind: Kind::Int {
            min: 1,
            max: 36_500,
            empty_ok: false,
        },
        example: "30",
        alternatives: &[],
        default: "30",
        read_by: FSCK,
        doc: "Check each repository every this many days. A new repository gets \
                  its first check on a random day within the period, so the work \
                  spreads out instead of landing on one night.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "statusfile",
        kind: WRITTEN_FILE,
        example: "${core:toplevel}/fsck.status.js",
        alternatives: &[],
        default: "none (required by grok-fsck)",
        read_by: FSCK,
        doc: "Where grok-fsck remembers when each repository was last checked \
                  and repacked. Its directory must exist.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "ignore_errors",
        kind: Kind::Lines,
        example: "notice:\n\
                      warning: disabling bitmap writing\n\
                      ignoring extra bitmap file\n\
                      missingTaggerEntry\n\
                      missingSpaceBeforeDate",
        alternatives: &[],
        default: "empty",
        read_by: FSCK,
        doc: "Lines of git output containing any of these texts (one per line) \
                  are not treated as errors. The ones here are harmless messages \
                  and old-history quirks seen in real repositories.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "reclone_on_errors",
        kind: Kind::Lines,
        example: "fatal: bad tree object\n\
                      fatal: Failed to traverse parents\n\
                      missing commit\n\
                      missing blob\n\
                      missing tree\n\
                      broken link",
        alternatives: &[],
        default: "empty",
        read_by: FSCK,
        doc: "When git's output contains any of these texts (one per line), the \
                  repository is marked for re-cloning and the next grok-pull run \
                  replaces it with a fresh copy. Only meaningful on replicas: an \
                  origin has nowhere to clone from.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "repack",
        kind: BOOL,
        example: "yes",
        alternatives: &[],
        default: "yes",
        read_by: FSCK,
        doc: "Repack repositories when they need it. Leave it on.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "extra_repack_flags",
        kind: TEXT,
        example: "",
        alternatives: &["#extra_repack_flags = --threads=2 --window-memory=1g"],
        default: "empty",
        read_by: PULL_FSCK,
        doc: "Flags added to every git repack. grok-fsck already picks the \
                  flags each kind of repository needs (standalone, object storage, \
                  fork), including bitmaps where they help; use this for resource \
                  limits.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "extra_repack_flags_full",
        kind: TEXT,
        example: "--window=250 --depth=50",
        alternatives: &[],
        default: "empty",
        read_by: FSCK,
        doc: "Flags added, on top of extra_repack_flags, to full repacks only \
                  (a deeper delta search: slower, smaller packs).",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "commitgraph",
        kind: Kind::BoolOr(&["never"]),
        example: "yes",
        alternatives: &[],
        default: "yes",
        read_by: FSCK,
        doc: "Write commit-graph files, which speed up history walks. Write \
                  \"yes\" or \"no\": grokmirror 2.0.12 only recognises \"yes\" \
                  here.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "prune",
        kind: BOOL,
        example: "yes",
        alternatives: &[],
        default: "yes",
        read_by: FSCK,
        doc: "Remove unreachable loose objects, but only where that is safe: \
                  never from a repository others borrow objects from. Write \"yes\" \
                  or \"no\": grokmirror 2.0.12 only recognises \"yes\" here.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "consumer_grace",
        kind: Kind::Duration {
            zero_ok: true,
            empty_ok: false,
        },
        example: "14d",
        alternatives: &["#consumer_grace = 0"],
        default: "14d",
        read_by: FSCK_PUBLISH,
        doc: "How long an object stays on disk after it stopped being \
                  reachable in the mirror (a force-push or a deleted branch at the \
                  origin), in the repositories and in object storage, so clones \
                  made with --shared or --reference, or whose alternates point into \
                  the mirror, keep what they borrowed. Seconds, or a number with s, \
                  m, h, d or w (14d, 2w, 1d12h); never less than a day. Unreachable objects \
                  go into cruft packs (git 2.37 or newer; an older git keeps them \
                  all) and leave the disk once the grace has passed. 0 restores \
                  grokmirror 2.0.12's behaviour, which drops them from object \
                  storage at once. grok-publish keeps files that left a published \
                  repository's lists in the bucket as long.",
        ours: true,
    },
    ConfOption {
        section: "fsck",
        key: "precious",
        kind: Kind::BoolOr(&["always"]),
        example: "yes",
        alternatives: &["#precious = always"],
        default: "yes",
        read_by: FSCK,
        doc: "Set git's preciousObjects extension on repositories others borrow \
                  objects from, so a stray git gc or prune run by hand cannot delete \
                  objects their dependants need. With \"yes\", grok-fsck lifts it \
                  for the length of its own repacks (so packs can be consolidated); \
                  with \"always\" it stays on even then, and the repositories only \
                  ever grow. \"no\" leaves it off.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "baselines",
        kind: GLOBS,
        example: "",
        alternatives: &["#baselines = */kernel/git/next/linux-next.git"],
        default: "empty",
        read_by: FSCK,
        doc: "Shell-style patterns (one per line) of repositories holding most \
                  of the objects their forks have. Fetches into forks then only \
                  advertise these repositories' refs from the shared object \
                  storage (core.alternateRefsPrefixes) instead of every fork's, \
                  which makes negotiation much cheaper in big fork groups.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "islandcores",
        kind: GLOBS,
        example: "",
        alternatives: &["#islandcores = */kernel/git/torvalds/linux.git"],
        default: "empty",
        read_by: FSCK,
        doc: "Shell-style patterns (one per line) of the repository most cloned \
                  in its fork group. Object storage is repacked with delta islands \
                  (one per fork) so each fork can be served from the pack; the \
                  island core gets first pick of the best deltas (pack.islandCore).",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "obstrepo_merge_strategy",
        kind: Kind::Words(&["exact", "loose", "blobs", ""]),
        example: "exact",
        alternatives: &["#obstrepo_merge_strategy = loose"],
        default: "exact",
        read_by: FSCK,
        doc: "When two object-storage repositories turn out to hold related \
                  history, how alike they must be to be merged into one: \"exact\" \
                  (the very same root commits), \"loose\" (shared roots where one \
                  set contains the other or they differ by at most one root each) \
                  or \"blobs\" (most file contents in common, which also catches \
                  rewritten histories; slow, with a per-repository cache in \
                  grokmirror.blobs).",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "preload_bundle_outdir",
        kind: Kind::Path(PathUse::DirOrCreatable),
        example: "",
        alternatives: &["#preload_bundle_outdir = /srv/www/preload"],
        default: "empty (no bundles)",
        read_by: FSCK,
        doc: "Write a git bundle of every object-storage repository here, for \
                  replicas that set preload_bundle_url. Only for large hub sites.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "threads",
        kind: Kind::Int {
            min: 1,
            max: 1024,
            empty_ok: false,
        },
        example: "1",
        alternatives: &[],
        default: "1",
        read_by: FSCK,
        doc: "How many repositories to repack and check at once. git repack \
                  already spreads its delta search over every CPU; more than one \
                  mainly helps collections of many small repositories on fast \
                  disks.",
        ours: true,
    },
    ConfOption {
        section: "fsck",
        key: "report_to",
        kind: TEXT,
        example: "root",
        alternatives: &[],
        default: "root",
        read_by: FSCK,
        doc: "Who gets the mail listing critical errors found during a run. No \
                  mail is sent when there were none.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "report_from",
        kind: TEXT,
        example: "root",
        alternatives: &[],
        default: "root",
        read_by: FSCK,
        doc: "The sender of that mail.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "report_subject",
        kind: TEXT,
        example: "",
        alternatives: &["#report_subject = grok-fsck errors on mirror1"],
        default: "empty, meaning \"grok-fsck errors on HOSTNAME (CONFIGFILE)\"",
        read_by: FSCK,
        doc: "Its subject line.",
        ours: false,
    },
    ConfOption {
        section: "fsck",
        key: "report_mailhost",
        kind: TEXT,
        example: "localhost",
        alternatives: &[],
        default: "localhost",
        read_by: FSCK,
        doc: "The SMTP server (port 25) to hand that mail to.",
        ours: false,
    },
];
