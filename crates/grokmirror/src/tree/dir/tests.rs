//! Tests of the directory handle: real files, FIFOs and symlinks in
//! temporary directories.

use super::*;
use std::fs;

#[test]
fn only_regular_files_open_as_files() {
    use std::io::Read as _;
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("plain"), b"data").unwrap();
    nix::unistd::mkfifo(&t.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::os::unix::fs::symlink("plain", t.path().join("link")).unwrap();
    let d = Dir::open_root(t.path()).unwrap();
    let mut text = String::new();
    d.open_file("plain")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "data");
    // Refused at once, not blocked on a writer that never comes.
    assert!(matches!(d.open_file("fifo"), Err(Error::NotAFile(_))));
    assert!(matches!(d.open_file("link"), Err(Error::Symlink(_))));
    assert!(d.open_file(".").is_err());
}

#[test]
fn a_glance_reads_files_below_and_never_through_a_symlink_or_a_blocked_fifo() {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("r.git")).unwrap();
    fs::write(t.path().join("r.git/fp"), b"0123456789").unwrap();
    fs::write(outside.path().join("fp"), b"elsewhere").unwrap();
    std::os::unix::fs::symlink(outside.path(), t.path().join("l.git")).unwrap();
    nix::unistd::mkfifo(&t.path().join("r.git/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let d = Dir::open_root(t.path()).unwrap();
    assert_eq!(
        d.glance_at_file("r.git/fp", 4).as_deref(),
        Some(&b"0123"[..])
    );
    assert_eq!(
        d.glance_at_file("r.git/fp", 64).as_deref(),
        Some(&b"0123456789"[..])
    );
    assert_eq!(d.glance_at_file("l.git/fp", 64), None, "through a symlink");
    assert_eq!(d.glance_at_file("r.git/none", 64), None);
    assert_eq!(d.glance_at_file("r.git", 64), None, "a directory");
    // A FIFO without a writer answers at once, with nothing.
    assert_eq!(
        d.glance_at_file("r.git/fifo", 64).as_deref(),
        Some(&b""[..])
    );
    assert!(d.has_beneath("r.git/fp") && d.has_beneath("r.git"));
    assert!(!d.has_beneath("r.git/none"));
    assert!(!d.has_beneath("l.git/fp"), "through a symlink");
}

#[test]
fn a_directory_lock_keeps_a_second_handle_out_until_released() {
    let t = tempfile::tempdir().unwrap();
    let first = Dir::open_root(t.path()).unwrap();
    assert!(first.try_lock_exclusive().unwrap());
    let second = Dir::open_root(t.path()).unwrap();
    assert!(!second.try_lock_exclusive().unwrap());
    drop(first);
    assert!(second.try_lock_exclusive().unwrap());
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
}

#[test]
fn symlinks_on_the_way_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let top = t.path().join("top");
    fs::create_dir_all(top.join("a/b")).unwrap();
    std::os::unix::fs::symlink(outside.path(), top.join("evil")).unwrap();
    std::os::unix::fs::symlink(top.join("a"), top.join("inside")).unwrap();
    let root = Dir::open_root(&top).unwrap();
    assert!(root.open_dir("a/b").is_ok());
    for rel in ["evil", "evil/x", "inside/b", "a/../evil"] {
        let e = root.open_dir(rel).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Symlink(_) | Error::NotBeneath(_) | Error::Io { .. }
            ),
            "{rel}: {e}"
        );
    }
    assert!(root.create_dir_all("evil/new").is_err());
    assert!(!outside.path().join("new").exists());
    let made = root.create_dir_all("x/y/z").unwrap();
    assert!(top.join("x/y/z").is_dir());
    assert_eq!(made.shown(), top.join("x/y/z"));
    assert!(made.io_path().join(".").is_dir());
}

#[test]
fn remove_tree_never_follows_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("precious"), "x").unwrap();
    let top = t.path();
    fs::create_dir_all(top.join("victim/sub")).unwrap();
    fs::write(top.join("victim/sub/f"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path(), top.join("victim/link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), top.join("victim/sub/link2")).unwrap();
    let root = Dir::open_root(top).unwrap();
    root.remove_tree(OsStr::new("victim")).unwrap();
    assert!(!top.join("victim").exists());
    assert!(outside.path().join("precious").exists());
    // A symlink at the name itself: only the link goes.
    std::os::unix::fs::symlink(outside.path(), top.join("l")).unwrap();
    root.remove_tree(OsStr::new("l")).unwrap();
    assert!(outside.path().join("precious").exists());
}

#[test]
fn renames_and_kinds() {
    let t = tempfile::tempdir().unwrap();
    let top = t.path();
    fs::create_dir_all(top.join("s/new")).unwrap();
    fs::create_dir_all(top.join("d/taken")).unwrap();
    fs::write(top.join("d/taken/f"), "").unwrap();
    let root = Dir::open_root(top).unwrap();
    let s = root.open_dir("s").unwrap();
    let d = root.open_dir("d").unwrap();
    assert!(s
        .rename_new(OsStr::new("new"), &d, OsStr::new("taken"))
        .is_err());
    s.rename_new(OsStr::new("new"), &d, OsStr::new("placed"))
        .unwrap();
    assert_eq!(d.kind_of("placed").unwrap(), Some(Kind::Dir));
    assert_eq!(d.kind_of("nothing").unwrap(), None);
    d.exchange(OsStr::new("placed"), &d, OsStr::new("taken"))
        .unwrap();
    assert!(top.join("d/placed/f").exists());
    d.symlink(Path::new("placed"), OsStr::new("ln")).unwrap();
    assert_eq!(d.kind_of("ln").unwrap(), Some(Kind::Symlink));
    d.remove_file(OsStr::new("ln")).unwrap();
    assert!(d.remove_file(OsStr::new("placed")).is_err());
}
