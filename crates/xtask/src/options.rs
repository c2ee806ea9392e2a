//! Every option of the grokmirror config file, described once. The example
//! config (`grokmirror.conf.example`) and the `grokmirror.conf(5)` man page
//! are both generated from this table, so they cannot drift apart.
//!
//! The prose is ours; the option names, meanings and defaults are the
//! contract shared with grokmirror 2.x (SPEC §1.7).

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

const ALL: &[&str] = &["grok-manifest", "grok-pull", "grok-fsck"];
/// The [core] options grok-bundle reads as well.
const ALL_AND_BUNDLE: &[&str] = &["grok-manifest", "grok-pull", "grok-fsck", "grok-bundle"];
const PULL: &[&str] = &["grok-pull"];
const FSCK: &[&str] = &["grok-fsck"];
const MANIFEST: &[&str] = &["grok-manifest"];
const PULL_FSCK: &[&str] = &["grok-pull", "grok-fsck"];
const MANIFEST_PULL_FSCK: &[&str] = &["grok-manifest", "grok-pull", "grok-fsck"];

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
    ]
}

/// Every option the suite reads, in the order the example config lists them.
pub fn options() -> &'static [ConfOption] {
    &[
        // ---------------------------------------------------------------- core
        ConfOption {
            section: "core",
            key: "toplevel",
            example: "/var/lib/git/mirror",
            alternatives: &[],
            default: "none (required)",
            read_by: ALL_AND_BUNDLE,
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
            example: "no",
            alternatives: &[],
            default: "no",
            read_by: ALL_AND_BUNDLE,
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
            example: "/var/log/grokmirror/mirror.log",
            alternatives: &["#log = ${toplevel}/log"],
            default: "none (messages go to standard error only)",
            read_by: ALL_AND_BUNDLE,
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
            example: "info",
            alternatives: &["#loglevel = debug"],
            default: "info",
            read_by: ALL_AND_BUNDLE,
            doc: "How much goes into the log file: \"info\" for progress and \
                  problems, \"debug\" for everything including each git command \
                  (a lot).",
            ours: false,
        },
        ConfOption {
            section: "core",
            key: "objstore",
            example: "${toplevel}/objstore",
            alternatives: &[],
            default: "${toplevel}/objstore",
            read_by: ALL,
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
            example: "no",
            alternatives: &[],
            default: "no",
            read_by: ALL,
            doc: "Copy objects into object storage with low-level git commands \
                  instead of git fetch. Much cheaper on busy mirrors, where fetch \
                  spends long negotiating what each side has.",
            ours: false,
        },
        ConfOption {
            section: "core",
            key: "private",
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
        // ------------------------------------------------------------ manifest
        ConfOption {
            section: "manifest",
            key: "pretty",
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
            example: "no",
            alternatives: &[],
            default: "no",
            read_by: MANIFEST,
            doc: "Only list repositories containing a git-daemon-export-ok file, \
                  the marker git daemon uses (like grok-manifest -c).",
            ours: false,
        },
        // -------------------------------------------------------------- remote
        ConfOption {
            section: "remote",
            key: "site",
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
        // ---------------------------------------------------------------- pull
        ConfOption {
            section: "pull",
            key: "projectslist",
            example: "${core:toplevel}/projects.list",
            alternatives: &[],
            default: "empty (no list is written)",
            read_by: PULL,
            doc: "Write the list of mirrored repositories here, one path per line, \
                  for cgit or gitweb.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "projectslist_trimtop",
            example: "",
            alternatives: &["#projectslist_trimtop = /pub/scm/"],
            default: "empty",
            read_by: PULL,
            doc: "Cut this prefix from the paths in projectslist, for a web front \
                  end that starts below the top level.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "projectslist_symlinks",
            example: "no",
            alternatives: &[],
            default: "no",
            read_by: PULL,
            doc: "List symlinked repository names in projectslist too. They are \
                  usually legacy aliases best kept out of web listings.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "post_update_hook",
            example: "",
            alternatives: &["#post_update_hook = /usr/local/bin/refresh-cgit-cache"],
            default: "empty (no hook)",
            read_by: PULL,
            doc: "Commands to run after a repository was cloned or updated, one per \
                  line; the repository's full path is added as the last argument. \
                  Arguments are split the way a shell would, but no shell runs.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "post_clone_complete_hook",
            example: "",
            alternatives: &[],
            default: "empty (no hook)",
            read_by: PULL,
            doc: "Commands to run, one per line, once the clones pending in a run \
                  are all done; they get the full paths of the new repositories on \
                  standard input, one per line.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "post_work_complete_hook",
            example: "",
            alternatives: &[],
            default: "empty (no hook)",
            read_by: PULL,
            doc: "Commands to run, one per line, whenever the work queue becomes \
                  empty, e.g. to tell a front end that the mirror is consistent.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "purge",
            example: "no",
            alternatives: &["#purge = yes"],
            default: "no",
            read_by: PULL,
            doc: "Delete local repositories that are no longer in the remote \
                  manifest (after include/exclude). Full mirrors usually want yes; \
                  grok-pull -p purges once. Repositories matching nopurge or \
                  ffonly, and repositories others borrow objects from, are kept.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "nopurge",
            example: "",
            alternatives: &["#nopurge = /gitolite-admin.git"],
            default: "empty",
            read_by: PULL,
            doc: "Shell-style patterns (one per line) of repositories a purge must \
                  never delete, e.g. ones that exist only on this replica.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "purgeprotect",
            example: "5",
            alternatives: &[],
            default: "5",
            read_by: PULL,
            doc: "Refuse to purge when it would delete this percentage of the local \
                  repositories or more: a manifest that suddenly shrank more \
                  likely means trouble on the origin than mass deletion. \
                  grok-pull --force-purge overrides it once. A whole number from \
                  1 to 99; anything else is refused (exit status 2) where \
                  grokmirror 2.0.12 warns and uses 5.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "default_owner",
            example: "Grokmirror",
            alternatives: &[],
            default: "Grokmirror",
            read_by: PULL,
            doc: "The gitweb.owner to record when the manifest names no owner.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "remotename",
            example: "_grokmirror",
            alternatives: &[],
            default: "_grokmirror",
            read_by: PULL,
            doc: "Name of the git remote pointing at the origin in each mirrored \
                  repository.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "pull_threads",
            example: "4",
            alternatives: &[],
            default: "half the CPUs, at least 1 (also when set to 0)",
            read_by: PULL,
            doc: "How many repositories to clone or fetch at once. Be kind to the \
                  origin: many servers limit connections per address.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "retries",
            example: "3",
            alternatives: &[],
            default: "3",
            read_by: PULL,
            doc: "How many times to try a failing fetch before counting the \
                  repository as failed for this run.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "fetch_timeout",
            example: "",
            alternatives: &["#fetch_timeout = 3600"],
            default: "empty (no limit, as in grokmirror 2.x)",
            read_by: PULL,
            doc: "Kill a fetch (with everything it started) that is still running \
                  after this many seconds; it counts as a failed try (see retries) \
                  and the repository is fetched again next run. git itself never \
                  gives up on a git:// or ssh server that stops sending in the middle \
                  of a transfer, so without a limit such a fetch holds its worker \
                  forever and a one-shot run never ends. Set it well above the time \
                  your largest repository takes to clone. For http(s) remotes git's \
                  own http.lowSpeedLimit and http.lowSpeedTime, set in the git config \
                  of the user grok-pull runs as, catch a stall without bounding a \
                  long transfer.",
            ours: true,
        },
        ConfOption {
            section: "pull",
            key: "include",
            example: "*",
            alternatives: &[
                "#include = /pub/scm/git/git.git",
                "#          /pub/scm/linux/kernel/git/torvalds/*",
            ],
            default: "*",
            read_by: PULL,
            doc: "Shell-style patterns (one per line) of manifest paths to mirror; \
                  * mirrors everything, and * also matches /.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "exclude",
            example: "",
            alternatives: &["#exclude = */linux-2.4*"],
            default: "empty",
            read_by: PULL,
            doc: "Shell-style patterns (one per line) of manifest paths to skip \
                  even though include matches them.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "ffonly",
            example: "",
            alternatives: &["#ffonly = */torvalds/linux.git"],
            default: "empty",
            read_by: PULL,
            doc: "Shell-style patterns (one per line) of repositories whose refs \
                  may only move forward: a forced push on the origin is not \
                  mirrored and the fetch is reported as failed. Such repositories \
                  are never purged.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "refresh",
            example: "300",
            alternatives: &[],
            default: "unset (grok-pull runs once, even with -o)",
            read_by: PULL,
            doc: "Seconds between manifest checks when grok-pull runs as a daemon \
                  (-o). The systemd unit in contrib/systemd needs it set. The first \
                  check after the daemon starts looks at every repository. A \
                  file:// manifest is also watched, so its changes are seen at \
                  once; the config file is watched too, and a changed one is \
                  re-read between jobs (a broken one is reported and the old one \
                  kept; toplevel, manifest, objstore and socket need a restart).",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "socket",
            example: "",
            alternatives: &["#socket = ${core:toplevel}/.updater.socket"],
            default: "empty (no socket)",
            read_by: PULL,
            doc: "A Unix socket the daemon listens on for push notifications: write \
                  a manifest path and a newline to it (e.g. from a message-bus \
                  listener) and that repository is updated at once instead of at \
                  the next refresh. Paths this mirror does not carry are logged \
                  and ignored. The socket is created with mode 0660 (owner and \
                  group only); a stale socket left by an earlier run is replaced, \
                  anything else at that path is an error.",
            ours: false,
        },
        ConfOption {
            section: "pull",
            key: "metrics_file",
            example: "",
            alternatives: &["#metrics_file = /var/lib/prometheus/node-exporter/grokmirror.prom"],
            default: "empty (no metrics)",
            read_by: PULL,
            doc: "Write statistics of each run here in the Prometheus text \
                  format, for node_exporter's textfile collector. Under the \
                  systemd unit in contrib/systemd, add its directory to \
                  ReadWritePaths.",
            ours: true,
        },
        ConfOption {
            section: "pull",
            key: "metrics_listen",
            example: "",
            alternatives: &["#metrics_listen = 127.0.0.1:9231"],
            default: "empty (no endpoint)",
            read_by: PULL,
            doc: "The daemon (-o) serves the metrics of metrics_file over HTTP at \
                  http://ADDRESS/metrics, for a Prometheus server to scrape. \
                  host:port; bind it to localhost or a management network, it \
                  has no authentication. A change needs a restart.",
            ours: true,
        },
        ConfOption {
            section: "pull",
            key: "stale_after",
            example: "1h",
            alternatives: &[],
            default: "1h",
            read_by: PULL_FSCK,
            doc: "A repository whose origin changed and that we have not caught up \
                  with for longer than this is stale: grok-pull --status lists it \
                  and exits 1, the metrics count it, grok-fsck reports it. Seconds, \
                  or a number with s, m, h or d (90s, 30m, 1h, 2d). Each run (and \
                  the daemon, after each poll and batch) records per repository \
                  what the origin advertises, what we have, the last success and \
                  the last error in .<manifest name>.freshness beside the local \
                  manifest.",
            ours: true,
        },
        ConfOption {
            section: "pull",
            key: "housekeeping_max_load",
            example: "",
            alternatives: &["#housekeeping_max_load = 8"],
            default: "the number of CPUs",
            read_by: PULL,
            doc: "The daemon tidies up after fetches (a quick repack when loose \
                  objects pile up, pack-refs, fetching a fork's new objects into \
                  its object storage) at the lowest CPU and I/O priority, one \
                  repository at a time, and waits while the one-minute load \
                  average is above this. 0 never waits. A single run (without \
                  -o) does this work before it exits, whatever the load.",
            ours: true,
        },
        ConfOption {
            section: "pull",
            key: "hook_timeout",
            example: "3600",
            alternatives: &[],
            default: "3600 (seconds)",
            read_by: PULL,
            doc: "Seconds that one command of post_update_hook, \
                  post_clone_complete_hook or post_work_complete_hook may run. A \
                  hook still running then is killed, with every process it started \
                  (its process group), and one error line names it; the pull goes \
                  on as after a failed hook. The default hour lets a hook index a \
                  big repository; it only stops one that hangs. grokmirror 2.0.12 \
                  waits for ever.",
            ours: true,
        },
        ConfOption {
            section: "pull",
            key: "shutdown_grace",
            example: "60",
            alternatives: &[],
            default: "60",
            read_by: PULL,
            doc: "Seconds that running fetches may take to finish after SIGTERM or \
                  SIGINT. grok-pull starts nothing new once told to stop; what is \
                  still running when this time is up is killed and cleaned up (a \
                  half-made clone is never visible), and the local manifest is \
                  written either way. A second signal stops at once. Keep it below \
                  the service manager's stop timeout (TimeoutStopSec=5min in \
                  contrib/systemd). 0 stops at once.",
            ours: true,
        },
        // ---------------------------------------------------------------- fsck
        ConfOption {
            section: "fsck",
            key: "frequency",
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
            key: "precious",
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
            example: "localhost",
            alternatives: &[],
            default: "localhost",
            read_by: FSCK,
            doc: "The SMTP server (port 25) to hand that mail to.",
            ours: false,
        },
    ]
}

/// What the grok-pi-piper config file is (a file of its own, not a section
/// of grokmirror.conf).
pub const PI_PIPER_DOC: &str = "grok-pi-piper reads a file of its own, given with -c \
    (by convention ~/.config/pi-piper.conf or /etc/grokmirror/pi-piper.conf), in the same \
    configparser syntax. A section is named after a public-inbox archive: [lkml] applies to \
    every repository whose path matches */lkml/git/*.git (the section name is itself a \
    shell-style pattern); when several match, the last one in the file wins; when none does, \
    [DEFAULT] applies. Every option missing from the section is taken from [DEFAULT].";

/// Every option grok-pi-piper reads from its config file, in the order the
/// example lists them (all in `[DEFAULT]` there).
pub fn pi_piper_options() -> &'static [ConfOption] {
    const PIPER: &[&str] = &["grok-pi-piper"];
    &[
        ConfOption {
            section: "DEFAULT",
            key: "pipe",
            example: "None",
            alternatives: &["#pipe = /usr/bin/procmail -m /etc/procmailrc.lkml"],
            default: "none (required; a repository without a pipe is an error, exit 2)",
            read_by: PIPER,
            doc: "The command each new message is piped to, one message per run of \
                  the command, on its standard input, oldest first. It is split into \
                  words like a shell would (quotes work, nothing else of the shell \
                  does); the program is looked up in PATH when it has no /. The \
                  special value None turns piping off: grok-pi-piper exits at once \
                  without looking at the repository (which is why the example sets it \
                  in [DEFAULT] and turns it on per inbox). When the command exits \
                  non-zero, piping stops there and that message is piped again on \
                  the next run.",
            ours: false,
        },
        ConfOption {
            section: "DEFAULT",
            key: "log",
            example: "",
            alternatives: &["#log = ~/pi-piper.log"],
            default: "none (no log file)",
            read_by: PIPER,
            doc: "Also write a log to this file (a leading ~ is expanded).",
            ours: false,
        },
        ConfOption {
            section: "DEFAULT",
            key: "loglevel",
            example: "info",
            alternatives: &["#loglevel = debug"],
            default: "info",
            read_by: PIPER,
            doc: "How much goes into the log file: info, or debug for every git \
                  command and every message's subject.",
            ours: false,
        },
        ConfOption {
            section: "DEFAULT",
            key: "shallow",
            example: "no",
            alternatives: &[],
            default: "no",
            read_by: PIPER,
            doc: "After piping, make the newest piped commit the repository's \
                  shallow boundary and drop older history with git gc --prune=now, \
                  for mirrors kept only to pipe mail. The next grok-pull fetch only \
                  brings what is new.",
            ours: false,
        },
    ]
}
