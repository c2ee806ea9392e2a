//! A local user who can rename a directory of the tree, attacking: the
//! directory swapped for a symlink to somewhere outside, over and over,
//! while a program works on the tree.

use std::path::Path;

/// Swap `a` and `b` (`renameat2(RENAME_EXCHANGE)`).
pub fn exchange(a: &Path, b: &Path) -> bool {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        a,
        nix::fcntl::AT_FDCWD,
        b,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    )
    .is_ok()
}

/// While `work` runs, swap `dir` with a symlink to `outside` in a tight
/// loop (each swap undone at once), for at most `limit`. Returns how many
/// swaps were made; `dir` is a real directory again afterwards.
pub fn under_attack<T>(
    dir: &Path,
    outside: &Path,
    limit: std::time::Duration,
    work: impl FnOnce() -> T,
) -> (T, u64) {
    let link = dir.with_file_name("evil-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(outside, &link).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (dir, link) = (dir.to_path_buf(), link.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && start.elapsed() < limit {
                if exchange(&dir, &link) {
                    // Swapped about half the time: long enough for any
                    // check-then-use by name to fall into the gap.
                    std::thread::sleep(std::time::Duration::from_micros(300));
                    assert!(exchange(&dir, &link), "could not swap back");
                    swaps += 1;
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
            }
            swaps
        })
    };
    let result = work();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(std::fs::symlink_metadata(dir).unwrap().is_dir());
    std::fs::remove_file(&link).unwrap();
    (result, swaps)
}
