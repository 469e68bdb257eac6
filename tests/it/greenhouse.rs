//! Greenhouse Harvest v3 as its OpenAPI 3.1 document defines it (a verbatim
//! copy: amp-labs/connectors, providers/greenhouse/metadata/openapi/
//! harvest-api.json). The sandbox's strict impersonation answers as the
//! document says; the connector's writes, reads, reconciliation and `ats
//! check` pass against it; two worker processes sharing one credential, on
//! an API that keeps one active token per credential, do not revoke each
//! other into a storm. Each test fails on what the connector assumed
//! before (v1's shapes, one page, one process).

use crate::ats_apis::{calls, dead_letters};
use crate::harness::{OPS_TOKEN, Options, TestApp, at};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use vbridge::devtools::client::{decision, started};
use vbridge::devtools::sandbox::impersonate::{CLIENT_ID, CLIENT_SECRET, USER_ID};

const WAIT: Duration = Duration::from_secs(60);

/// The settings of a bridge whose ATS is the sandbox's Harvest v3.
pub(crate) const V3_ENV: [(&str, &str); 6] = [
    ("VBRIDGE_ATS_KIND", "greenhouse"),
    ("VBRIDGE_GREENHOUSE_API_URL", "{sandbox}"),
    ("VBRIDGE_GREENHOUSE_AUTH_URL", "{sandbox}/token"),
    ("VBRIDGE_GREENHOUSE_CLIENT_ID", CLIENT_ID),
    ("VBRIDGE_GREENHOUSE_CLIENT_SECRET", CLIENT_SECRET),
    ("VBRIDGE_GREENHOUSE_USER_ID", USER_ID),
];

/// A bridge on Harvest v3 against the sandbox, its field map in `map`.
pub(crate) async fn v3_app(name: &str, map: &str, quiet_ms: &str) -> TestApp {
    let dir = std::env::temp_dir().join(format!("vbridge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("greenhouse-fields.toml");
    std::fs::write(&path, map).unwrap();
    let map = path.display().to_string();
    let more = [("VBRIDGE_GREENHOUSE_TOKEN_QUIET_MS", quiet_ms), ("VBRIDGE_ATS_FIELD_MAP", map.as_str())];
    let extra_env = V3_ENV.iter().chain(&more).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    TestApp::spawn_with(name, Options { extra_env, ..Default::default() }).await
}

/// A token from the sandbox, as a client of the credential.
async fn token(http: &reqwest::Client, sandbox: &str) -> Value {
    let r = http
        .post(format!("{sandbox}/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("sub", USER_ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn the_strict_impersonation_answers_as_the_openapi_document_says() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(vbridge::devtools::sandbox::serve(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{sandbox}{path}")).json(&body).send();
    post("/_sandbox/ats/fields", json!({"fields": ["state", "note"], "archived": ["old"]})).await.unwrap();

    // The token answer: expires_at (RFC 3339), and one active token per
    // credential.
    let first = token(&http, &sandbox).await;
    assert_eq!(first["token_type"], "Bearer");
    assert!(first.get("expires_in").is_none(), "{first}");
    let expires = chrono::DateTime::parse_from_rfc3339(first["expires_at"].as_str().unwrap()).unwrap();
    let lifetime = expires.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    let bearer = token(&http, &sandbox).await["access_token"].as_str().unwrap().to_owned();
    let get = |path: &str, t: &str| http.get(format!("{sandbox}{path}")).bearer_auth(t).send();
    let revoked = get("/v3/applications?ids=1", first["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(revoked.status(), 401, "the second token revoked the first");

    // PATCH: each entry has exactly one of name_key and custom_field_id,
    // and nothing but value besides.
    let patch =
        |body: Value| http.patch(format!("{sandbox}/v3/applications/7")).bearer_auth(&bearer).json(&body).send();
    for bad in [
        json!([{"name_key": "state", "custom_field_id": 4002, "value": "x"}]),
        json!([{"value": "x"}]),
        json!([{"name_key": "state", "value": "x", "label": "y"}]),
        json!([{"id": 4002, "value": "x"}]),
        json!([{"name_key": "state", "delete_value": "true"}]),
        json!([{"name_key": "old", "value": "x"}]),
    ] {
        let r = patch(json!({"custom_fields": bad})).await.unwrap();
        assert_eq!(r.status(), 422, "{bad}");
    }
    // Ids in name order: "note" 4000, "old" 4001, "state" 4002.
    let r =
        patch(json!({"custom_fields": [{"custom_field_id": 4002, "value": "x"}, {"name_key": "note", "value": "n"}]}))
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit"], "75", "v3's 30-s window");
    let r = patch(json!({"custom_fields": [{"name_key": "note", "value": null}]})).await.unwrap();
    assert_eq!(r.status(), 200, "value: null clears");

    // Reading: no GET /v3/applications/{id}; ?ids= answers an array, each
    // custom field {name, type, value} under its name_key.
    assert_eq!(get("/v3/applications/7", &bearer).await.unwrap().status(), 404);
    let apps: Value = get("/v3/applications?ids=7,8", &bearer).await.unwrap().json().await.unwrap();
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps}");
    assert_eq!(apps[0]["custom_fields"]["state"], json!({"name": "state", "type": "short_text", "value": "x"}));
    assert_eq!(apps[0]["custom_fields"]["note"]["value"], Value::Null, "cleared");

    // The field listing: per_page at most 500, pages by Link, the cursor
    // alone; archived fields listed inactive.
    let r = get("/v3/custom_fields?field_type=application&per_page=501", &bearer).await.unwrap();
    assert_eq!(r.status(), 422);
    let r = get("/v3/custom_fields?field_type=application&per_page=2", &bearer).await.unwrap();
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    let page: Value = r.json().await.unwrap();
    assert_eq!(
        page,
        json!([
            {"id": 4000, "name": "note", "name_key": "note", "field_type": "application", "value_type": "short_text",
                "active": true, "private": false, "required": false},
            {"id": 4001, "name": "old", "name_key": "old", "field_type": "application", "value_type": "short_text",
                "active": false, "private": false, "required": false},
        ])
    );
    let next = link.strip_prefix('<').and_then(|l| l.split_once(">; rel=\"next\"")).unwrap().0.to_owned();
    let last = http.get(&next).bearer_auth(&bearer).send().await.unwrap();
    assert!(last.headers().get("link").is_none(), "the last page");
    let last: Value = last.json().await.unwrap();
    assert_eq!(last[0]["name_key"], "state");
    let mixed = http.get(format!("{next}&per_page=2")).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(mixed.status(), 422, "a cursor is the only parameter");
    let _ = stop.send(());
}

#[tokio::test]
async fn greenhouse_v3_writes_reads_reconciles_and_checks_against_the_document() {
    let app = v3_app("gh-doc", "verification_state = \"vb_state\"\n", "500").await;
    let written = [
        "vb_state",
        "verification_last_event_id",
        "verification_decided_at",
        "verification_banner",
        "evidence_pack_url",
    ];
    app.sandbox_post("/_sandbox/ats/fields", &json!({"fields": written})).await;
    let (c, a) = ("cand-doc", "4101");

    // Writes: the kill switch off writes the banner; back on clears it,
    // with `value: null` (v1's `delete_value` is a 422 here).
    assert_eq!(app.send(&started(c, a, "evt-doc-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;
    let banner = || async { app.ats_record("greenhouse", a).await["fields"].get("verification_banner").cloned() };
    for (enabled, what) in [(false, "the banner written"), (true, "the banner cleared")] {
        let r = app
            .http
            .put(format!("{}/v1/controls/gating", app.bridge_url))
            .bearer_auth(OPS_TOKEN)
            .json(&json!({"enabled": enabled, "reason": "greenhouse test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.wait_for(what, WAIT, || async { (banner().await.is_none() == enabled).then_some(()) }).await;
    }
    assert_eq!(app.send(&decision(c, a, "evt-doc-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    let patches = calls(&app.ats_requests().await, "/v3/applications/4101");
    assert!(patches.len() >= 4 && patches.iter().all(|p| p.2 == 200), "{patches:?}");
    assert_eq!(app.ats_record("greenhouse", a).await["fields"]["vb_state"], "verified");
    assert!(dead_letters(&app).await.is_empty());

    // Reads go through ?ids= (there is no GET /v3/applications/{id}) and
    // take each field's value: nothing drifted.
    let report = app.reconcile(true).await;
    assert_eq!((report["checked"].as_u64(), report["drifted"].as_u64()), (Some(1), Some(0)), "{report}");
    let reads = calls(&app.ats_requests().await, "/v3/applications?");
    assert_eq!(reads, vec![("GET".into(), "/v3/applications?ids=4101".into(), 200)]);

    // A recruiter's edit: a dry run reports the field's change (not the
    // whole check missing), a real run heals it.
    app.sandbox_post("/_sandbox/ats/greenhouse/4101", &json!({"field": "vb_state", "value": "failed"})).await;
    let report = app.reconcile(true).await;
    assert_eq!(report["drifted"].as_u64(), Some(1), "{report}");
    assert_eq!(report["items"][0]["found"], json!({"verification_state": "failed"}), "{report}");
    assert_eq!(app.ats_record("greenhouse", a).await["fields"]["vb_state"], "failed", "a dry run heals nothing");
    let report = app.reconcile(false).await;
    assert_eq!((report["drifted"].as_u64(), report["healed"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(app.ats_record("greenhouse", a).await["fields"]["vb_state"], "verified");
    let report = app.reconcile(true).await;
    assert_eq!(report["drifted"].as_u64(), Some(0), "healed: {report}");

    // `ats check`: 600 other fields put the bridge's on the second page;
    // the archived evidence_pack_url is not counted.
    let mut fields: Vec<String> = (0..600).map(|i| format!("filler_{i:03}")).collect();
    fields.extend(written.iter().filter(|f| **f != "evidence_pack_url").map(|f| f.to_string()));
    app.sandbox_post("/_sandbox/ats/fields", &json!({"fields": fields, "archived": ["evidence_pack_url"]})).await;
    let before = app.ats_requests().await.len();
    let out = app.vbridge_cli(&["ats", "check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("MISSING evidence_pack_url"), "archived: {stdout}");
    assert!(stdout.contains("ok      verification_state → vb_state"), "{stdout}");
    assert!(stdout.contains("ok      verification_last_event_id"), "{stdout}");
    let listed = calls(&app.ats_requests().await[before..], "/v3/custom_fields");
    assert_eq!(listed.len(), 2, "two pages: {listed:?}");
    assert_eq!(listed[0].1, "/v3/custom_fields?field_type=application&per_page=500");
    assert!(listed[1].1.starts_with("/v3/custom_fields?cursor="), "{listed:?}");
}

#[tokio::test]
async fn two_workers_sharing_one_credential_take_turns_instead_of_revoking_each_other() {
    // verification_state is written by custom_field_id (vb_state is 4000).
    let quiet = Duration::from_millis(1000);
    let mut app = v3_app("gh-two", "verification_state = \"4000\"\n", "1000").await;
    app.sandbox_post("/_sandbox/ats/fields", &json!({"fields": ["vb_state", "verification_last_event_id"]})).await;
    // A second deployment (its own store and task queue, so its own worker
    // does its own writes) on the same Greenhouse credential.
    let db = format!("sqlite://{}", app.dir.join("second.db").display());
    let queue = format!("it-gh-two-second-{}", std::process::id());
    let second = app.spawn_second_bridge_with(&[("VBRIDGE_DATABASE_URL", &db), ("VBRIDGE_TASK_QUEUE", &queue)]).await;
    let clients = [app.client.clone(), second.client.clone()];
    let clients = &clients;
    let n = 16;
    let start = Instant::now();
    // In turns: the first deployment takes a token, the second takes one
    // (revoking the first's), then the first writes again with its revoked
    // token and must take a new one without a storm or a lost write.
    for (turn, bridge) in [(0..6, 0), (6..11, 1), (11..16, 0)] {
        let replies = futures::future::join_all(turn.clone().map(|i| async move {
            let body = started(&format!("cand-two-{i}"), &format!("{}", 4200 + i), &format!("evt-two-{i}"), &at(-10));
            clients[bridge].send(&body).await.unwrap()
        }))
        .await;
        assert!(replies.iter().all(|r| r.status == 202));
        for i in turn {
            app.wait_synced(&format!("cand-two-{i}"), &format!("{}", 4200 + i), "pending").await;
        }
    }
    let elapsed = start.elapsed();
    assert!(dead_letters(&app).await.is_empty(), "no write refused for a revoked token");
    let second_store = vbridge::config::open_store(&db).await.unwrap();
    assert!(second_store.dead_letters(None, 10).await.unwrap().is_empty(), "nor on the second deployment");
    for i in 0..n {
        let record = app.ats_record("greenhouse", &format!("{}", 4200 + i)).await;
        assert_eq!(record["fields"]["vb_state"], "pending", "{record}");
    }
    let log = app.ats_requests().await;
    let tokens = log.iter().filter(|r| r.path == "/token").count();
    let refused = log.iter().filter(|r| r.status == 401).count();
    eprintln!("two workers: {n} writes in {elapsed:?}, {tokens} tokens issued, {refused} answers 401");
    assert!(tokens >= 2 && refused >= 1, "both workers took a token, revoking the other's: {tokens}, {refused}");
    // Each worker takes at most one token per quiet period (plus its first).
    let bound = 2 * (elapsed.as_millis() / quiet.as_millis()) as usize + 2;
    assert!(tokens <= bound, "{tokens} tokens in {elapsed:?}: a storm");
}

/// A token endpoint that answers something that is not a token response,
/// with a token and the client's secret in it: the bridge keeps retrying the
/// write, and neither value reaches its log, the audit log, a dead letter or
/// the workflow's Temporal history.
#[tokio::test]
async fn a_failing_token_exchange_leaks_neither_the_token_nor_the_secret() {
    let app = v3_app("gh-leak", "verification_state = \"vb_state\"\n", "100").await;
    let fields = [
        "vb_state",
        "verification_last_event_id",
        "verification_decided_at",
        "verification_banner",
        "evidence_pack_url",
    ];
    app.sandbox_post("/_sandbox/ats/fields", &json!({ "fields": fields })).await;
    let leaked = "gh-leaked-access-token-5f2b9c";
    let body = format!(
        "{{\"access_token\":\"{leaked}\",\"token_type\":17,\"expires_at\":\"soon\",\"echo\":\"{CLIENT_SECRET}\"}}"
    );
    app.ats_fault(json!({"mode": "body", "status": 200, "body": body, "path_suffix": "/token"})).await;
    let (c, a) = ("cand-leak", "4301");
    assert_eq!(app.send(&started(c, a, "evt-leak-1", &at(-10))).await.status, 202);
    app.wait_for("token exchanges that failed", WAIT, || async {
        let tries = app.ats_requests().await.iter().filter(|r| r.path == "/token").count();
        (tries >= 3).then_some(())
    })
    .await;
    assert!(app.writes().await.is_empty(), "no write went through without a token");

    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let audit = serde_json::to_string(&store.decisions(None, None).await.unwrap()).unwrap();
    let letters = serde_json::to_string(&store.dead_letters(None, 100).await.unwrap()).unwrap();
    let history = crate::replay::history_json(&app, &format!("verification:{c}:{a}"), None).await;
    let history = String::from_utf8_lossy(&history).into_owned();
    let log = app.bridge_log();
    // Where an engineer sees why the write waits: the pending activity's last failure.
    let described =
        app.temporal_cli(&["workflow", "describe", "--workflow-id", &format!("verification:{c}:{a}"), "-o", "json"]);
    assert!(described.contains("not a token response"), "the failure is reported, without its content: {described}");
    let places = [
        ("the log", &log),
        ("the audit log", &audit),
        ("a dead letter", &letters),
        ("the history", &history),
        ("the workflow's description", &described),
    ];
    for (place, text) in places {
        for secret in [leaked, CLIENT_SECRET] {
            assert!(!text.contains(secret), "{secret} is in {place}");
        }
    }
    app.ats_clear_fault().await;
    app.wait_synced(c, a, "pending").await;
}
