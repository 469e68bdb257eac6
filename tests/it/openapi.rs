//! docs/openapi.yaml against the real bridge: the router serves exactly the
//! (path, method) pairs the document lists, and a property-based run of the
//! document (schemathesis, pinned by scripts/setup.sh) finds no 5xx and no
//! status or content type the document does not list.

use crate::harness::{Options, SECRET, TestApp, api_tokens};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A token holding every role, so that every operation gets past the auth
/// layer: the probes below are about routes, not credentials.
const ALL_ROLES_TOKEN: &str = "it-openapi-all-roles";

/// The methods an OpenAPI path item can name. HEAD is left out: axum serves
/// it wherever GET is, from the GET handler, and the document says so once.
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "patch", "trace"];

fn document_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml")
}

fn document() -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(document_path()).expect("reading docs/openapi.yaml");
    serde_yaml_ng::from_str(&text).expect("docs/openapi.yaml is YAML")
}

/// The bridge, with one more credential: every role for one subject.
async fn bridge(name: &str) -> TestApp {
    let hash = vbridge::intake::sha256_hex(ALL_ROLES_TOKEN.as_bytes());
    let all: Vec<String> =
        ["reviewer", "admin", "ops", "auditor", "gate"].iter().map(|r| format!("{r}:it-all:{hash}")).collect();
    // The harness's own entry for this variable comes first; the later one wins.
    let tokens = format!("{},{}", api_tokens(), all.join(","));
    TestApp::spawn_with(name, Options { extra_env: vec![("VBRIDGE_API_TOKENS".into(), tokens)], ..Default::default() })
        .await
}

/// `(path template, method)` of every operation the document lists.
fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let paths = doc["paths"].as_mapping().expect("the document has paths");
    let mut ops = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("a path is a string");
        let item = item.as_mapping().expect("a path item is a mapping");
        for key in item.keys().filter_map(|k| k.as_str()) {
            assert_ne!(key, "head", "{path}: HEAD comes with GET and is not listed");
            if METHODS.contains(&key) {
                ops.insert((path.to_owned(), key.to_owned()));
            }
        }
    }
    ops
}

/// A concrete path for a template: each `{param}` becomes a valid id.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("a closed path parameter") + start;
        out.push_str(&rest[..start]);
        out.push_str("probe-");
        out.push_str(&rest[start + 1..end]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn openapi_router_and_document_agree() {
    let app = bridge("openapi-routes").await;
    let mut served = BTreeSet::new();
    for path in vbridge::http::served_paths() {
        let url = format!("{}{}", app.bridge_url, concrete(path));
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app.http.request(m, &url).bearer_auth(ALL_ROLES_TOKEN);
            if matches!(method, "post" | "put" | "patch" | "delete") {
                // Not JSON, so that no served route acts on it: each refuses
                // it (400, 401, 415) rather than starting anything.
                req = req.header("Content-Type", "application/json").body("{");
            }
            let status = req.send().await.expect("a request to the bridge").status();
            assert!(!status.is_server_error(), "{method} {path}: {status}");
            if status != reqwest::StatusCode::METHOD_NOT_ALLOWED {
                served.insert((path.to_owned(), method.to_owned()));
            }
        }
    }
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "docs/openapi.yaml and the router disagree.\nserved, not documented: {undocumented:?}\ndocumented, not served: {unserved:?}"
    );
    // The roles of every operation behind the bearer scheme are listed.
    let doc = document();
    for (path, method) in &documented {
        let op = &doc["paths"][path.as_str()][method.as_str()];
        let open = op["security"].as_sequence().is_some_and(|s| s.is_empty());
        let console = path.starts_with("/console");
        if !open && !console {
            let roles = op["x-roles"].as_sequence().map_or(0, |r| r.len());
            assert!(roles > 0, "{method} {path}: no x-roles");
        }
    }
}

/// Examples per operation: enough to cross every refusal, bounded for CI.
const MAX_EXAMPLES: &str = "20";

#[tokio::test]
async fn openapi_schemathesis_finds_no_server_error_or_undocumented_answer() {
    let st = std::env::var("VBRIDGE_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "VBRIDGE_SCHEMATHESIS is not set: it names the pinned schemathesis `st` \
             (scripts/setup.sh installs it into .tools/venv and prints the export; scripts/test.sh sets it)"
        )
    });
    assert!(PathBuf::from(&st).is_file(), "VBRIDGE_SCHEMATHESIS={st} is not a file: run scripts/setup.sh");
    let app = bridge("openapi-schemathesis").await;
    let document = document_path().canonicalize().unwrap();
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/it/openapi_hooks.py").canonicalize().unwrap();
    let out = tokio::process::Command::new(&st)
        .current_dir(&app.dir)
        .args(["run", document.to_str().unwrap(), "--url", &app.bridge_url])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance"])
        .args(["--max-examples", MAX_EXAMPLES, "--workers", "1", "--request-timeout", "30"])
        .args(["--max-redirects", "0", "--generation-database", "none", "--no-color"])
        .args(["--header", &format!("Authorization: Bearer {ALL_ROLES_TOKEN}")])
        // Webhooks made with an `X-IL-Signature` are signed for real
        // (openapi_hooks.py), so that hostile payloads reach the intake.
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .env("VBRIDGE_TEST_WEBHOOK_SECRET", SECRET)
        // Loopback only: no proxy from the environment.
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .output()
        .await
        .expect("running schemathesis");
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Its summary (operations, cases, seed) is worth keeping in the log.
    eprintln!("{report}");
    assert!(out.status.success(), "schemathesis found a failure ({}):\n{report}", out.status);
    assert!(!report.contains("No operations"), "schemathesis tested nothing:\n{report}");
    // The signing hook worked: some generated webhooks got past the
    // signature to the intake's own checks, and some were committed.
    let metrics = app.metrics().await;
    for result in ["accepted", "rejected"] {
        let line = format!("vbridge_webhook_requests_total{{result=\"{result}\"}} ");
        let n: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in the metrics"));
        assert!(n > 0.0, "no generated webhook was {result}: the signing hook did not work");
    }
}
