//! The `[publish]` options: grok-publish's bucket (ours).

use super::kind::{Kind, PathUse};
use super::ConfOption;

const PUBLISH: &[&str] = &["grok-publish"];

/// Every `[publish]` option, in the order the example lists them.
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "publish",
        key: "bucket",
        kind: Kind::Url {
            prefixes: &["s3://"],
            strict: true,
        },
        example: "s3://git-mirror/pub",
        alternatives: &["#bucket = s3://git-mirror"],
        default: "none (required by grok-publish)",
        read_by: PUBLISH,
        doc: "The S3 bucket grok-publish publishes the tree to, as s3://BUCKET or \
              s3://BUCKET/PREFIX. Each repository becomes a tree that git's dumb \
              HTTP protocol reads (HEAD, info/refs, objects/info/packs, the packs \
              and loose objects) under PREFIX/<manifest path>, object storage \
              under PREFIX/<its path below the toplevel>, and the manifest goes \
              to PREFIX/<the local manifest's file name>. Serve the bucket over \
              plain HTTP(S) (a website endpoint or a CDN) and replicas can pull \
              from it with site and manifest pointing there.",
        ours: true,
    },
    ConfOption {
        section: "publish",
        key: "endpoint",
        kind: Kind::Url {
            prefixes: &["http://", "https://"],
            strict: true,
        },
        example: "",
        alternatives: &["#endpoint = https://s3.example.org"],
        default: "empty (Amazon S3)",
        read_by: PUBLISH,
        doc: "The S3 API endpoint of a store other than Amazon's (Garage, Ceph, \
              MinIO, a cloud's S3-compatible service). Requests use path-style \
              addressing (ENDPOINT/BUCKET/KEY); an http:// endpoint is allowed \
              because it is named here.",
        ours: true,
    },
    ConfOption {
        section: "publish",
        key: "region",
        kind: Kind::Text,
        example: "us-east-1",
        alternatives: &["#region = garage"],
        default: "us-east-1",
        read_by: PUBLISH,
        doc: "The region requests are signed for (Garage's default is garage).",
        ours: true,
    },
    ConfOption {
        section: "publish",
        key: "profile",
        kind: Kind::Text,
        example: "",
        alternatives: &["#profile = mirror"],
        default: "$AWS_PROFILE, else default",
        read_by: PUBLISH,
        doc: "Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
              (and AWS_SESSION_TOKEN) when they are set, else from this profile \
              of the shared credentials file ($AWS_SHARED_CREDENTIALS_FILE, \
              else ~/.aws/credentials). Instance roles are not looked up.",
        ours: true,
    },
    ConfOption {
        section: "publish",
        key: "statusfile",
        kind: Kind::Path(PathUse::WrittenFile),
        example: "${core:toplevel}/.grok-publish.status",
        alternatives: &[],
        default: "${core:toplevel}/.grok-publish.status",
        read_by: PUBLISH,
        doc: "What grok-publish remembers between runs: what each repository's \
              published refs were, and since when the bucket holds files no \
              longer listed (removed once [fsck] consumer_grace has passed, so a \
              clone reading the old lists meanwhile finds them). Its lock \
              (.<name>.lock beside it) makes publishing runs take turns.",
        ours: true,
    },
    ConfOption {
        section: "publish",
        key: "notify_peers",
        kind: Kind::Lines,
        example: "",
        alternatives: &["#notify_peers = http://tier2.example:9232/"],
        default: "empty (nobody is told)",
        read_by: PUBLISH,
        doc: "The notify_listen URLs of the replicas that pull from the \
              bucket (separated by blanks or newlines): once a run has \
              uploaded the manifest, the manifest paths of the repositories \
              it changed in the bucket are POSTed to each, signed with \
              [pull] notify_secret_file, so they fetch from the bucket at \
              once. Best effort, as grok-pull's notify_peers: 5 seconds a \
              request, a peer that does not answer is logged once, and the \
              run's exit status does not depend on it.",
        ours: true,
    },
    ConfOption {
        section: "publish",
        key: "bundles",
        kind: Kind::Path(PathUse::DirOrCreatable),
        example: "",
        alternatives: &["#bundles = /srv/bundles"],
        default: "empty (no bundles published)",
        read_by: PUBLISH,
        doc: "grok-bundle's output directory (its -o). Its bundles and bundle \
              lists are published to PREFIX/bundles/ after the repositories, \
              each file only when it changed, so git clone \
              --bundle-uri=https://CDN/bundles/<path>/bundle-list gets the bulk \
              of a repository from the CDN.",
        ours: true,
    },
];
