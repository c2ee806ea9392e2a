//! Every option of the grokmirror config file (and of grok-pi-piper's),
//! described once. The example config (`grokmirror.conf.example`), the
//! `grokmirror.conf(5)` man page and `pi-piper.conf.example` are generated
//! from this table by xtask, so they cannot drift apart; and xtask's
//! `option_coverage` test fails when a program reads an option that is
//! not here, so nothing is parsed that is not documented.
//!
//! The prose is ours; the option names, meanings and defaults are the
//! contract shared with grokmirror 2.x (SPEC §1.7).

mod core;
mod fsck;
mod kind;
mod manifest;
mod pi_piper;
mod publish;
mod pull;
mod remote;

use std::sync::LazyLock;

pub use kind::{Kind, PathUse};

/// One section of the config file.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// Section name, without brackets.
    pub name: &'static str,
    /// Who reads it and what it is for.
    pub doc: &'static str,
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct ConfOption {
    /// Section it lives in.
    pub section: &'static str,
    /// Option name (lower case, as configparser stores it).
    pub key: &'static str,
    /// The kind of value it takes: what `--config-check` holds it to.
    pub kind: Kind,
    /// The value the example config sets. Several lines become an indented
    /// multi-line value. Chosen to be harmless when the file is used as is.
    pub example: &'static str,
    /// Other values worth showing, written commented out below the option.
    pub alternatives: &'static [&'static str],
    /// What applies when the option is absent, in words.
    pub default: &'static str,
    /// The programs that read it.
    pub read_by: &'static [&'static str],
    /// What the option does. Paragraphs are separated by blank lines.
    pub doc: &'static str,
    /// Only grokmirror-rs reads it; grokmirror 2.0.12 ignores it.
    pub ours: bool,
}

pub(super) const ALL: &[&str] = &["grok-manifest", "grok-pull", "grok-fsck"];
/// The [core] options grok-bundle and grok-shallow-tar read as well.
pub(super) const ALL_AND_BUNDLE: &[&str] = &[
    "grok-manifest",
    "grok-pull",
    "grok-fsck",
    "grok-bundle",
    "grok-shallow-tar",
];
/// The [core] options grok-bundle, grok-snapshot and grok-shallow-tar read
/// as well.
pub(super) const ALL_BUNDLE_SNAPSHOT: &[&str] = &[
    "grok-manifest",
    "grok-pull",
    "grok-fsck",
    "grok-bundle",
    "grok-snapshot",
    "grok-shallow-tar",
];
/// The [core] options grok-snapshot reads as well.
pub(super) const ALL_AND_SNAPSHOT: &[&str] =
    &["grok-manifest", "grok-pull", "grok-fsck", "grok-snapshot"];
pub(super) const PULL: &[&str] = &["grok-pull"];
pub(super) const PULL_PUBLISH: &[&str] = &["grok-pull", "grok-publish"];
pub(super) const FSCK: &[&str] = &["grok-fsck"];
pub(super) const FSCK_PUBLISH: &[&str] = &["grok-fsck", "grok-publish"];
pub(super) const MANIFEST: &[&str] = &["grok-manifest"];
pub(super) const PULL_FSCK: &[&str] = &["grok-pull", "grok-fsck"];
pub(super) const MANIFEST_PULL_FSCK: &[&str] = &["grok-manifest", "grok-pull", "grok-fsck"];

/// The sections, in the order they appear.
pub fn sections() -> &'static [Section] {
    &[
        Section {
            name: "core",
            doc: "Where things are. Every program reads this section; it must exist.",
        },
        Section {
            name: "manifest",
            doc: "How grok-manifest builds the manifest on an origin. Its \
                  command-line flags win over these values. grok-pull and \
                  grok-fsck also read \"pretty\" when they write the local manifest.",
        },
        Section {
            name: "remote",
            doc: "Where a replica finds the origin: read by grok-pull.",
        },
        Section {
            name: "pull",
            doc: "What grok-pull mirrors and how.",
        },
        Section {
            name: "fsck",
            doc: "Maintenance done by grok-fsck: repacking, checking, object \
                  storage, and the error report.",
        },
        Section {
            name: "publish",
            doc: "Where grok-publish (ours) publishes the tree: an S3-compatible \
                  bucket that replicas, CDNs and git's dumb HTTP protocol read.",
        },
    ]
}

/// Every option the suite reads, in the order the example config lists them.
pub fn options() -> &'static [ConfOption] {
    static ALL_OPTIONS: LazyLock<Vec<ConfOption>> = LazyLock::new(|| {
        [
            core::OPTIONS,
            manifest::OPTIONS,
            remote::OPTIONS,
            pull::OPTIONS,
            fsck::OPTIONS,
            publish::OPTIONS,
        ]
        .concat()
    });
    &ALL_OPTIONS
}

/// Every option grok-pi-piper reads from its config file, in the order the
/// example lists them (all in `[DEFAULT]` there).
pub fn pi_piper_options() -> &'static [ConfOption] {
    pi_piper::OPTIONS
}

/// Whether `[section] key` is an option of the table (for grok-pi-piper's
/// file, any section stands for `[DEFAULT]`: its sections are patterns).
pub fn is_documented(section: &str, key: &str) -> bool {
    options()
        .iter()
        .any(|o| o.section == section && o.key == key)
        || pi_piper_options().iter().any(|o| o.key == key)
}

/// What the grok-pi-piper config file is (a file of its own, not a section
/// of grokmirror.conf).
pub const PI_PIPER_DOC: &str = "grok-pi-piper reads a file of its own, given with -c \
    (by convention ~/.config/pi-piper.conf or /etc/grokmirror/pi-piper.conf), in the same \
    configparser syntax. A section is named after a public-inbox archive: [lkml] applies to \
    every repository whose path matches */lkml/git/*.git (the section name is itself a \
    shell-style pattern); when several match, the last one in the file wins; when none does, \
    [DEFAULT] applies. Every option missing from the section is taken from [DEFAULT].";
