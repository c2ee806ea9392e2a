//! Judging one value against its option's [`Kind`]: pure functions, no
//! disk, no network.

use crate::config::ini;
use crate::config::options::Kind;
use crate::formats::freshness::parse_duration;

use super::Severity;

/// What is wrong with a value: how bad, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// An error (the program refuses the value) or a warning.
    pub severity: Severity,
    /// What is wrong and what to write instead.
    pub message: String,
}

fn error(message: String) -> Option<Finding> {
    Some(Finding {
        severity: Severity::Error,
        message,
    })
}

fn warning(message: String) -> Option<Finding> {
    Some(Finding {
        severity: Severity::Warning,
        message,
    })
}

/// Judge `value` (interpolated, as the program sees it) against `kind`:
/// `None` when it is fine. Path kinds are only judged as text here (an
/// empty path means unset); what the disk says is [`super::probe`]'s part.
pub fn check_value(kind: &Kind, value: &str) -> Option<Finding> {
    let v = value.trim();
    let expected = || format!("expected {}", kind.describe());
    match kind {
        Kind::Bool => ini::parse_bool(value)
            .is_none()
            .then(|| format!("{}; write yes or no", expected()))
            .and_then(error),
        Kind::BoolOr(words) => {
            let ok =
                ini::parse_bool(v).is_some() || words.iter().any(|w| v.eq_ignore_ascii_case(w));
            (!ok).then(expected).and_then(error)
        }
        Kind::Int { min, max, empty_ok } => {
            if v.is_empty() && *empty_ok {
                return None;
            }
            match ini::parse_int(value) {
                Some(n) if (*min..=*max).contains(&n) => None,
                _ => error(expected()),
            }
        }
        Kind::Number { min } => {
            if v.is_empty() {
                return None;
            }
            match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= *min => None,
                _ => error(expected()),
            }
        }
        Kind::Duration { zero_ok, empty_ok } => {
            if v.is_empty() && *empty_ok {
                return None;
            }
            match parse_duration(value) {
                Some(d) if *zero_ok || !d.is_zero() => None,
                _ => error(expected()),
            }
        }
        Kind::Words(words) => {
            let ok = words.iter().any(|w| v.eq_ignore_ascii_case(w));
            (!ok).then(expected).and_then(error)
        }
        Kind::WordsOrFirst(words) => {
            // The programs compare the value as written.
            if words.contains(&value) {
                return None;
            }
            warning(format!(
                "{}; anything else is taken as {}",
                expected(),
                words[0]
            ))
        }
        Kind::Url { prefixes, strict } => {
            if v.is_empty() || prefixes.iter().any(|p| value.starts_with(p)) {
                return None;
            }
            let message = if value.starts_with("file://") {
                "a file:// URL needs an absolute path (file:///...)".to_string()
            } else {
                expected()
            };
            if *strict {
                error(message)
            } else {
                warning(message)
            }
        }
        Kind::Shard => {
            if v.is_empty() {
                return None;
            }
            // The host name only matters for `ordinal/N`; the program
            // checks that it has an ordinal.
            crate::shard::Shard::parse(value, || Some("host-0".into()))
                .err()
                .and_then(|e| error(format!("{e}; expected {}", kind.describe())))
        }
        Kind::CommandLine => {
            if value == "None" {
                return None;
            }
            match shlex::split(value) {
                Some(words) if !words.is_empty() => None,
                _ => error(format!(
                    "{}: it cannot be split into words (an unclosed quote?)",
                    expected()
                )),
            }
        }
        Kind::Commands => value
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .find(|l| shlex::split(l).is_none_or(|w| w.is_empty()))
            .and_then(|l| {
                error(format!(
                    "the command {l:?} cannot be split into words (an unclosed quote?)"
                ))
            }),
        Kind::Path(_) | Kind::Globs | Kind::Lines | Kind::Text => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::options::PathUse;

    fn err(kind: Kind, value: &str) -> bool {
        matches!(check_value(&kind, value), Some(f) if f.severity == Severity::Error)
    }

    fn warns(kind: Kind, value: &str) -> bool {
        matches!(check_value(&kind, value), Some(f) if f.severity == Severity::Warning)
    }

    #[test]
    fn booleans() {
        for v in ["yes", "No", "TRUE", "off", "1", "0"] {
            assert!(check_value(&Kind::Bool, v).is_none(), "{v}");
        }
        for v in ["maybe", "", "2", "y"] {
            assert!(err(Kind::Bool, v), "{v}");
        }
        let k = Kind::BoolOr(&["always"]);
        assert!(check_value(&k, " Always ").is_none());
        assert!(check_value(&k, "no").is_none());
        assert!(err(k, "sometimes"));
    }

    #[test]
    fn integers_with_bounds() {
        let k = Kind::Int {
            min: 1,
            max: 99,
            empty_ok: false,
        };
        assert!(check_value(&k, "1").is_none());
        assert!(check_value(&k, " 99 ").is_none());
        for v in ["0", "100", "-1", "5.5", "five", ""] {
            assert!(err(k, v), "{v}");
        }
        let msg = check_value(&k, "100").unwrap().message;
        assert_eq!(msg, "expected a whole number from 1 to 99");
        let k = Kind::Int {
            min: 0,
            max: i64::MAX,
            empty_ok: true,
        };
        assert!(check_value(&k, "").is_none());
        assert!(err(k, "-5"));
    }

    #[test]
    fn numbers_and_durations() {
        let k = Kind::Number { min: 0.0 };
        assert!(check_value(&k, "3.5").is_none());
        assert!(check_value(&k, "").is_none());
        assert!(err(k, "-1"));
        assert!(err(k, "lots"));
        assert!(err(k, "inf"));
        let k = Kind::Duration {
            zero_ok: false,
            empty_ok: true,
        };
        for v in ["1h", "90", "1h30m", "2w", ""] {
            assert!(check_value(&k, v).is_none(), "{v}");
        }
        for v in ["0", "1y", "h", "soon"] {
            assert!(err(k, v), "{v}");
        }
        let k = Kind::Duration {
            zero_ok: true,
            empty_ok: false,
        };
        assert!(check_value(&k, "0").is_none());
        assert!(err(k, ""));
    }

    #[test]
    fn words_urls_and_shards() {
        let k = Kind::Words(&["exact", "loose", ""]);
        assert!(check_value(&k, "LOOSE").is_none());
        assert!(check_value(&k, "").is_none());
        assert!(err(k, "fuzzy"));
        let k = Kind::WordsOrFirst(&["info", "debug"]);
        assert!(check_value(&k, "debug").is_none());
        assert!(warns(k, "verbose"));
        let k = Kind::Url {
            prefixes: &["http://", "https://", "file:///"],
            strict: true,
        };
        assert!(check_value(&k, "https://o/m.js.gz").is_none());
        assert!(check_value(&k, "file:///srv/m.js").is_none());
        assert!(err(k, "ftp://o/m"));
        assert!(check_value(&k, "file://rel/m")
            .unwrap()
            .message
            .contains("file:///"));
        let k = Kind::Url {
            prefixes: &["https://"],
            strict: false,
        };
        assert!(warns(k, "ftp://cdn/"));
        assert!(check_value(&Kind::Shard, "2/4").is_none());
        assert!(check_value(&Kind::Shard, "ordinal/3").is_none());
        assert!(check_value(&Kind::Shard, "").is_none());
        for v in ["4/4", "half", "1/0"] {
            assert!(err(Kind::Shard, v), "{v}");
        }
    }

    #[test]
    fn commands_and_free_text() {
        assert!(check_value(&Kind::CommandLine, "None").is_none());
        assert!(check_value(&Kind::CommandLine, "/bin/cat -u 'a b'").is_none());
        assert!(err(Kind::CommandLine, "/bin/cat 'open"));
        assert!(err(Kind::CommandLine, "  "));
        assert!(check_value(&Kind::Commands, "/bin/a\n/bin/b x").is_none());
        assert!(err(Kind::Commands, "/bin/a\n/bin/b \"x"));
        for k in [
            Kind::Text,
            Kind::Globs,
            Kind::Lines,
            Kind::Path(PathUse::WrittenFile),
        ] {
            assert!(check_value(&k, "anything at all").is_none());
        }
    }
}
