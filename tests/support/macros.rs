//! Assertions the tests make over and over, as macros so that every module
//! has them without an import (`#[macro_use] mod support;` in tests.rs).
//! Each is exactly the `assert!` it stands for, with the same condition;
//! its message says more.

/// Assert that a finished program (a `std::process::Output`, or a
/// reference to one) exited successfully; if not, the panic shows its exit
/// status, stdout and stderr (`support::mirror::output_text`), after the
/// optional context (format arguments).
///
/// `assert_success!(out)` is
/// `assert!(out.status.success(), "{}", output_text(&out))`, and
/// `assert_success!(out, "{when}")` is
/// `assert!(out.status.success(), "{when}: {}", output_text(&out))`.
macro_rules! assert_success {
    ($out:expr $(,)?) => {{
        let out: &::std::process::Output = &$out;
        assert!(
            out.status.success(),
            "{}",
            $crate::support::mirror::output_text(out)
        );
    }};
    ($out:expr, $($context:tt)+) => {{
        let out: &::std::process::Output = &$out;
        assert!(
            out.status.success(),
            "{}: {}",
            format_args!($($context)+),
            $crate::support::mirror::output_text(out)
        );
    }};
}

/// Assert that nothing is at a path (`!path.exists()`, so a dangling
/// symlink counts as nothing, as with `Path::exists`); the panic names the
/// path, after the optional context (format arguments).
macro_rules! assert_missing {
    ($path:expr $(,)?) => {{
        let path = &$path;
        let path: &::std::path::Path = ::std::convert::AsRef::as_ref(path);
        assert!(!path.exists(), "{} exists", path.display());
    }};
    ($path:expr, $($context:tt)+) => {{
        let path = &$path;
        let path: &::std::path::Path = ::std::convert::AsRef::as_ref(path);
        assert!(
            !path.exists(),
            "{}: {} exists",
            format_args!($($context)+),
            path.display()
        );
    }};
}

/// Assert that a finished program's stderr (a `std::process::Output`, or a
/// reference to one) contains a pattern (anything `str::contains` takes);
/// if not, the panic shows its exit status, stdout and stderr.
///
/// `assert_stderr_contains!(out, "x")` is
/// `assert!(stderr(&out).contains("x"), "{}", output_text(&out))`.
macro_rules! assert_stderr_contains {
    ($out:expr, $pattern:expr $(,)?) => {{
        let out: &::std::process::Output = &$out;
        assert!(
            String::from_utf8_lossy(&out.stderr).contains($pattern),
            "{}",
            $crate::support::mirror::output_text(out)
        );
    }};
}
