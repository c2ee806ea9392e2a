//! The options of `[remote]`: where a replica finds the origin.

use super::kind::{Kind, PathUse, POSITIVE, TEXT};
use super::ConfOption;
use super::PULL;

/// The options of the section, in the order the example config lists them.
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "remote",
        key: "site",
        kind: TEXT,
        example: "https://git.example.org",
        alternatives: &[],
        default: "none (required by grok-pull)",
        read_by: PULL,
        doc: "The origin's base URL. A repository's clone URL is this followed \
                  by its manifest path. https://, http://, git:// and ssh URLs \
                  work; credentials for HTTP go in ~/.netrc, never in the URL.",
        ours: false,
    },
    ConfOption {
        section: "remote",
        key: "manifest",
        kind: Kind::Url {
            prefixes: &["http://", "https://", "file:///"],
            strict: true,
        },
        example: "${site}/manifest.js.gz",
        alternatives: &["#manifest = file:///srv/nfs/origin/manifest.js.gz"],
        default: "none (required unless manifest_command is set)",
        read_by: PULL,
        doc: "Where the origin publishes its manifest: an http(s):// URL \
                  (asked with If-Modified-Since, so an unchanged manifest costs one \
                  small request) or a file:// URL (its modification time is \
                  compared).",
        ours: false,
    },
    ConfOption {
        section: "remote",
        key: "manifest_command",
        kind: Kind::Path(PathUse::Executable),
        example: "",
        alternatives: &["#manifest_command = /usr/local/bin/grok-get-gl-manifest.sh"],
        default: "empty (use manifest)",
        read_by: PULL,
        doc: "A program to run instead of downloading \"manifest\". It must exit \
                  0 and print the whole manifest as JSON, exit 127 and print \
                  nothing when the manifest has not changed since it last ran, or \
                  exit 1 and print what went wrong. When grok-pull wants the \
                  manifest regardless (first run, -n), it passes --force. \
                  contrib/gitolite has one for origins run by gitolite.",
        ours: false,
    },
    ConfOption {
        section: "remote",
        key: "preload_bundle_url",
        kind: Kind::Url {
            prefixes: &["http://", "https://"],
            strict: false,
        },
        example: "",
        alternatives: &["#preload_bundle_url = https://cdn.example.org/preload/"],
        default: "empty (clone everything with git)",
        read_by: PULL,
        doc: "Base URL of git bundles that an origin offers (made by grok-fsck \
                  with preload_bundle_outdir), named after object-storage \
                  repositories. A new object-storage repository is seeded from its \
                  bundle, when there is one, before anything is fetched. Only worth \
                  it when mirroring a whole large collection.",
        ours: false,
    },
    ConfOption {
        section: "remote",
        key: "manifest_max_bytes",
        kind: POSITIVE,
        example: "536870912",
        alternatives: &[],
        default: "536870912 (512 MiB)",
        read_by: PULL,
        doc: "Refuse a remote manifest larger than this many bytes, as sent \
                  or once decompressed, from any source (http(s), file:// or \
                  manifest_command, whose output is counted as it is printed; a \
                  command that prints more is killed). The remote manifest is \
                  untrusted input, read as a stream and never held whole; the cap \
                  bounds how much of a corrupt or malicious one (a gzip bomb, a \
                  command that never stops printing) is read at all.",
        ours: true,
    },
    ConfOption {
        section: "remote",
        key: "manifest_timeout",
        kind: POSITIVE,
        example: "300",
        alternatives: &[],
        default: "300 (seconds)",
        read_by: PULL,
        doc: "Give up fetching the remote manifest over http(s) when the origin \
                  sends nothing for this many seconds: while connecting (at most 30 \
                  seconds), while waiting for its answer, or between two pieces of the \
                  body. An origin that stalls half-way through a response then fails \
                  the run (or, with refresh, this poll) with an error naming the URL, \
                  and nothing is changed. It bounds silence, not the whole download: \
                  a large manifest on a slow link is fine while bytes keep coming. \
                  A manifest_command, though, may run for this long in all: past it \
                  the command is killed with every process it started, with one \
                  error line naming it and this setting. grokmirror 2.x waits the \
                  same 300 seconds over http(s) but has no option for it, and waits \
                  for a manifest_command for ever.",
        ours: true,
    },
];
