//! Pushes, hooks, a daemon and both tools' grok-fsck on one tree for a busy period: nothing lost.

use super::*;

#[test]
fn pushes_hooks_daemon_and_fsck_at_once_lose_nothing() {
    let secs: u64 = std::env::var("GROK_CONCURRENCY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("GROK_CONCURRENCY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("concurrency: seed {seed} (GROK_CONCURRENCY_SEED={seed} replays it), {secs}s busy");

    let tmp = KeptOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    // Two projects with forks (object storage on the replica), plus plain
    // projects.
    let spec = Spec {
        projects: 2,
        forks: 5,
        private_every: 0,
        chain: false,
        unrelated: true,
        base_commits: 12,
    };
    let mut keys = forks::build(&origin.root, &spec).keys;
    for i in 0..PROJECTS {
        let key = format!("/plain/p{i}.git");
        origin.project(&key, 6, 1_600_000_000 + 10_000 * i as i64);
        keys.push(key);
    }
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let gitd = GitDaemon::serve(&origin.root);

    let top = dir.join("replica");
    std::fs::create_dir_all(&top).unwrap();
    let manifest_url = http.url("manifest.js.gz");
    let pull_conf = replica_config(&dir, &top, "pulld", &gitd.site(), &manifest_url);
    let fsck_conf = replica_config(&dir, &top, "fsck", &gitd.site(), &manifest_url);
    let oracle_conf = replica_config(&dir, &top, "oracle", &gitd.site(), &manifest_url);
    let oneshot_conf = replica_config(&dir, &top, "oneshot", &gitd.site(), &manifest_url);
    let origin_fsck_conf = dir.join("origin-fsck.conf");
    std::fs::write(
        &origin_fsck_conf,
        format!(
            "[core]\ntoplevel = {root}\nmanifest = {manifest}\nlog = {dir}/origin-fsck.log\n\n\
             [fsck]\nstatusfile = {dir}/origin-fsck.status.js\n\
             ignore_errors = notice:\n    warning: disabling bitmap writing\n    ignoring extra bitmap file\n",
            root = origin.root.display(),
            manifest = origin.manifest.display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let socket = top.join(".updater.socket");
    let published = top.join("published.js.gz");

    let in_step = |key: &str| {
        let r = top.join(key.trim_start_matches('/'));
        r.is_dir() && show_ref(&r) == show_ref(&origin.path(key))
    };
    let mut d = Pulld::start(&pull_conf, &dir.join("pulld.log"), |_| {});
    d.wait_for("the initial mirror", |_| keys.iter().all(|k| in_step(k)));
    // What the replica publishes starts as a full walk; the post-update
    // hook keeps it current from here on.
    support::run_ok(
        grok("grok-manifest")
            .arg("-m")
            .arg(&published)
            .arg("-t")
            .arg(&top),
    );

    let record = Record::default();
    let clock = AtomicI64::new(1_700_000_000);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let at = |fraction: f64| start + Duration::from_secs_f64(secs as f64 * fraction);
    let (even, odd): (Vec<_>, Vec<_>) = keys
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let mut pushers: Vec<Pusher> = [even, odd]
        .into_iter()
        .enumerate()
        .map(|(n, part)| Pusher {
            origin: &origin,
            keys: part.into_iter().map(|(_, k)| k).collect(),
            rng: StdRng::seed_from_u64(seed.wrapping_add(n as u64)),
            clock: &clock,
            topics: BTreeMap::new(),
            socket: socket.clone(),
            record: &record,
            pushes: 0,
            hooks_by_oracle: 0,
        })
        .collect();
    let fsck_modes: [&[&str]; 4] = [
        &["-f"],
        &["--repack-all-quick"],
        &["-f", "--connectivity-only"],
        &["--repack-all-full"],
    ];

    std::thread::scope(|s| {
        for (n, p) in pushers.iter_mut().enumerate() {
            let (at, origin, record) = (&at, &origin, &record);
            s.spawn(move || {
                let mut waves = LATE_WAVES.iter().peekable();
                while Instant::now() < deadline {
                    if n == 0 && waves.peek().is_some_and(|w| Instant::now() >= at(w.0)) {
                        let (_, project, fork) = waves.next().unwrap();
                        p.new_repo(project, None);
                        p.new_repo(fork, Some("/proj1/base.git"));
                    }
                    if n == 1 && p.pushes == 10 {
                        // A cron job's full walk by the reference, in
                        // between the hooks.
                        let mut cmd = oracle("grok-manifest");
                        cmd.arg("-m")
                            .arg(&origin.manifest)
                            .arg("-t")
                            .arg(&origin.root);
                        record.add(run_bounded("reference origin full walk".into(), &mut cmd));
                    }
                    p.push();
                    std::thread::sleep(Duration::from_millis(p.rng.random_range(100..600)));
                }
            });
        }
        // Our grok-fsck on the replica, over and over.
        s.spawn(|| {
            let mut rng = StdRng::seed_from_u64(seed ^ 0xf5c);
            let mut i = 0;
            while Instant::now() < deadline {
                let mode = fsck_modes[i % fsck_modes.len()];
                i += 1;
                let mut cmd = grok("grok-fsck");
                cmd.arg("-v").arg("-c").arg(&fsck_conf).args(mode);
                record.add(run_bounded(format!("our grok-fsck {mode:?}"), &mut cmd));
                std::thread::sleep(Duration::from_millis(rng.random_range(200..1500)));
            }
        });
        // Our grok-fsck on the origin too, under the pushes (which take no
        // grokmirror lock): its repacks, and object storage for the forks,
        // which the origin's manifest then names.
        s.spawn(|| {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x0f5c);
            let mut i = 0;
            std::thread::sleep(Duration::from_millis(rng.random_range(0..3000)));
            while Instant::now() < deadline {
                let mode = fsck_modes[i % fsck_modes.len()];
                i += 1;
                let mut cmd = grok("grok-fsck");
                cmd.arg("-v").arg("-c").arg(&origin_fsck_conf).args(mode);
                record.add(run_bounded(
                    format!("our origin grok-fsck {mode:?}"),
                    &mut cmd,
                ));
                std::thread::sleep(Duration::from_millis(rng.random_range(2000..5000)));
            }
        });
        // Our own one-shot grok-pull beside the daemon (a cron job left
        // behind), right after new repositories appear.
        s.spawn(|| {
            for (when, _, _) in LATE_WAVES {
                if let Some(wait) = at(when + 0.02).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut cmd = grok("grok-pull");
                cmd.arg("-v").arg("-c").arg(&oneshot_conf);
                record.add(run_bounded("our one-shot grok-pull".into(), &mut cmd));
            }
        });
        // The reference on the same replica: grok-fsck (a forced check,
        // later full repacks) and one-shot grok-pulls.
        s.spawn(|| {
            // The pulls start right after new repositories appear on the
            // origin (LATE_WAVES), racing the daemon to clone them.
            let steps: [(f64, &str, &[&str]); 4] = [
                (0.15, "grok-fsck", &["-f"]),
                (0.31, "grok-pull", &[]),
                (0.6, "grok-fsck", &["--repack-all-full"]),
                (0.76, "grok-pull", &[]),
            ];
            for (when, program, flags) in steps {
                if let Some(wait) = at(when).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                // Our grok-fsck keeps the tree busy: the reference's waits
                // for a turn, as it would from its next cron run.
                for _ in 0..50 {
                    let mut cmd = oracle(program);
                    cmd.arg("-v").arg("-c").arg(&oracle_conf).args(flags);
                    let run = run_bounded(format!("reference {program} {flags:?}"), &mut cmd);
                    let turned_away = run.text.contains(ORACLE_FSCK_BUSY);
                    record.add(run);
                    if !turned_away {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
    });
    let busy = start.elapsed();
    // The daemon is stopped while it is busy: a last burst of pushes and
    // notifications, and SIGTERM right behind them. It exits cleanly; what
    // it leaves undone, the one-shot pull below must finish.
    for _ in 0..3 {
        for p in pushers.iter_mut() {
            p.push();
        }
    }
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    for (_, project, fork) in LATE_WAVES {
        keys.push(project.to_string());
        keys.push(fork.to_string());
    }
    keys.sort();
    let pushes: usize = pushers.iter().map(|p| p.pushes).sum();
    let by_oracle: usize = pushers.iter().map(|p| p.hooks_by_oracle).sum();
    drop(pushers);
    let runs = record.runs.into_inner().unwrap();
    eprintln!(
        "concurrency: {pushes} pushes ({by_oracle} hooks by the reference), {} runs in {busy:?}",
        runs.len()
    );
    if std::env::var_os("GROK_CONCURRENCY_KEEP").is_some() {
        for r in &runs {
            if r.what.starts_with("reference grok") {
                eprintln!("{}", r.describe());
            }
        }
    }
    // For failure messages: what ran (how often, how it ended) and the end
    // of every log; the whole tree is kept (GROK_CONCURRENCY_KEEP=1 keeps
    // it when the test passes too).
    let all_runs = || {
        let mut kinds: BTreeMap<(String, Option<i32>), usize> = BTreeMap::new();
        for r in &runs {
            let kind = match r.what.find(" for /") {
                Some(i) => r.what[..i].to_string(),
                None => r.what.clone(),
            };
            *kinds.entry((kind, r.code)).or_default() += 1;
        }
        let mut text = String::from("--- runs (what, exit code: how many)\n");
        for ((what, code), n) in kinds {
            text.push_str(&format!("{what}, {code:?}: {n}\n"));
        }
        for name in ["pulld", "fsck", "oneshot", "oracle", "origin-fsck"] {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            text.push_str(&format!("--- end of {name}.log\n{}\n", tail(&log, 40)));
        }
        text
    };

    // Every run of ours succeeded; so did the reference's (a failure of
    // theirs next to ours would be a lock or format disagreement), except
    // for one crash of its own making, which the checks below show did no
    // harm.
    let (known, failed): (Vec<&Run>, Vec<&Run>) = runs
        .iter()
        .filter(|r| r.code != Some(0) || r.text.contains("Traceback"))
        .partition(|r| oracle_clone_race(r));
    // Our grok-fsck reporting a repository the reference was cloning in
    // place at that moment.
    let (leftover, failed): (Vec<&Run>, Vec<&Run>) = failed
        .into_iter()
        .partition(|r| reports_the_oracle_leftover(r));
    let known: Vec<&Run> = known.into_iter().chain(leftover).collect();
    let failed: Vec<String> = failed.into_iter().map(Run::describe).collect();
    assert!(failed.is_empty(), "runs failed:\n{}", failed.join("\n"));
    for r in known {
        eprintln!(
            "concurrency: the reference's grok-pull lost a clone race (its own bug):\n{}",
            r.describe()
        );
    }

    // The reference's grok-fsck really worked on the tree (between ours),
    // both times.
    let oracle_fscks = runs
        .iter()
        .filter(|r| r.what.starts_with("reference grok-fsck") && !r.text.contains(ORACLE_FSCK_BUSY))
        .count();
    assert_eq!(
        oracle_fscks,
        2,
        "the reference's grok-fsck never got a turn:\n{}",
        all_runs()
    );

    // The origin's manifest lists every repository with the fingerprint
    // of its refs, as the last hook of each left it.
    let on_origin: Vec<String> = repos_under(&origin.root)
        .into_iter()
        .filter(|k| !k.starts_with("/objstore/"))
        .collect();
    assert_eq!(on_origin, keys, "the origin's repositories");
    check_manifest(&origin.manifest, &origin.root, &keys, "origin", &all_runs);

    // A final one-shot pull finds nothing wrong.
    let mut cmd = grok("grok-pull");
    cmd.arg("-v").arg("-c").arg(&fsck_conf);
    let last_pull = run_bounded("final grok-pull".into(), &mut cmd);
    assert_eq!(last_pull.code, Some(0), "{}", last_pull.describe());
    let mut differ = Vec::new();
    for key in &keys {
        if !in_step(key) {
            let r = top.join(key.trim_start_matches('/'));
            differ.push(format!(
                "{key}:\n--- origin\n{}--- replica\n{}",
                show_ref(&origin.path(key)),
                show_ref(&r)
            ));
        }
    }
    assert!(differ.is_empty(), "replica differs:\n{}", differ.join("\n"));
    let on_replica: Vec<String> = repos_under(&top)
        .into_iter()
        .filter(|k| !k.starts_with("/objstore/"))
        .collect();
    assert_eq!(on_replica, keys, "the replica's repositories");

    // The replica's own manifest and the one its hook publishes.
    check_manifest(
        &top.join("manifest.js.gz"),
        &top,
        &keys,
        "replica",
        &all_runs,
    );
    check_manifest(&published, &top, &keys, "published", &all_runs);

    // Nothing is corrupt: a full fsck of every repository, connectivity
    // for the members of object storage (their objects are checked in full
    // in the object storage).
    let mut bad = forks::fsck_all(&origin.root, false);
    let objstores = |top: &Path| forks::objstore_repos(&top.join("objstore"));
    let (origin_objstores, objstores) = (objstores(&origin.root), objstores(&top));
    eprintln!(
        "concurrency: object storage repositories: {} on the origin, {} on the replica",
        origin_objstores.len(),
        objstores.len()
    );
    for key in &keys {
        let repo = top.join(key.trim_start_matches('/'));
        let member = repo.join("objects/info/alternates").exists();
        let mut cmd = support::git_cmd(Some(&repo));
        cmd.args(["fsck", "--no-dangling", "--no-progress"]);
        if member {
            cmd.arg("--connectivity-only");
        }
        let out = support::run(&mut cmd);
        if !out.status.success() {
            bad.push(format!("{key}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    for o in &objstores {
        let out = support::run(support::git_cmd(Some(o)).args([
            "fsck",
            "--no-dangling",
            "--no-progress",
        ]));
        if !out.status.success() {
            bad.push(format!(
                "{}: {}",
                o.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "git fsck failed:\n{}\n{}",
        bad.join("\n"),
        all_runs()
    );

    // No lock is left held and no git lock file is left behind.
    let mut every_repo: Vec<PathBuf> = keys
        .iter()
        .flat_map(|k| [origin.path(k), top.join(k.trim_start_matches('/'))])
        .collect();
    every_repo.extend(objstores.iter().chain(&origin_objstores).cloned());
    let mut held = Vec::new();
    for repo in &every_repo {
        match lock::acquire_repo(repo, lock::Wait::No) {
            Ok(Some(_)) => {}
            other => held.push(format!("{}: {other:?}", repo.display())),
        }
        for f in git_lock_files(repo) {
            held.push(format!("left behind: {}", f.display()));
        }
    }
    for file in [
        origin.manifest.clone(),
        top.join("manifest.js.gz"),
        published.clone(),
        top.join("fsck.status.js"),
        dir.join("origin-fsck.status.js"),
    ] {
        let l = lock::file_lock_path(&file);
        if FileLock::is_held(&l).unwrap() {
            held.push(format!("held: {}", l.display()));
        }
    }
    let staging = top.join(grokmirror::tree::staging::STAGING_DIR_NAME);
    let staged: Vec<PathBuf> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for p in staged {
        held.push(format!("left in staging: {}", p.display()));
    }
    assert!(held.is_empty(), "locks or leftovers:\n{}", held.join("\n"));

    // The next runs are not blocked by anything.
    let mut cmd = grok("grok-fsck");
    cmd.arg("-v").arg("-c").arg(&fsck_conf).arg("-f");
    let next_fsck = run_bounded("next grok-fsck -f".into(), &mut cmd);
    assert_eq!(next_fsck.code, Some(0), "{}", next_fsck.describe());
    assert!(
        !next_fsck.text.contains("Another grok-fsck"),
        "{}",
        next_fsck.describe()
    );
    let mut cmd = grok("grok-pull");
    cmd.arg("-v").arg("-c").arg(&fsck_conf);
    let next_pull = run_bounded("next grok-pull".into(), &mut cmd);
    assert_eq!(next_pull.code, Some(0), "{}", next_pull.describe());

    // Nothing went wrong along the way that a log would have said.
    let mut errors: Vec<String> = Vec::new();
    for name in ["pulld", "fsck", "oneshot", "origin-fsck"] {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        errors.extend(
            log.lines()
                .filter(|l| l.contains(" - ERROR - ") || l.contains(" - CRITICAL - "))
                .map(|l| format!("{name}.log: {l}")),
        );
    }
    assert!(
        errors.is_empty(),
        "errors logged:\n{}\n{}",
        errors.join("\n"),
        d.describe()
    );
    let oracle_log = std::fs::read_to_string(dir.join("oracle.log")).unwrap_or_default();
    let oracle_problems: BTreeSet<&str> = oracle_log
        .lines()
        .filter(|l| l.contains(" - ERROR - ") || l.contains(" - CRITICAL - "))
        .collect();
    assert!(
        oracle_problems.is_empty(),
        "the reference logged errors on our replica:\n{oracle_problems:#?}"
    );
}
