//! contrib/kubernetes/shards: the StatefulSet of shards, its headless
//! Service and the router agree with each other and with grok-pull's
//! rules, and both nginx configs are ones the real nginx accepts.

use super::*;

/// The sharded recipe's documents.
fn docs() -> Vec<(String, Yaml)> {
    k8s_docs_in("kubernetes/shards")
}

fn named<'a>(docs: &'a [(String, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    let found: Vec<_> = docs
        .iter()
        .filter(|(k, d)| k == kind && d["metadata"]["name"].as_str() == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} {name}");
    &found[0].1
}

fn env_of<'a>(container: &'a Yaml, name: &str) -> Option<&'a str> {
    container["env"]
        .as_vec()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))?["value"]
        .as_str()
}

#[test]
fn shards_peers_and_router_agree() {
    let docs = docs();
    let sts = named(&docs, "StatefulSet", "grok-shard");
    let svc = named(&docs, "Service", "grok-shard");
    let config = named(&docs, "ConfigMap", "grok-shard-config");
    let router = named(&docs, "ConfigMap", "grok-router");
    let n = sts["spec"]["replicas"].as_i64().unwrap() as u32;
    let set = sts["metadata"]["name"].as_str().unwrap();
    let service = svc["metadata"]["name"].as_str().unwrap();

    // Headless, named by the StatefulSet: pods are <set>-K.<service>.
    assert_eq!(svc["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(sts["spec"]["serviceName"].as_str(), Some(service));

    // Each pod its own volume, mounted at [core] toplevel by grok-pull.
    let conf_text = config["data"]["grokmirror.conf"].as_str().unwrap();
    assert_eq!(
        support::configparser::our_view(conf_text),
        support::configparser::python_view(conf_text)
    );
    let ini = grokmirror::config::ini::Ini::parse(conf_text).unwrap();
    let toplevel = ini.get("core", "toplevel").unwrap().unwrap();
    let claims = sts["spec"]["volumeClaimTemplates"].as_vec().unwrap();
    assert_eq!(claims.len(), 1);
    let claim = claims[0]["metadata"]["name"].as_str().unwrap();
    let pod = &sts["spec"]["template"]["spec"];
    let pull = pod["containers"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("grok-pull"))
        .unwrap();
    assert!(pull["volumeMounts"].as_vec().unwrap().iter().any(|m| {
        m["name"].as_str() == Some(claim)
            && m["mountPath"].as_str() == Some(toplevel.as_str())
            && m["readOnly"].as_bool() != Some(true)
    }));

    // The shard comes from the ordinal, with the StatefulSet's N; every
    // pod name gives a different shard, and the peers' URLs are the pods.
    let spec = env_of(pull, grokmirror::shard::ENV_SHARD).expect("GROKMIRROR_SHARD");
    let peers_line = ini.get("pull", "shard_peers").unwrap().unwrap();
    let peers = grokmirror::shard::peer_urls(&[peers_line], n).unwrap();
    for k in 0..n {
        let host = format!("{set}-{k}");
        let shard = grokmirror::shard::Shard::parse(spec, || Some(host.clone())).unwrap();
        assert_eq!((shard.index(), shard.count()), (k, n), "{spec} on {host}");
        assert_eq!(
            peers[k as usize],
            format!("http://{set}-{k}.{service}/manifest.js.gz")
        );
    }
    assert_eq!(ini.get("pull", "purge").unwrap().as_deref(), Some("yes"));

    // The router has N, one upstream per shard, and reads the map the
    // script writes.
    assert_eq!(
        router["data"]["shards"].as_str(),
        Some(n.to_string().as_str())
    );
    let nginx = router["data"]["nginx.conf"].as_str().unwrap();
    for k in 0..n {
        let port = svc["spec"]["ports"][0]["port"].as_i64().unwrap();
        assert!(
            nginx.contains(&format!(
                "upstream shard{k} {{ server {set}-{k}.{service}:{port}; }}"
            )),
            "shard {k} upstream"
        );
    }
    assert!(!nginx.contains(&format!("upstream shard{n} ")));
    let script = router["data"]["make-map.sh"].as_str().unwrap();
    assert!(nginx.contains("include /var/run/grok-router/shards.map;"));
    assert!(script.contains("> /var/run/grok-router/shards.map.new"));
    assert!(script.contains("--shard-map \"$SHARDS\" --shard-map-format nginx"));
}

/// Both nginx configs, with their paths and host names moved to this
/// machine, pass `nginx -t` (the router's with a map grok-manifest made).
#[test]
fn the_recipes_nginx_configs_pass_nginx_t() {
    let nginx = tool("nginx");
    let docs = docs();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let origin = dir.join("origin");
    crate::support::fixture::project(&origin.join("pub/a.git"), 1, 1_600_000_000);
    crate::support::fixture::project(&origin.join("pub/b.git"), 1, 1_600_000_000);
    let manifest = dir.join("manifest.js.gz");
    run_ok(
        grok("grok-manifest")
            .arg("-m")
            .arg(&manifest)
            .arg("-t")
            .arg(&origin),
    );
    let map = run_ok(
        grok("grok-manifest")
            .args(["--shard-map", "3", "-m"])
            .arg(&manifest),
    );
    assert_eq!(map.lines().count(), 2, "{map}");
    std::fs::write(dir.join("shards.map"), map).unwrap();
    let local = |text: &str| {
        text.replace("/tmp/", &format!("{}/", dir.display()))
            .replace("/var/run/grok-router/", &format!("{}/", dir.display()))
            .replace("/var/lib/git/mirror", &origin.display().to_string())
            .replace(".grok-shard:80", "")
            .replace("grok-shard-", "127.0.0.")
    };
    for (map_name, key) in [
        ("grok-router", "nginx.conf"),
        ("grok-shard-config", "nginx.conf"),
    ] {
        let text = named(&docs, "ConfigMap", map_name)["data"][key]
            .as_str()
            .unwrap();
        let conf = dir.join(format!("{map_name}.conf"));
        std::fs::write(&conf, local(text)).unwrap();
        let out = run(Command::new(&nginx)
            .arg("-t")
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf));
        assert!(
            out.status.success(),
            "{map_name}: {}\n{}",
            output_text(&out),
            std::fs::read_to_string(&conf).unwrap()
        );
    }
}

/// The HAProxy lines the recipe's README gives are the ones
/// `e2e::pull_shards` runs with a real HAProxy.
#[test]
fn the_readme_haproxy_lines_are_the_tested_ones() {
    let readme = read(&contrib("kubernetes/shards/README.md"));
    let tested = crate::support::haproxy::routing_lines(Path::new("/etc/haproxy/shards.map"));
    assert!(readme.contains(&tested), "README lacks:\n{tested}");
}
