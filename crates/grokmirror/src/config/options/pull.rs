//! The options of `[pull]`: what grok-pull mirrors and how.

use super::kind::{Kind, ANY_INT, BOOL, GLOBS, POSITIVE, TEXT, WRITTEN_FILE};
use super::ConfOption;
use super::{PULL, PULL_FSCK, PULL_PUBLISH};

/// The options of the section, in the order the example config lists them.
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "pull",
        key: "projectslist",
        kind: WRITTEN_FILE,
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
        kind: TEXT,
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
        kind: BOOL,
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
        kind: Kind::Commands,
        example: "",
        alternatives: &[
            "#post_update_hook = /usr/local/bin/refresh-cgit-cache",
            "# (a mirror of public-inbox archives, with grok-pi-indexer:)",
            "#post_update_hook = /usr/bin/grok-pi-indexer -c /etc/public-inbox/config -t ${core:toplevel} update",
        ],
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
        kind: Kind::Commands,
        example: "",
        alternatives: &["#post_clone_complete_hook = /usr/bin/grok-pi-indexer -c /etc/public-inbox/config -t ${core:toplevel} init"],
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
        kind: Kind::Commands,
        example: "",
        alternatives: &["#post_work_complete_hook = /usr/bin/grok-pi-indexer -c /etc/public-inbox/config -t ${core:toplevel} extindex"],
        default: "empty (no hook)",
        read_by: PULL,
        doc: "Commands to run, one per line, whenever the work queue becomes \
                  empty, e.g. to tell a front end that the mirror is consistent.",
        ours: false,
    },
    ConfOption {
        section: "pull",
        key: "purge",
        kind: BOOL,
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
        kind: GLOBS,
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
        kind: Kind::Int {
            min: 1,
            max: 99,
            empty_ok: false,
        },
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
        kind: TEXT,
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
        kind: TEXT,
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
        kind: ANY_INT,
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
        kind: ANY_INT,
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
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            empty_ok: true,
        },
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
        kind: GLOBS,
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
        kind: GLOBS,
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
        key: "shard",
        kind: Kind::Shard,
        example: "",
        alternatives: &["#shard = 0/3", "#shard = ordinal/3"],
        default: "empty (this replica mirrors every repository)",
        read_by: PULL,
        doc: "Make this replica shard K of N of one mirror: it mirrors only the \
                  repositories whose fork group hashes to K (rendezvous hashing; \
                  the group is the manifest entry's forkgroup, else that of the \
                  repository it names as reference, else its own path), so forks \
                  stay together and going from N to N+1 shards moves about 1/(N+1) \
                  of the repositories. The others are treated as if exclude matched \
                  them. `ordinal/N` takes K from the host name's trailing -K, as a \
                  Kubernetes StatefulSet pod's (grok-pull-2 is shard 2). The \
                  environment variable GROKMIRROR_SHARD, when set and not empty, \
                  replaces this value.\n\n\
                  Changing it never deletes a repository by itself: one that left \
                  this shard is purged only under purge, nopurge and purgeprotect, \
                  and only once the shard that now holds it lists it in its \
                  manifest (see shard_peers). grok-manifest --shard-map N prints \
                  the routing map for the front.",
        ours: true,
    },
    ConfOption {
        section: "pull",
        key: "shard_peers",
        kind: Kind::Lines,
        example: "",
        alternatives: &["#shard_peers = http://grok-pull-{K}.grok-pull/manifest.js.gz"],
        default: "empty (repositories that left this shard are kept)",
        read_by: PULL,
        doc: "The manifest URLs (http://, https:// or file://) of the shards, one \
                  per line in shard order (this replica's own line is not read), or \
                  one URL in which {K} stands for the shard number. A repository \
                  that left this shard is purged only when the manifest of the shard \
                  that now holds it lists it; while that shard's manifest cannot be \
                  read, or with no shard_peers, it is kept and one line says so.",
        ours: true,
    },
    ConfOption {
        section: "pull",
        key: "ffonly",
        kind: GLOBS,
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
        kind: ANY_INT,
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
                  kept; toplevel, manifest, objstore, socket, metrics_listen \
                  and the notify_* options need a restart).",
        ours: false,
    },
    ConfOption {
        section: "pull",
        key: "socket",
        kind: WRITTEN_FILE,
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
        kind: WRITTEN_FILE,
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
        kind: TEXT,
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
        key: "notify_listen",
        kind: TEXT,
        example: "",
        alternatives: &["#notify_listen = 192.0.2.10:9232"],
        default: "empty (no endpoint)",
        read_by: PULL,
        doc: "The daemon (-o) takes push notifications over HTTP here \
                  (host:port, bound to that address only): a POST whose body \
                  holds manifest paths, one per line as on socket (or a Google \
                  Pub/Sub push message with the path in message.attributes.repo, \
                  as grokmirror's contrib/pubsubv1.py takes), signed with \
                  notify_secret_file: header X-Hub-Signature-256: sha256=<hex of \
                  the HMAC-SHA256 of the body>. Answers 204 when taken, 401 \
                  unsigned or wrongly signed, 400 a bad path, 413 over 64 KiB or \
                  256 paths, 405 not a POST, 429 over the rate limit (20 requests \
                  at once, then 2 a second per address; 100 and 20 for all). \
                  Refusals are logged once per address, then counted once a \
                  minute. Without a readable notify_secret_file grok-pull -o \
                  refuses to start (exit 2). A change needs a restart.",
        ours: true,
    },
    ConfOption {
        section: "pull",
        key: "notify_secret_file",
        kind: TEXT,
        example: "",
        alternatives: &["#notify_secret_file = /etc/grokmirror/notify.secret"],
        default: "empty (no secret: notify_listen and notify_peers cannot be used)",
        read_by: PULL_PUBLISH,
        doc: "A file holding the secret shared by the replicas that notify \
                  each other (its trailing newline is not part of it), e.g. made \
                  with `openssl rand -hex 32 > FILE; chmod 600 FILE`. It checks \
                  what notify_listen receives and signs what notify_peers sends, \
                  so a hub and its leaves share one secret (grok-publish signs its \
                  [publish] notify_peers with it too). --config-check warns \
                  when group or others may read it. A change needs a restart.",
        ours: true,
    },
    ConfOption {
        section: "pull",
        key: "notify_peers",
        kind: Kind::Lines,
        example: "",
        alternatives: &["#notify_peers = http://leaf1.example:9232/ http://leaf2.example:9232/"],
        default: "empty (nobody is told)",
        read_by: PULL,
        doc: "The notify_listen URLs of the replicas that mirror this one \
                  (separated by blanks or newlines): once a batch of fetches is \
                  done (daemon or single run), the paths of the repositories that \
                  were cloned or updated are POSTed to each, signed with \
                  notify_secret_file, at most 256 to a request, 5 seconds per \
                  request. A peer that does not answer is logged once until it \
                  answers again; it never holds up or fails the pull (the peer's \
                  own refresh still catches up). A change needs a restart.",
        ours: true,
    },
    ConfOption {
        section: "pull",
        key: "stale_after",
        kind: Kind::Duration {
            zero_ok: false,
            empty_ok: true,
        },
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
        kind: Kind::Number { min: 0.0 },
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
        kind: POSITIVE,
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
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            empty_ok: false,
        },
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
];
