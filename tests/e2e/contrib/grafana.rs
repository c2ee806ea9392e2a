//! The Grafana dashboard against the metrics we export.

use super::*;

#[test]
fn grafana_dashboard_queries_name_exported_metrics() {
    let exported = exported_metrics();
    let path = contrib("grafana/grokmirror-freshness.json");
    let dash: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dash, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    for (title, expr) in &queries {
        let named = metric_names(expr);
        assert!(
            !named.is_empty(),
            "panel {title:?}: {expr} names no grokmirror metric"
        );
        for n in named {
            assert!(
                exported.contains(&n),
                "panel {title:?}: {expr} names {n}, which grok-pull does not export ({exported:?})"
            );
        }
    }
    // The variable's query too.
    let var = dash["templating"]["list"][1]["query"].as_str().unwrap();
    for n in metric_names(var) {
        assert!(exported.contains(&n), "{var}: {n} is not exported");
    }
    // Each expression is valid PromQL: promtool parses it as a rule.
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.yml");
    let mut text = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        // Grafana's variables, as Grafana substitutes them.
        let e = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        text.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: '{}'\n",
            e.replace('\'', "''")
        ));
    }
    std::fs::write(&rules, text).unwrap();
    let out = run(Command::new(tool("promtool"))
        .arg("check")
        .arg("rules")
        .arg(&rules));
    assert!(
        out.status.success(),
        "promtool check rules on the dashboard's queries: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
}
