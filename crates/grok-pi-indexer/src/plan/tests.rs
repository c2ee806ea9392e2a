use super::*;

fn accept() -> Accept {
    Accept::new("*.linux.dev,*.kernel.org", "indexheader,replyto")
}

#[test]
fn epochs_and_their_inboxes() {
    let p = |s: &str| Path::new(s).to_path_buf();
    assert_eq!(
        inbox_of_epoch(&p("/srv/lore/lkml/git/0.git")),
        Some(p("/srv/lore/lkml"))
    );
    assert_eq!(
        inbox_of_epoch(&p("/srv/lore/lkml/git/17.git/")),
        Some(p("/srv/lore/lkml"))
    );
    for not in [
        "/srv/lore/lkml/git/x.git",
        "/srv/lore/lkml/git/.git",
        "/srv/lore/lkml/0.git",
        "/srv/lore/lkml/git/0.git/objects",
        "/git/0.git",
        "/srv/lore/lkml/git/0",
    ] {
        assert_eq!(inbox_of_epoch(&p(not)), None, "{not}");
    }
    let set = inboxes_of(
        [
            "/t/a/git/0.git",
            "/t/a/git/1.git",
            "/t/b/git/0.git",
            "/t/c.git",
        ]
        .iter()
        .map(Path::new),
    );
    assert_eq!(
        set.into_iter().collect::<Vec<_>>(),
        vec![p("/t/a"), p("/t/b")]
    );
    assert_eq!(inbox_of_arg(&p("/t/a/git/3.git")), p("/t/a"));
    assert_eq!(inbox_of_arg(&p("/t/a")), p("/t/a"));
}

#[test]
fn only_paths_strictly_below_the_top_level() {
    let top = Path::new("/srv/lore");
    assert_eq!(
        relative_below(top, Path::new("/srv/lore/lists/lkml")),
        Some(PathBuf::from("lists/lkml"))
    );
    for not in ["/srv/lore", "/srv/lorex/lkml", "/etc", "/srv/lore/../etc"] {
        assert_eq!(relative_below(top, Path::new(not)), None, "{not}");
    }
}

#[test]
fn boosts_follow_the_priority_list() {
    let a = accept();
    assert_eq!(a.boost("linux-kernel.vger.kernel.org"), Some(10));
    assert_eq!(a.boost("regressions.lists.linux.dev"), Some(11));
    assert_eq!(a.boost("foo.example.org"), Some(1));
    assert_eq!(Accept::new("", "").boost("x.kernel.org"), None);
}

#[test]
fn an_origins_file_as_lore_publishes_it() {
    let text = "[publicinbox \"lkml\"]\n\
                \taddress = linux-kernel@vger.kernel.org\n\
                \taddress = lkml@example.org\n\
                ; a comment\n\
                \tlistid = linux-kernel.vger.kernel.org\n\
                \tnewsgroup = org.kernel.vger.linux-kernel\n\
                \tdescription = The Linux Kernel Mailing List\n\
                \tindexheader = X-Foo\n\
                \tinfourl = https://example.org/ignored\n";
    let s = inbox_settings("lkml", Some(text), &accept()).unwrap();
    assert_eq!(
        s.addresses,
        vec!["linux-kernel@vger.kernel.org", "lkml@example.org"]
    );
    assert_eq!(s.newsgroup.as_deref(), Some("org.kernel.vger.linux-kernel"));
    assert_eq!(s.description, "The Linux Kernel Mailing List");
    let opts: Vec<(&str, &str)> = s
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        opts,
        vec![
            ("boost", "10"),
            ("listid", "linux-kernel.vger.kernel.org"),
            ("indexheader", "X-Foo"),
        ]
    );
}

#[test]
fn defaults_when_the_origin_says_nothing() {
    let s = inbox_settings("test", None, &accept()).unwrap();
    assert_eq!(s.addresses, vec!["test@localhost"]);
    assert_eq!(s.description, "test archive mirror");
    assert!(s.options.is_empty() && s.newsgroup.is_none());
    let s = inbox_settings("t", Some("listid = t.example.org\n"), &accept()).unwrap();
    assert_eq!(s.description, "t.example.org archive mirror");
}

#[test]
fn hostile_origins_are_refused_or_tamed() {
    let a = accept();
    for bad in [
        "address = --help\n",
        "newsgroup = -x\n",
        "listid = \u{1b}[2J\n",
        "address = \n",
        "[evil]\n",
        "justtext\n",
    ] {
        assert!(inbox_settings("t", Some(bad), &a).is_err(), "{bad:?}");
    }
    let huge = "address = a@b\n".repeat(MAX_ORIGINS_BYTES / 10);
    assert_eq!(inbox_settings("t", Some(&huge), &a), Err(Error::TooBig));
    let many = "address = a@b\n".repeat(MAX_VALUES + 1);
    assert_eq!(inbox_settings("t", Some(&many), &a), Err(Error::TooMany));
    let long = format!("address = {}\n", "a".repeat(MAX_VALUE_BYTES + 1));
    assert!(inbox_settings("t", Some(&long), &a).is_err());
    let s = inbox_settings(
        "t",
        Some(&format!("description = a\u{7}b {}\n", "é".repeat(2000))),
        &a,
    )
    .unwrap();
    assert!(s.description.starts_with("ab "));
    assert!(s.description.len() <= MAX_VALUE_BYTES);
    // An option nobody accepted is dropped, whatever its value.
    let s = inbox_settings("t", Some("coderepo = --anything\n"), &a).unwrap();
    assert!(s.options.is_empty());
}

#[test]
fn command_lines() {
    let ix = Indexing {
        level: "medium",
        jobs: Some(2),
        no_fsync: true,
    };
    let s = InboxSettings {
        newsgroup: Some("org.example.t".into()),
        addresses: vec!["t@example.org".into()],
        description: "d".into(),
        options: vec![("listid".into(), "t.example.org".into())],
    };
    let words = |v: Vec<OsString>| -> Vec<String> {
        v.into_iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(
        words(ix.init_argv("t", Path::new("/pi/t"), "https://m/t", &s)),
        [
            "public-inbox-init",
            "-V2",
            "-L",
            "medium",
            "--ng",
            "org.example.t",
            "-c",
            "listid=t.example.org",
            "--",
            "t",
            "/pi/t",
            "https://m/t",
            "t@example.org"
        ]
    );
    assert_eq!(
        words(ix.index_argv(Path::new("/pi/t"))),
        [
            "public-inbox-index",
            "--no-update-extindex",
            "--jobs",
            "2",
            "--no-fsync",
            "--",
            "/pi/t"
        ]
    );
    assert_eq!(
        words(ix.extindex_argv()),
        [
            "public-inbox-extindex",
            "-L",
            "medium",
            "--all",
            "--jobs",
            "2",
            "--no-fsync"
        ]
    );
    assert_eq!(local_url("", "t"), "t");
    assert_eq!(
        local_url("https://m.example.org/", "t"),
        "https://m.example.org/t"
    );
    assert_eq!(
        config_url("https://lore.kernel.org/", "lkml").as_deref(),
        Some("https://lore.kernel.org/lkml/_/text/config/raw")
    );
    assert_eq!(config_url("", "lkml"), None);
}
