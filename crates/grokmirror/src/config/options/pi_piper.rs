//! The options of grok-pi-piper's own config file.

use super::kind::{Kind, BOOL, LOGLEVEL, WRITTEN_FILE};
use super::ConfOption;

const PIPER: &[&str] = &["grok-pi-piper"];

/// Every option grok-pi-piper reads, in the order the example lists them
/// (all in `[DEFAULT]` there).
pub(super) const OPTIONS: &[ConfOption] = &[
    ConfOption {
        section: "DEFAULT",
        key: "pipe",
        kind: Kind::CommandLine,
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
        kind: WRITTEN_FILE,
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
        kind: LOGLEVEL,
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
        kind: BOOL,
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
];
