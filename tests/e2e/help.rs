//! Every program's help starts with `usage: <program> ...`, as the help of
//! grokmirror's programs (argparse) does: scripts and operators grep for
//! that line.

use crate::support::{grok, oracle, run};

/// Ours beyond the reference's six; their help starts the same way.
const OURS_ONLY: [&str; 4] = [
    "grok-snapshot",
    "grok-shallow-tar",
    "grok-pi-indexer",
    "grok-publish",
];

const PROGRAMS: [&str; 6] = [
    "grok-manifest",
    "grok-pull",
    "grok-fsck",
    "grok-bundle",
    "grok-dumb-pull",
    "grok-pi-piper",
];

fn first_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn help_starts_with_usage_like_the_reference() {
    for program in PROGRAMS {
        for flag in ["--help", "-h"] {
            let out = run(grok(program).arg(flag));
            assert_success!(out, "{program} {flag}");
            let line = first_line(&out);
            assert!(
                line.starts_with(&format!("usage: {program} ")),
                "{program} {flag}: {line:?}"
            );
        }
        // The reference says the same on its first line.
        let theirs = first_line(&run(oracle(program).arg("--help")));
        assert!(
            theirs.starts_with(&format!("usage: {program} ")),
            "reference {program}: {theirs:?}"
        );
    }
}

/// Our programs that grokmirror 2.0.12 does not have: their help starts the
/// same way as the others'.
#[test]
fn help_of_our_own_programs_starts_with_usage() {
    for program in OURS_ONLY {
        let out = run(grok(program).arg("--help"));
        assert_success!(out, "{program} --help");
        let line = first_line(&out);
        assert!(
            line.starts_with(&format!("usage: {program} ")),
            "{program}: {line:?}"
        );
    }
}
