//! Our config reader against Python's own configparser (with
//! ExtendedInterpolation, as grokmirror uses it): every option grokmirror
//! reads, plus interpolation, continuation lines, comments and booleans.
//! Python is asked to dump its view as JSON and the two must agree.

use crate::support::configparser::{our_view, python_view};

/// Every option grokmirror 2.0.12 reads (its example config and the code),
/// written with the syntax variations configparser allows.
const EVERY_OPTION: &str = r#"
# A comment line
; another comment style
[DEFAULT]
base = /var/lib/git

[core]
toplevel = ${base}/mirror
manifest = ${toplevel}/manifest.js.gz
log: ${toplevel}/log
logfile = ${log}
loglevel = info
objstore = ${toplevel}/objstore
objstore_uses_plumbing = Yes
private = */private/*
    */secret/*

[manifest]
pretty = no
ignore = /testing/*
         /private/*

         # a comment inside the value is dropped, the blank line is kept
         /scratch/*
fetch_objstore = off
check_export_ok = FALSE

[remote]
site = https://git.kernel.org
manifest = ${site}/manifest.js.gz
manifest_command = /usr/local/bin/grok-get-gl-manifest.sh
preload_bundle_url = https://cdn.example.com/preload/

[pull]
projectslist = ${core:toplevel}/projects.list
projectslist_trimtop =
projectslist_symlinks = no
post_update_hook = /usr/local/bin/hook-one --flag
    /usr/local/bin/hook-two
post_clone_complete_hook = /usr/local/bin/cloned
post_work_complete_hook = /usr/local/bin/done
purge = yes
nopurge = /gitolite-admin.git
purgeprotect = 5
default_owner = Grokmirror User
remotename = _grokmirror
pull_threads = 5
retries = 3
include = /pub/scm/linux/kernel/git/torvalds/linux.git
          /pub/scm/linux/kernel/git/stable/linux.git
exclude = */linux-2.4*
ffonly = */torvalds/linux.git
refresh = 900
socket = ${core:toplevel}/.updater.socket
price = 100$$ per repo

[fsck]
frequency = 30
statusfile = ${core:toplevel}/fsck.status.js
ignore_errors = notice:
                warning: disabling bitmap writing
                ignoring extra bitmap file
                missingTaggerEntry
                missingSpaceBeforeDate
reclone_on_errors = fatal: bad tree object
                    fatal: Failed to traverse parents
                    missing commit
                    missing blob
                    missing tree
                    broken link
repack = 1
extra_repack_flags =
extra_repack_flags_full = --window=250 --depth=50
commitgraph = on
prune = yes
precious = always
baselines = */kernel/git/next/linux-next.git
islandcores = */kernel/git/torvalds/linux.git
preload_bundle_outdir = /some/http/accessible/path
obstrepo_merge_strategy = exact
report_to = root
report_from = root
report_subject = git fsck errors on my beautiful replica
report_mailhost = localhost
Mixed_Case_Key = kept lowercase
spaced key  =  value with  inner  spaces

[broken]
missing = ${nope}
loop_a = ${loop_b}
loop_b = ${loop_a}
bad_dollar = cost $5
cross_missing = ${nosuch:key}
"#;

#[test]
fn every_grokmirror_option_reads_the_same_as_python() {
    let ours = our_view(EVERY_OPTION);
    let theirs = python_view(EVERY_OPTION);
    assert_eq!(ours, theirs);
    // The comparison covers what matters (so it can't pass on two empty views).
    assert_eq!(theirs["core"]["toplevel"]["value"], "/var/lib/git/mirror");
    assert_eq!(
        theirs["manifest"]["ignore"]["value"],
        "/testing/*\n/private/*\n\n/scratch/*"
    );
    assert_eq!(theirs["pull"]["price"]["value"], "100$ per repo");
    assert_eq!(theirs["fsck"]["commitgraph"]["bool"], true);
    assert_eq!(
        theirs["broken"]["loop_a"]["error"],
        "InterpolationDepthError"
    );
}

#[test]
fn continuation_and_comment_corner_cases_read_the_same_as_python() {
    let cases = [
        "[s]\nk = a\n\tb\n  c\n",
        "[s]\nk = a\n\n\n  b\n\n",
        "[s]\nk =\n  first\n  second\n",
        "[s]\nk = v\n# comment\n  not a continuation? yes it is\n",
        "[s]\n  indented = key\n    continuation\n",
        "[s]\nk = v ; not an inline comment\n",
        "[s]\nk = v # not an inline comment either\n",
        "[s]\na = 1\n[t]\nb = ${s:a}${s:a}\n",
        "[s]\nk : colon = value\n",
        "[s]\nk = a=b:c\n",
        "[s]\n[t] junk\nk = v\n",
        "[s]\r\nk = crlf\r\n  more\r\n",
        "[DEFAULT]\nd = ${x}\n[s]\nx = fromsection\n",
    ];
    for text in cases {
        assert_eq!(our_view(text), python_view(text), "case {text:?}");
    }
}
