//! The deployment files, checked by their tools' own checkers (Debian's
//! `promtool` and `docker-compose`, installed by scripts/setup.sh) and
//! against the metrics a live bridge exports: every metric a dashboard panel
//! or an alert names exists, so no panel is silently empty.

use crate::harness::{OPS_TOKEN, TestApp, at};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use vbridge::devtools::client::started;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup.sh installs it)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Metric names a PromQL expression uses (ours and the SDK's prefixes).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let prefixes = ["webhook_", "ats_", "manual_review_", "time_apply_", "provider_", "vbridge_", "temporal_"];
    let mut names = BTreeSet::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_');
        if starts_word && bytes[i].is_ascii_lowercase() {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == '_') {
                j += 1;
            }
            let word: String = bytes[i..j].iter().collect();
            // A metric, not a label (`sum by (le, connector)`) nor a function.
            let next = bytes.get(j).copied().unwrap_or(' ');
            if prefixes.iter().any(|p| word.starts_with(p)) && next != '=' {
                names.insert(word);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    names
}

/// Every series name a scrape holds.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn dashboards_alerts_and_compose_pass_their_checkers_and_name_only_exported_metrics() {
    let deploy = root().join("deploy");
    // Prometheus: the config, the rules, and the rules' unit tests.
    let prom = deploy.join("prometheus");
    run(Command::new("promtool").args(["check", "config", "prometheus.yml"]).current_dir(&prom));
    run(Command::new("promtool").args(["check", "rules", "alerts.yml"]).current_dir(&prom));
    let tested = run(Command::new("promtool").args(["test", "rules", "alerts.test.yml"]).current_dir(&prom));
    assert!(tested.contains("SUCCESS"), "{tested}");

    // The dashboard: well-formed, unique panel ids, every query valid PromQL
    // (promtool checks each as a recording rule).
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy.join("grafana/dashboards/vbridge.json")).unwrap())
            .unwrap();
    assert_eq!(dash["uid"], "vbridge-overview");
    let panels = dash["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let exprs: Vec<String> = panels
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel without targets: {}", p["title"]));
            assert!(!targets.is_empty() && p["datasource"]["uid"] == "prometheus", "{}", p["title"]);
            targets.iter().map(|t| t["expr"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        })
        .collect();
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for seed in ["Webhook failure rate", "Duplicate rate", "Manual review volume", "Median apply → verified"] {
        assert!(titles.contains(&seed), "the seed's dashboard {seed:?}");
    }
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": e}))
        .collect();
    let tmp = std::env::temp_dir().join(format!("vbridge-dashboard-rules-{}.yml", std::process::id()));
    let doc = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&tmp, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    run(Command::new("promtool").arg("check").arg("rules").arg(&tmp));

    // Every metric they name is one a live bridge exports.
    let alerts: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(prom.join("alerts.yml")).unwrap()).unwrap();
    let mut used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for group in alerts["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            used.extend(metric_names(rule["expr"].as_str().unwrap()));
        }
    }
    let app = TestApp::spawn("deploy").await;
    assert_eq!(app.send(&started("cand-d", "app-d", "evt-d-1", &at(-5))).await.status, 202);
    app.wait_synced("cand-d", "app-d", "pending").await;
    app.get_as("/v1/applications/app-d/gate", Some(OPS_TOKEN)).await;
    let live = exported(&app.metrics().await);
    let missing: Vec<&String> = used.iter().filter(|m| !live.contains(*m)).collect();
    assert!(missing.is_empty(), "dashboards or alerts name metrics the bridge does not export: {missing:?}");
    assert!(used.len() >= 15, "{used:?}");

    // The compose file, as Docker Compose reads it.
    let config = run(Command::new("docker-compose").args(["-f", "docker-compose.yml", "config"]).current_dir(root()));
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&config).unwrap();
    let services = &compose["services"];
    for s in [
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "vbridge-migrate",
        "prometheus",
        "grafana",
    ] {
        assert!(services.get(s).is_some(), "service {s}");
    }
    for (role, replicas) in [("receiver", 2), ("relay", 2), ("worker", 2)] {
        let svc = &services[format!("vbridge-{role}").as_str()];
        let command: Vec<&str> = svc["command"].as_sequence().unwrap().iter().filter_map(|c| c.as_str()).collect();
        assert_eq!(command, ["vbridge", "serve", "--roles", role]);
        assert_eq!(svc["deploy"]["replicas"].as_u64(), Some(replicas));
    }
    assert!(
        services["temporal"]["image"].as_str().unwrap().starts_with("temporalio/server:"),
        "a real Temporal server"
    );
    assert!(!config.contains("start-dev"), "no dev server in the production compose");
}

#[tokio::test]
async fn a_temporal_toml_profile_connects_the_bridge_as_it_would_to_temporal_cloud() {
    let mut app = TestApp::spawn("envconfig").await;
    app.kill_bridge();
    let toml = app.dir.join("temporal.toml");
    std::fs::write(
        &toml,
        format!("[profile.default]\naddress = \"{}\"\nnamespace = \"default\"\n", app.temporal.address),
    )
    .unwrap();
    // The bridge's own address setting points nowhere: only the profile can
    // have connected it.
    app.start_bridge(&[("VBRIDGE_TEMPORAL_ADDRESS", "127.0.0.1:1"), ("TEMPORAL_CONFIG_FILE", toml.to_str().unwrap())])
        .await;
    assert_eq!(app.send(&started("cand-env", "app-env", "evt-env-1", &at(-5))).await.status, 202);
    app.wait_synced("cand-env", "app-env", "pending").await;
    assert!(app.bridge_log().contains("connected through Temporal's client configuration"));
}
