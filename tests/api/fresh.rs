//! The checked-in man pages, completions and example config are exactly
//! what `cargo xtask all` generates now, and what they say is complete:
//! `man` (the real one) shows every flag, the config page every option,
//! and bash accepts the completion script.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::options::options;

fn root() -> PathBuf {
    xtask::workspace_root()
}

#[test]
fn checked_in_files_match_the_generators() {
    let files = xtask::all().expect("generate");
    // Guard against comparing nothing.
    assert!(files
        .iter()
        .any(|f| f.path == Path::new("man/grok-manifest.1")));
    assert!(files
        .iter()
        .any(|f| f.path == Path::new("man/grokmirror.conf.5")));
    assert!(files
        .iter()
        .any(|f| f.path == Path::new("grokmirror.conf.example")));
    let problems = xtask::stale(&root(), &files).expect("compare");
    assert!(
        problems.is_empty(),
        "generated documentation is stale:\n  {}\nrun `cargo xtask all` and commit the result",
        problems.join("\n  ")
    );
}

#[test]
fn stale_check_notices_edits_and_leftovers() {
    // The comparison itself must be able to fail: write everything into a
    // scratch tree, then damage it in each way the check claims to catch.
    let dir = tempfile::tempdir().unwrap();
    let files = xtask::all().unwrap();
    xtask::write(dir.path(), &files).unwrap();
    assert_eq!(
        xtask::stale(dir.path(), &files).unwrap(),
        Vec::<String>::new()
    );

    std::fs::write(dir.path().join("man/grok-manifest.1"), "edited by hand\n").unwrap();
    std::fs::remove_file(dir.path().join("completions/_grok-manifest")).unwrap();
    std::fs::write(
        dir.path().join("man/grok-old.1"),
        "from a removed program\n",
    )
    .unwrap();
    let problems = xtask::stale(dir.path(), &files).unwrap();
    assert_eq!(
        problems,
        vec![
            "man/grok-manifest.1 is out of date".to_string(),
            "completions/_grok-manifest is missing".to_string(),
            "man/grok-old.1 is no longer generated".to_string(),
        ]
    );
    assert_eq!(
        xtask::prune(dir.path(), &files).unwrap(),
        vec![PathBuf::from("man/grok-old.1")]
    );
}

/// What `man NAME` prints for a page found through MANPATH, as plain text.
fn man_text(page: &Path, name: &str, section: &str) -> String {
    let manpath = tempfile::tempdir().unwrap();
    let dir = manpath.path().join(format!("man{section}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(page, dir.join(format!("{name}.{section}"))).unwrap();
    let out = Command::new("man")
        .arg(section)
        .arg(name)
        .env("MANPATH", manpath.path())
        .env("MANWIDTH", "250")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C")
        .env("MAN_KEEP_FORMATTING", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run man ({e}): install man-db and groff-base (apt-get install man-db)")
        });
    assert!(
        out.status.success(),
        "man {section} {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Drop overstrike bold/underline (x\bx, _\bx) if the pager kept it.
    let raw = String::from_utf8_lossy(&out.stdout);
    let mut text = String::new();
    for c in raw.chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    // man justifies lines by widening the gaps between words: one space
    // each, keeping each line's indent.
    text.lines()
        .map(|line| {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            format!(
                "{indent}{}\n",
                body.split(' ')
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect()
}

#[test]
fn man_shows_every_flag_of_every_program() {
    for (name, cmd) in xtask::programs() {
        let text = man_text(&root().join(format!("man/{name}.1")), name, "1");
        assert!(
            text.contains("OPTIONS"),
            "{name}: no OPTIONS section:\n{text}"
        );
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                assert!(
                    text.contains(&flag),
                    "man {name} does not show {flag}:\n{text}"
                );
                checked += 1;
            }
            if let Some(short) = arg.get_short() {
                let flag = format!("-{short},");
                assert!(
                    text.contains(&flag),
                    "man {name} does not show {flag}:\n{text}"
                );
            }
            if arg.is_positional() {
                let names = arg.get_value_names().expect("positionals have value names");
                for v in names {
                    assert!(text.contains(v.as_str()), "man {name} does not show {v}");
                }
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let first_words: String = help
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                text.contains(&first_words),
                "man {name} lacks the help of {:?} ({first_words:?})",
                arg.get_id()
            );
        }
        // grok-pi-piper has the fewest: -v, -d, -c, -l.
        assert!(checked >= 4, "{name}: only {checked} long flags checked");
        assert!(text.contains("EXIT STATUS") && text.contains("SEE ALSO"));
    }
}

#[test]
fn man_shows_every_config_option() {
    let text = man_text(
        &root().join("man/grokmirror.conf.5"),
        "grokmirror.conf",
        "5",
    );
    for section in xtask::options::sections() {
        assert!(
            text.contains(&format!("[{}]", section.name)),
            "no [{}]",
            section.name
        );
    }
    assert!(text.contains("THE GROK-PI-PIPER CONFIG FILE"));
    for opt in options().iter().chain(xtask::options::pi_piper_options()) {
        // Each option is a .TP tag: it starts a line at the outer indent
        // (groff puts a short tag and the start of its text on one line).
        let shown = text.lines().any(|l| {
            let indent = l.len() - l.trim_start().len();
            indent == 7 && l.split_whitespace().next() == Some(opt.key)
        });
        assert!(shown, "man grokmirror.conf does not describe {}", opt.key);
        let default = format!(
            "Default: {}",
            opt.default.split_whitespace().next().unwrap()
        );
        assert!(text.contains(&default), "{}: default not shown", opt.key);
    }
}

#[test]
fn completions_are_valid_and_complete() {
    for (name, cmd) in xtask::programs() {
        for shell in xtask::SHELLS {
            let file = root()
                .join("completions")
                .join(xtask::completion_file_name(shell, name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for arg in cmd.get_arguments() {
                if let Some(long) = arg.get_long() {
                    // fish writes "-l long", the others "--long".
                    assert!(
                        text.contains(&format!("--{long}")) || text.contains(&format!("-l {long}")),
                        "{} lacks --{long}",
                        file.display()
                    );
                }
            }
        }
        // bash loads it and registers the completion function.
        let bash_file = root().join("completions").join(format!("{name}.bash"));
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -e; source '{}'; complete -p {name}",
                bash_file.display()
            ))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "bash rejects {}: {}",
            bash_file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(name));
    }
}
