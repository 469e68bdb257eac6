//! The commercial ATS connectors (Greenhouse Harvest v3 and v1, Ashby,
//! Lever) against the sandbox's impersonation of each API, which refuses any
//! request whose credentials, documented headers or body shape are not the
//! API's own. Each test drives real verifications through the real Temporal
//! server and checks what reached the ATS, request by request.

use crate::harness::{OPS_TOKEN, Options, TestApp, at};
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;
use vbridge::devtools::client::{decision, started};
use vbridge::devtools::sandbox::RequestLog;
use vbridge::devtools::sandbox::impersonate::{API_KEY, USER_ID};

const WAIT: Duration = Duration::from_secs(60);

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The requests to paths starting with `prefix`, as (method, path, status).
pub(crate) fn calls(log: &[RequestLog], prefix: &str) -> Vec<(String, String, u16)> {
    log.iter().filter(|r| r.path.starts_with(prefix)).map(|r| (r.method.clone(), r.path.clone(), r.status)).collect()
}

pub(crate) async fn dead_letters(app: &TestApp) -> Vec<Value> {
    let body: Value = app.get_as("/v1/writes/failed", Some(OPS_TOKEN)).await.json().await.unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn greenhouse_v3_takes_a_token_refreshes_it_on_401_and_writes_mapped_custom_fields() {
    let app = crate::greenhouse::v3_app("greenhouse-v3", "verification_state = \"vb_state\"\n", "500").await;
    let (c, a) = ("cand-gh", "4001");
    assert_eq!(app.send(&started(c, a, "evt-gh-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;
    let log = app.ats_requests().await;
    assert_eq!(
        calls(&log, "/"),
        vec![("POST".into(), "/token".into(), 200), ("PATCH".into(), "/v3/applications/4001".into(), 200)],
        "one token, then the write"
    );
    assert_eq!(log[1].authorization.as_deref(), Some("Bearer gh-sandbox-token-1"));
    let record = app.ats_record("greenhouse", a).await;
    assert_eq!(record["fields"]["vb_state"], "pending", "the field map's key: {record}");
    assert!(record["fields"].get("verification_state").is_none());

    // The token is revoked behind the bridge's back: the next write gets a
    // 401, takes a new token once, and goes through.
    app.sandbox_post("/_sandbox/ats/revoke-tokens", &json!({})).await;
    assert_eq!(app.send(&decision(c, a, "evt-gh-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    let log = app.ats_requests().await;
    assert_eq!(
        calls(&log[2..], "/"),
        vec![
            ("PATCH".into(), "/v3/applications/4001".into(), 401),
            ("POST".into(), "/token".into(), 200),
            ("PATCH".into(), "/v3/applications/4001".into(), 200),
        ]
    );
    assert_eq!(log[4].authorization.as_deref(), Some("Bearer gh-sandbox-token-2"));
    let record = app.ats_record("greenhouse", a).await;
    assert_eq!(record["fields"]["vb_state"], "verified");
    assert_eq!(record["fields"]["verification_last_event_id"], "evt-gh-2");

    // An application whose custom field does not exist in Greenhouse: 422,
    // refused for good, a dead letter; re-driven once the field exists.
    app.sandbox_post("/_sandbox/ats/fields", &json!({"fields": ["vb_state"]})).await;
    assert_eq!(app.send(&started("cand-gh2", "4002", "evt-gh-3", &at(-8))).await.status, 202);
    let letter = app.wait_for("the dead letter", WAIT, || async { dead_letters(&app).await.first().cloned() }).await;
    assert!(letter.to_string().contains("422"), "{letter}");
    let refused = calls(&app.ats_requests().await, "/v3/applications/4002");
    assert_eq!(refused, vec![("PATCH".into(), "/v3/applications/4002".into(), 422)], "a 422 is not retried");
    app.sandbox_post("/_sandbox/ats/fields", &json!({"fields": ["vb_state", "verification_last_event_id"]})).await;
    let r = app.post_as("/v1/writes/retry", Some(OPS_TOKEN), None, &json!({"all": true})).await;
    assert_eq!(r.status(), 202);
    app.wait_synced("cand-gh2", "4002", "pending").await;

    // Reconciliation reads Greenhouse back (GET, mapped keys → policy names):
    // nothing drifted; then a recruiter's edit is found.
    let report = app.reconcile(true).await;
    assert_eq!((report["checked"].as_u64(), report["drifted"].as_u64()), (Some(2), Some(0)), "{report}");
    app.sandbox_post("/_sandbox/ats/greenhouse/4001", &json!({"field": "vb_state", "value": "failed"})).await;
    let report = app.reconcile(true).await;
    assert_eq!(report["drifted"].as_u64(), Some(1), "{report}");
    assert_eq!(report["items"][0]["found"]["verification_state"], "failed", "{report}");

    // `vbridge ats check`: the token works; a field Greenhouse lacks is named.
    app.sandbox_post("/_sandbox/ats/fields", &json!({"fields": ["vb_state"]})).await;
    let out = app.vbridge_cli(&["ats", "check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("OAuth2 token issued"), "{stdout}");
    assert!(stdout.contains("MISSING verification_last_event_id"), "{stdout}");
    assert!(stdout.contains("ok      verification_state → vb_state"), "{stdout}");
    // Wrong credentials: the check says the token endpoint refused them.
    let out = app.vbridge_cli_with(&["ats", "check", "--json"], &[("VBRIDGE_GREENHOUSE_CLIENT_SECRET", "wrong")]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{report}");
    assert!(report["error"].as_str().unwrap().contains("invalid_client"), "{report}");
}

#[tokio::test]
async fn greenhouse_v1_sends_basic_auth_and_on_behalf_of_and_stays_under_the_rate_limit() {
    let app = TestApp::spawn_with(
        "greenhouse-v1",
        Options {
            extra_env: env(&[
                ("VBRIDGE_ATS_KIND", "greenhouse"),
                ("VBRIDGE_GREENHOUSE_API_URL", "{sandbox}"),
                ("VBRIDGE_GREENHOUSE_API_KEY", API_KEY),
                ("VBRIDGE_GREENHOUSE_USER_ID", USER_ID),
                // Greenhouse's window is 10 s; 2 s here keeps the test short.
                ("VBRIDGE_GREENHOUSE_RATE_WINDOW_MS", "2000"),
            ]),
            ..Default::default()
        },
    )
    .await;
    app.sandbox_post("/_sandbox/ats/rate-limit", &json!({"limit": 10, "window_ms": 2000})).await;
    assert_eq!(app.send(&started("cand-v1-0", "5000", "evt-v1-0", &at(-10))).await.status, 202);
    app.wait_synced("cand-v1-0", "5000", "pending").await;
    let first = app.ats_requests().await.remove(0);
    assert_eq!((first.method.as_str(), first.path.as_str(), first.status), ("PATCH", "/v1/applications/5000", 200));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:"));
    assert_eq!(first.authorization, Some(format!("Basic {basic}")), "the API key as user name, no password");
    assert_eq!(first.on_behalf_of.as_deref(), Some(USER_ID));

    // 24 more writes at once, 2.5 times the 10 per window Greenhouse allows:
    // the client paces them (learned from X-RateLimit-Limit), no 429.
    let n = 24;
    for i in 1..=n {
        let (c, a) = (format!("cand-v1-{i}"), format!("{}", 5000 + i));
        assert_eq!(app.send(&started(&c, &a, &format!("evt-v1-{i}"), &at(-10))).await.status, 202);
    }
    for i in 1..=n {
        app.wait_synced(&format!("cand-v1-{i}"), &format!("{}", 5000 + i), "pending").await;
    }
    let log = app.ats_requests().await;
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), n + 1, "one request per write: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "the limiter kept under the limit: {statuses:?}");

    // A 429 with Retry-After is honoured.
    app.ats_fault(json!({"mode": "retry_after", "seconds": 1, "count": 1})).await;
    assert_eq!(app.send(&started("cand-v1-x", "5999", "evt-v1-x", &at(-10))).await.status, 202);
    app.wait_synced("cand-v1-x", "5999", "pending").await;
    let tail: Vec<RequestLog> = app.ats_requests().await.into_iter().skip(n + 1).collect();
    assert_eq!(tail.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 200]);
    let gap = chrono::DateTime::parse_from_rfc3339(&tail[1].at).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&tail[0].at).unwrap();
    assert!(gap >= chrono::Duration::milliseconds(900), "Retry-After: 1 was honoured ({gap})");
}

#[tokio::test]
async fn ashby_sets_every_field_in_one_call_and_treats_401_and_403_as_permanent() {
    let app = TestApp::spawn_with(
        "ashby",
        Options {
            extra_env: env(&[
                ("VBRIDGE_ATS_KIND", "ashby"),
                ("VBRIDGE_ASHBY_API_URL", "{sandbox}"),
                ("VBRIDGE_ASHBY_API_KEY", API_KEY),
            ]),
            ..Default::default()
        },
    )
    .await;
    let (c, a) = ("cand-ash", "9a1b2c3d-app");
    assert_eq!(app.send(&started(c, a, "evt-ash-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-ash-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    let log = app.ats_requests().await;
    let sets = calls(&log, "/customField.setValues");
    assert!(sets.iter().all(|s| s.2 == 200) && !sets.is_empty(), "{sets:?}");
    assert_eq!(sets.len(), app.writes().await.len(), "one call per write, every field in it");
    let record = app.ats_record("ashby", a).await;
    assert_eq!(record["fields"]["verification_state"], "verified");
    assert!(record["fields"]["evidence_pack_url"].as_str().is_some_and(|u| u.starts_with("http")), "{record}");

    // 403 (a missing permission) and 401 (a bad key): refused for good, once each.
    for (i, status) in [(3, 403u16), (4, 401)] {
        app.ats_fault(json!({"mode": "status", "status": status, "count": 1})).await;
        let (c, a) = (format!("cand-ash{i}"), format!("app-ash{i}"));
        assert_eq!(app.send(&started(&c, &a, &format!("evt-ash-{i}"), &at(-8))).await.status, 202);
        app.wait_for("the dead letter", WAIT, || async { (dead_letters(&app).await.len() == i - 2).then_some(()) })
            .await;
        let tries = app.ats_requests().await.iter().filter(|r| r.status == status).count();
        assert_eq!(tries, 1, "a {status} is not retried");
        assert_eq!(app.state(&c, &a).await.unwrap().ats_sync, "failed");
    }

    // Reconciliation reads through application.info: nothing drifted.
    let report = app.reconcile(true).await;
    assert_eq!((report["checked"].as_u64(), report["drifted"].as_u64()), (Some(1), Some(0)), "{report}");
    assert!(calls(&app.ats_requests().await, "/application.info").iter().all(|c| c.2 == 200));
}

#[tokio::test]
async fn lever_keeps_the_state_in_a_tag_and_the_rest_in_idempotent_notes() {
    let app = TestApp::spawn_with(
        "lever",
        Options {
            extra_env: env(&[
                ("VBRIDGE_ATS_KIND", "lever"),
                ("VBRIDGE_LEVER_API_URL", "{sandbox}/v1"),
                ("VBRIDGE_LEVER_API_KEY", API_KEY),
                ("VBRIDGE_LEVER_USER_ID", USER_ID),
            ]),
            ..Default::default()
        },
    )
    .await;
    let (c, a) = ("cand-lv", "opp-7f3e");
    assert_eq!(app.send(&started(c, a, "evt-lv-1", &at(-10))).await.status, 202);
    app.wait_synced(c, a, "pending").await;
    let record = app.ats_record("lever", a).await;
    assert_eq!(record["tags"], json!(["verification_state:pending"]));
    assert_eq!(record["notes"].as_array().unwrap().len(), 1);

    // The note's POST fails once (503) after the tags went in: the retry
    // changes no tag and adds exactly one note.
    app.ats_fault(json!({"mode": "status", "status": 503, "count": 1, "path_suffix": "/notes"})).await;
    assert_eq!(app.send(&decision(c, a, "evt-lv-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;
    let record = app.ats_record("lever", a).await;
    assert_eq!(record["tags"], json!(["verification_state:verified"]), "the old state's tag is removed");
    let notes: Vec<String> =
        record["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[1].starts_with("vbridge verification update\n"), "{}", notes[1]);
    assert!(notes[1].contains("verification_last_event_id: evt-lv-2") && notes[1].contains("evidence_pack_url: http"));
    let log = app.ats_requests().await;
    let notes_calls = calls(&log, &format!("/v1/opportunities/{a}/notes"));
    assert!(notes_calls.contains(&("GET".into(), format!("/v1/opportunities/{a}/notes"), 503)), "{notes_calls:?}");
    let adds = calls(&log, &format!("/v1/opportunities/{a}/addTags"));
    assert_eq!(adds.len(), 2, "one tag per state; the retry found its tag in place: {adds:?}");
    assert!(log.iter().all(|r| r.authorization.as_deref().is_some_and(|h| h.starts_with("Basic "))));

    // Reconciliation reads the tag and the notes back: nothing drifted.
    let report = app.reconcile(true).await;
    assert_eq!((report["checked"].as_u64(), report["drifted"].as_u64()), (Some(1), Some(0)), "{report}");
    // `vbridge ats check`: the key and the user work; Lever has no field catalogue.
    let out = app.vbridge_cli(&["ats", "check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("acting as user 1001 (Sandbox Recruiter)"), "{stdout}");
}
