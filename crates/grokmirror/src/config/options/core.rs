//! The options of `[core]`: where things are.

use super::kind::{Kind, PathUse, BOOL, GLOBS, LOGLEVEL, WRITTEN_FILE};
use super::ConfOption;
use super::{ALL, ALL_AND_BUNDLE, ALL_AND_SNAPSHOT, ALL_BUNDLE_SNAPSHOT, MANIFEST};

/// The options of the section, in the order the example config lists them.
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "core",
        key: "toplevel",
        kind: Kind::Path(PathUse::WritableDir),
        example: "/var/lib/git/mirror",
        alternatives: &[],
        default: "none (required)",
        read_by: ALL_BUNDLE_SNAPSHOT,
        doc: "The directory holding the mirrored bare repositories. Manifest \
                  paths are relative to it. It must be an existing directory the \
                  user the programs run as can read and write (grok-manifest given \
                  -t instead only needs to read it). A leading ~ is expanded. \
                  The root of the file system, a home directory of root or of a \
                  person (uid 1000 and up in /etc/passwd, or $HOME), and any \
                  directory containing one are refused: see allow_any_toplevel.",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "allow_any_toplevel",
        kind: BOOL,
        example: "no",
        alternatives: &[],
        default: "no",
        read_by: ALL_BUNDLE_SNAPSHOT,
        doc: "Accept a top level that is the root of the file system, a home \
                  directory of root or of a person, or contains one. The programs \
                  walk the top level and write into every bare repository they \
                  find there (fingerprints, repacks, purges), so such a top level \
                  is almost always a mistake and is refused with exit status 2. \
                  Service accounts' homes (uid below 1000) are not protected: \
                  they are often the mirror's own directory.",
        ours: true,
    },
    ConfOption {
        section: "core",
        key: "manifest",
        kind: WRITTEN_FILE,
        example: "${toplevel}/manifest.js.gz",
        alternatives: &[],
        default: "${toplevel}/manifest.js.gz",
        read_by: ALL_AND_BUNDLE,
        doc: "The manifest file: on an origin, the one grok-manifest writes and \
                  the web server publishes; on a replica, the record of what has \
                  been mirrored. It is gzip-compressed when the name ends in .gz.",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "log",
        kind: WRITTEN_FILE,
        example: "/var/log/grokmirror/mirror.log",
        alternatives: &["#log = ${toplevel}/log"],
        default: "none (messages go to standard error only)",
        read_by: ALL_BUNDLE_SNAPSHOT,
        doc: "Also append messages to this file. Several programs may share one \
                  file. The file is reopened by name whenever logrotate moves it \
                  away, so rotation needs neither copytruncate nor a signal (see \
                  contrib/logrotate). The systemd units in contrib/systemd create \
                  /var/log/grokmirror for you.",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "logfile",
        kind: WRITTEN_FILE,
        example: "${log}",
        alternatives: &[],
        default: "none",
        read_by: MANIFEST,
        doc: "The log file of grok-manifest. The Python grok-manifest reads only \
                  this name; grokmirror-rs reads \"log\" first and falls back to \
                  this one. Pointing it at ${log} keeps both behaving the same.",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "loglevel",
        kind: LOGLEVEL,
        example: "info",
        alternatives: &["#loglevel = debug"],
        default: "info",
        read_by: ALL_BUNDLE_SNAPSHOT,
        doc: "How much goes into the log file: \"info\" for progress and \
                  problems, \"debug\" for everything including each git command \
                  (a lot).",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "objstore",
        kind: Kind::Path(PathUse::DirOrCreatable),
        example: "${toplevel}/objstore",
        alternatives: &[],
        default: "${toplevel}/objstore",
        read_by: ALL_AND_SNAPSHOT,
        doc: "Where object-storage repositories live. When grok-fsck finds \
                  repositories sharing root commits (forks), it gathers their \
                  objects into one repository here and points each fork at it \
                  through git alternates, so common history is stored once. Keep \
                  it on the same file system as the top level, and never edit it \
                  by hand: the repositories using it break if objects disappear.",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "objstore_uses_plumbing",
        kind: BOOL,
        example: "no",
        alternatives: &[],
        default: "no",
        read_by: ALL,
        doc: "Copy objects into object storage with low-level git commands \
                  instead of git fetch. Much cheaper on busy mirrors, where fetch \
                  spends long negotiating what each side has.\n\n\
                  Whatever it says, grok-fsck seeds a new object storage by hard-linking \
                  the packs of the public repository that starts it (falling back to a \
                  fetch when it cannot): into an empty object storage that copies \
                  nothing twice and costs nothing, where a fetch re-indexes the whole \
                  history.",
        ours: false,
    },
    ConfOption {
        section: "core",
        key: "private",
        kind: GLOBS,
        example: "",
        alternatives: &["#private = */private/*"],
        default: "empty (no private repositories)",
        read_by: ALL,
        doc: "Shell-style patterns (one per line) of repositories whose objects \
                  must never be copied into a shared object-storage repository. \
                  Through alternates, any repository using an object store can \
                  serve every object in it to someone who knows its hash, so a \
                  private fork must not feed objects into a store public forks \
                  use. Matching repositories may still borrow objects from one.",
        ours: false,
    },
];
