//! Manual review against the real Temporal: the queue and its link, SLA
//! escalation (a seconds-long SLA), reviewer decisions and overrides as
//! Updates with validators, roles, and the webhook that may not downgrade.

use crate::harness::{ADMIN_TOKEN, AUDITOR_TOKEN, OPS_TOKEN, Options, REVIEWER_TOKEN, TestApp, at};
use crate::replay::{CURRENT, check_and_save, history_json};
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vbridge::devtools::client::{decision, started};
use vbridge::review::queue::Listing;
use vbridge_core::intake::signature::{self, Secret};

/// A policy like the seed's with an SLA of `sla_hours` (fractions allowed),
/// written into the test's directory; its path.
fn policy_with_sla(dir: &std::path::Path, sla_hours: &str) -> String {
    let text = vbridge_core::DEFAULT_POLICY_YAML.replacen("slaHours: 12", &format!("slaHours: {sla_hours}"), 1);
    assert!(text.contains(&format!("slaHours: {sla_hours}")));
    let path = dir.join(format!("policy-sla-{sla_hours}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// One POST the escalation receiver took.
#[derive(Clone, Debug)]
struct Escalation {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A real HTTP receiver of escalation webhooks; its URL and what it got.
async fn escalation_receiver() -> (String, Arc<Mutex<Vec<Escalation>>>) {
    let got: Arc<Mutex<Vec<Escalation>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/escalations",
            axum::routing::post(
                |State(got): State<Arc<Mutex<Vec<Escalation>>>>, headers: HeaderMap, body: bytes::Bytes| async move {
                    got.lock().unwrap().push(Escalation { headers, body: body.to_vec() });
                    "ok"
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/escalations", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Signs the escalations; the provider's secrets are the harness's.
const ESCALATION_SECRET: &str = "escalation-only-secret";

async fn spawn_review_app(name: &str, sla_hours: &str, escalation_url: Option<&str>) -> TestApp {
    let dir = std::env::temp_dir().join(format!("vbridge-policy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut extra_env = vec![
        ("VBRIDGE_POLICY".to_owned(), policy_with_sla(&dir, sla_hours)),
        ("VBRIDGE_PUBLIC_URL".to_owned(), "https://bridge.example".to_owned()),
    ];
    if let Some(u) = escalation_url {
        extra_env.push(("VBRIDGE_ESCALATION_URL".to_owned(), u.to_owned()));
        extra_env.push(("VBRIDGE_ESCALATION_SECRET".to_owned(), ESCALATION_SECRET.to_owned()));
    }
    TestApp::spawn_with(name, Options { extra_env, ..Default::default() }).await
}

async fn queue(app: &TestApp, query: &str) -> Listing {
    let r = app.get_as(&format!("/v1/reviews{query}"), Some(REVIEWER_TOKEN)).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn decision_path(c: &str, a: &str) -> String {
    format!("/v1/reviews/{c}/{a}/decision")
}

fn override_path(c: &str, a: &str) -> String {
    format!("/v1/verifications/{c}/{a}/override")
}

async fn records(app: &TestApp, c: &str, a: &str) -> Vec<vbridge_proto::DecisionRecord> {
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    store.decisions(Some(c), Some(a)).await.unwrap().into_iter().map(|d| d.record).collect()
}

async fn history_text(app: &TestApp, c: &str, a: &str) -> String {
    String::from_utf8(history_json(app, &vbridge_core::domain::workflow_id(c, a), None).await).unwrap()
}

#[tokio::test]
async fn a_review_escalates_every_sla_with_signed_webhooks_until_a_reviewer_decides_once() {
    let (url, got) = escalation_receiver().await;
    // 0.0005 h = 1.8 s.
    let app = spawn_review_app("review-esc", "0.0005", Some(&url)).await;
    let (c, a) = ("cand-rv", "app-rv");
    assert_eq!(app.send(&started(c, a, "evt-rv-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-rv-2", &at(-9), "needs_review")).await.status, 202);

    // The queue shows it, from the store's projection.
    let item = app
        .wait_for("the item in the queue", Duration::from_secs(30), || async {
            queue(&app, "").await.items.into_iter().find(|i| i.candidate_id == c)
        })
        .await;
    assert_eq!((item.queue.as_str(), item.reason_codes.clone()), ("manual-review", vec!["liveness-low".to_owned()]));
    assert_eq!(item.evidence_pack_url.as_deref(), Some("https://evidence.example/packs/evt-rv-2"));
    assert!(item.flags.is_empty(), "listed codes: no flag");
    // The ATS got the console link of the item.
    let link = app
        .wait_for("the needs_review write", Duration::from_secs(30), || async {
            app.writes().await.into_iter().find(|w| w.fields["verification_state"] == "needs_review")
        })
        .await
        .fields["reviewer_queue_link"]
        .clone();
    assert_eq!(link, format!("https://bridge.example/console/reviews/{c}/{a}"));
    // Engineers see the state, the sync, the review's due time and the last
    // event as the workflow's current details (Temporal UI, `temporal workflow metadata`).
    let id = vbridge_core::domain::workflow_id(c, a);
    let details = app
        .wait_for("current details naming the review", Duration::from_secs(30), || async {
            let out = app.temporal_cli(&["workflow", "metadata", "--workflow-id", &id]);
            out.contains("review in manual-review due").then_some(out)
        })
        .await;
    assert!(details.contains("state: needs_review") && details.contains("last event evt-rv-2"), "{details}");

    // Two escalations, 1.8 s apart, each signed in the IL scheme with its own key.
    let sent = app
        .wait_for("two escalations", Duration::from_secs(60), || async {
            let g = got.lock().unwrap().clone();
            (g.len() >= 2).then_some(g)
        })
        .await;
    // Escalations are signed with VBRIDGE_ESCALATION_SECRET, never with one
    // of the provider's secrets (docs/contract.md §5).
    let secret = Secret::parse(ESCALATION_SECRET, 0).unwrap();
    let mut keys = vec![];
    for (n, e) in sent.iter().take(2).enumerate() {
        let header = |h: &str| e.headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let ts: i64 = header("X-IL-Timestamp").parse().unwrap();
        assert_eq!(
            header("X-IL-Signature"),
            signature::sign_il(&secret, ts, &e.body),
            "signed with the escalation secret"
        );
        let body: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(body["type"], "review.escalated");
        assert_eq!((body["candidate_id"].as_str(), body["application_id"].as_str()), (Some(c), Some(a)));
        assert_eq!(body["escalation"], n as u64 + 1);
        assert_eq!(body["queue"], "manual-review");
        keys.push(header("Idempotency-Key"));
    }
    assert_ne!(keys[0], keys[1], "each escalation has its own idempotency key");
    let overdue = queue(&app, "?overdue=true").await;
    let item = overdue.items.iter().find(|i| i.candidate_id == c).expect("the escalated item is overdue");
    assert!(item.overdue && item.escalations >= 1);
    let timeline = app.timeline(c, a).await.unwrap();
    assert!(timeline.iter().filter(|t| t.kind == "escalated").count() >= 2);
    assert!(timeline.iter().any(|t| t.kind == "escalation_sent" && t.reason.contains("HTTP 200")));

    // The reviewer decides; a retry with the same key applies once.
    let body = json!({"decision": "verified", "reason_code": "liveness-low", "note": "checked the video"});
    let r = app.post_as(&decision_path(c, a), Some(REVIEWER_TOKEN), Some("decide-rv-1"), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "verified");
    let again = app.post_as(&decision_path(c, a), Some(REVIEWER_TOKEN), Some("decide-rv-1"), &body).await;
    assert_eq!(again.status(), 200, "the same Idempotency-Key answers the same outcome");
    let view = app.wait_synced(c, a, "verified").await;
    assert!(view.review.is_none());
    let timeline = app.timeline(c, a).await.unwrap();
    assert_eq!(timeline.iter().filter(|t| t.kind == "review_decided").count(), 1, "applied once");

    // The ATS write carries the override fields; the log has the actor.
    let writes = app.writes().await;
    let last = writes.last().unwrap();
    assert_eq!(last.fields["verification_state"], "verified");
    assert_eq!(last.fields["override_actor"], "it-reviewer");
    assert_eq!(last.fields["override_reason_code"], "liveness-low");
    assert!(!last.fields["override_timestamp"].is_empty());
    let log = app
        .wait_for("the decision in the audit log", Duration::from_secs(30), || async {
            records(&app, c, a).await.into_iter().find(|r| r.kind == "review_decided")
        })
        .await;
    assert_eq!((log.override_actor.as_str(), log.override_reason_code.as_str()), ("it-reviewer", "liveness-low"));
    // The note is sealed under the candidate's key (docs/privacy.md).
    assert!(!log.detail.contains("checked the video"));
    assert!(app.opened(c, &log.detail).await.contains("checked the video"));

    // The item left the queue; the SLA timer was cancelled, so no more escalations.
    app.wait_for("the item to leave the queue", Duration::from_secs(30), || async {
        (!queue(&app, "").await.items.iter().any(|i| i.candidate_id == c)).then_some(())
    })
    .await;
    let history = history_text(&app, c, a).await;
    assert!(history.contains("TimerCanceledEventAttributes"), "the decision cancelled the SLA timer");
    let metrics = app.metrics().await;
    assert!(metrics.contains("\nmanual_review_queue_depth 0\n"), "{metrics}");
    assert!(!metrics.contains("vbridge_manual_review_escalation_count 0\n"), "{metrics}");
    assert!(
        metrics.contains("\nvbridge_manual_review_sla_breaches_total 1\n"),
        "one item breached its SLA once: {metrics}"
    );
    check_and_save(history.as_bytes(), &format!("candidate_verification_{CURRENT}_escalated.json")).await;
}

#[tokio::test]
async fn validators_refuse_bad_decisions_without_a_trace_and_of_two_decisions_one_applies() {
    // 0.01 h = 36 s: the decisions below come well before it.
    let app = spawn_review_app("review-val", "0.01", None).await;
    let (c, a) = ("cand-val", "app-val");
    assert_eq!(app.send(&started(c, a, "evt-val-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-val-2", &at(-9), "needs_review")).await.status, 202);
    app.wait_for("the review", Duration::from_secs(30), || async { app.state(c, a).await.ok().and_then(|v| v.review) })
        .await;
    let path = decision_path(c, a);

    // Credentials and roles.
    let body = json!({"decision": "verified", "reason_code": "doc-anomaly"});
    assert_eq!(app.post_as(&path, None, None, &body).await.status(), 401);
    assert_eq!(app.post_as(&path, Some(AUDITOR_TOKEN), None, &body).await.status(), 403);
    let ov = json!({"to": "failed", "reason_code": "doc-anomaly", "note": "x"});
    let r = app.post_as(&override_path(c, a), Some(REVIEWER_TOKEN), None, &ov).await;
    assert_eq!(r.status(), 403, "a reviewer's token cannot override");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "forbidden");
    // Both kinds of refusal are in the audit log (its `access` chain) and counted.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let denied = app
        .wait_for("the refusals in the audit log", Duration::from_secs(30), || async {
            let d: Vec<_> = store
                .decisions(None, None)
                .await
                .ok()?
                .into_iter()
                .filter(|d| d.record.kind == "access_denied")
                .collect();
            (d.len() >= 3).then_some(d)
        })
        .await;
    assert!(denied.iter().all(|d| d.stream == "access"));
    let unauth = denied.iter().find(|d| d.record.processing_result == "unauthenticated").unwrap();
    // Aggregated by route: the template, the count, and the path as a sample.
    assert_eq!(unauth.record.write_targets, "POST /v1/reviews/{candidate}/{application}/decision");
    let detail: Value = serde_json::from_str(&unauth.record.detail).unwrap();
    assert_eq!((detail["count"].as_u64(), detail["sample_path"].as_str()), (Some(1), Some(path.as_str())));
    assert!(
        denied.iter().any(|d| d.record.processing_result == "forbidden" && d.record.override_actor == "it-auditor")
    );
    let access = store.verify_streams(Some(&["access".to_owned()])).await.unwrap();
    assert!(access.broken.is_none() && access.records >= 3, "the access chain verifies: {access:?}");
    // The whole store verifies too, from one snapshot, while the workflow appends.
    let all = store.verify_chains().await.unwrap();
    assert!(all.broken.is_none(), "{all:?}");
    let metrics = app.metrics().await;
    assert!(metrics.contains("vbridge_api_unauthenticated_count 1"), "{metrics}");
    assert!(metrics.contains("vbridge_api_forbidden_count 2"), "{metrics}");

    // The validator refuses: a code outside the list, a state that is not a decision.
    let r = app
        .post_as(&path, Some(REVIEWER_TOKEN), None, &json!({"decision": "verified", "reason_code": "looks-fine"}))
        .await;
    assert_eq!(r.status(), 422);
    let e = r.json::<Value>().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_reason_code");
    assert!(e["error"]["message"].as_str().unwrap().contains("liveness-low"), "names the allowed codes: {e}");
    let r = app
        .post_as(&path, Some(REVIEWER_TOKEN), None, &json!({"decision": "pending", "reason_code": "doc-anomaly"}))
        .await;
    assert_eq!(r.status(), 422);
    let r =
        app.post_as(&override_path(c, a), Some(ADMIN_TOKEN), None, &json!({"to": "failed", "note": "no code"})).await;
    assert_eq!(r.status(), 422, "an override without a reason code is refused");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_reason_code");
    let r = app.post_as("/v1/reviews/nobody/nothing/decision", Some(REVIEWER_TOKEN), None, &body).await;
    assert_eq!(r.status(), 409, "an unknown verification is not in review");
    assert!(!app.workflow_exists("nobody", "nothing").await, "and nothing was started for it");
    let history = history_text(&app, c, a).await;
    assert!(!history.contains("WorkflowExecutionUpdate"), "refused updates leave no history event");

    // Two reviewers at once: exactly one applies, the other gets a conflict.
    let (yes, no) = (
        json!({"decision": "verified", "reason_code": "doc-anomaly"}),
        json!({"decision": "failed", "reason_code": "doc-anomaly"}),
    );
    let (one, two) = tokio::join!(
        app.post_as(&path, Some(REVIEWER_TOKEN), Some("two-a"), &yes),
        app.post_as(&path, Some(REVIEWER_TOKEN), Some("two-b"), &no),
    );
    let mut statuses = [one.status().as_u16(), two.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "one decision applies");
    let timeline = app.timeline(c, a).await.unwrap();
    assert_eq!(timeline.iter().filter(|t| t.kind == "review_decided").count(), 1);
    let after = app.post_as(&path, Some(REVIEWER_TOKEN), None, &body).await;
    assert_eq!(after.status(), 409, "decided already");
    assert_eq!(after.json::<Value>().await.unwrap()["error"]["code"], "conflict");

    // The decision came before the SLA: its timer was cancelled, never fired.
    let history = history_text(&app, c, a).await;
    assert!(history.contains("TimerCanceledEventAttributes"));
    assert!(!history.contains("ReviewActivities::escalate"), "no escalation");
    assert!(!app.timeline(c, a).await.unwrap().iter().any(|t| t.kind == "escalated"));
}

#[tokio::test]
async fn overrides_move_any_way_with_a_code_and_webhooks_never_downgrade() {
    let app = spawn_review_app("review-ovr", "12", None).await;
    let (c, a) = ("cand-ov", "app-ov");
    assert_eq!(app.send(&started(c, a, "evt-ov-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-ov-2", &at(-9), "verified")).await.status, 202);
    app.wait_synced(c, a, "verified").await;

    // A webhook that would move it back is refused and recorded, with the
    // reason. (A decision that would is a provider reversal: tests/it/reversal.rs.)
    assert_eq!(app.send(&started(c, a, "evt-ov-3", &at(-8))).await.status, 202);
    let refused = app
        .wait_for("the refused downgrade", Duration::from_secs(30), || async {
            app.timeline(c, a).await.ok()?.into_iter().find(|t| t.event_id == "evt-ov-3")
        })
        .await;
    assert_eq!(refused.kind, "refused");
    assert!(refused.reason.contains("downgrade"), "{}", refused.reason);
    assert_eq!(app.state(c, a).await.unwrap().state, "verified");

    // An admin overrides verified -> failed, then failed -> verified, then back to review.
    let mut expect = vec![];
    for (to, key) in [("failed", "ov-1"), ("verified", "ov-2"), ("needs_review", "ov-3")] {
        let body = json!({"to": to, "reason_code": "doc-anomaly", "note": format!("case 42: {to}")});
        let r = app.post_as(&override_path(c, a), Some(ADMIN_TOKEN), Some(key), &body).await;
        assert_eq!(r.status(), 200, "override to {to}");
        assert_eq!(r.json::<Value>().await.unwrap()["state"], to);
        expect.push(to);
    }
    app.wait_synced(c, a, "needs_review").await;
    let overrides: Vec<_> = app
        .wait_for("three overrides in the audit log", Duration::from_secs(30), || async {
            let o: Vec<_> = records(&app, c, a).await.into_iter().filter(|r| r.kind == "override").collect();
            (o.len() == 3).then_some(o)
        })
        .await;
    assert!(overrides.iter().all(|r| r.override_actor == "it-admin" && r.override_reason_code == "doc-anomaly"));
    assert_eq!(overrides.iter().map(|r| r.state_after.as_str()).collect::<Vec<_>>(), expect);
    // The ATS got each, with the override fields; the last also the queue link.
    let writes = app.writes().await;
    let last = writes.last().unwrap();
    assert_eq!(last.fields["verification_state"], "needs_review");
    assert_eq!(last.fields["override_actor"], "it-admin");
    assert!(last.fields.contains_key("reviewer_queue_link"));
    // The override into review opened an item.
    let item = app
        .wait_for("the overridden item in the queue", Duration::from_secs(30), || async {
            queue(&app, "?reason_code=doc-anomaly").await.items.into_iter().find(|i| i.candidate_id == c)
        })
        .await;
    assert_eq!(item.reason_codes, vec!["doc-anomaly"]);

    // A provider's needs_review without reason codes is accepted and flagged.
    let (c2, a2) = ("cand-ul", "app-ul");
    assert_eq!(app.send(&started(c2, a2, "evt-ul-1", &at(-10))).await.status, 202);
    let mut nr = decision(c2, a2, "evt-ul-2", &at(-9), "needs_review");
    nr.as_object_mut().unwrap().remove("reason_codes");
    let reply = app.send(&nr).await;
    assert_eq!(reply.status, 202, "accepted, not refused: {:?}", reply.body);
    let flagged = app
        .wait_for("the flagged item", Duration::from_secs(30), || async {
            queue(&app, "").await.items.into_iter().find(|i| i.candidate_id == c2)
        })
        .await;
    assert_eq!(flagged.flags, vec!["unlisted_reason_code"]);
    assert!(flagged.reason_codes.is_empty(), "the codes are kept as given");
    assert!(app.metrics().await.contains("vbridge_manual_review_unlisted_reason_code_count 1"));
    // Filters: by reason code and by queue; paging.
    let only = queue(&app, "?reason_code=doc-anomaly").await;
    assert!(only.items.iter().all(|i| i.candidate_id == c));
    let page = queue(&app, "?limit=1").await;
    assert_eq!(page.items.len(), 1);
    let next = queue(&app, &format!("?limit=1&cursor={}", page.next.expect("a second page"))).await;
    assert_eq!(next.items.len(), 1);
    assert_ne!(next.items[0].candidate_id, page.items[0].candidate_id);
    assert_eq!(queue(&app, "?queue=elsewhere").await.items.len(), 0);
    let r = app.get_as("/v1/reviews", Some(OPS_TOKEN)).await;
    assert_eq!(r.status(), 403, "ops does not read the queue");

    let history = history_text(&app, c, a).await;
    check_and_save(history.as_bytes(), &format!("candidate_verification_{CURRENT}_overridden.json")).await;
}

#[tokio::test]
async fn the_cli_lists_the_queue_decides_and_overrides_as_its_actor() {
    let app = spawn_review_app("review-cli", "12", None).await;
    let (c, a) = ("cand-cli", "app-cli");
    assert_eq!(app.send(&started(c, a, "evt-cli-1", &at(-10))).await.status, 202);
    assert_eq!(app.send(&decision(c, a, "evt-cli-2", &at(-9), "needs_review")).await.status, 202);
    let listed = app
        .wait_for("the item in `vbridge review list`", Duration::from_secs(30), || async {
            let out = app.vbridge_cli(&["review", "list", "--json"]).await;
            let page: Listing = serde_json::from_slice(&out.stdout).ok()?;
            page.items.into_iter().find(|i| i.candidate_id == c)
        })
        .await;
    assert_eq!(listed.reason_codes, vec!["liveness-low"]);
    let table = String::from_utf8(app.vbridge_cli(&["review", "list"]).await.stdout).unwrap();
    assert!(table.contains(c) && table.contains("liveness-low"), "{table}");

    // A bad reason code is refused with the contract's code, and nothing moves.
    let bad = app
        .vbridge_cli(&[
            "review",
            "decide",
            "--candidate",
            c,
            "--application",
            a,
            "--decision",
            "failed",
            "--reason-code",
            "meh",
            "--actor",
            "cli-rita",
        ])
        .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_reason_code"));
    let ok = app
        .vbridge_cli(&[
            "review",
            "decide",
            "--candidate",
            c,
            "--application",
            a,
            "--decision",
            "failed",
            "--reason-code",
            "doc-anomaly",
            "--note",
            "document forged",
            "--actor",
            "cli-rita",
            "--idempotency-key",
            "cli-1",
        ])
        .await;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&ok.stdout).unwrap()["state"], "failed");
    app.wait_synced(c, a, "failed").await;
    assert_eq!(app.writes().await.last().unwrap().fields["override_actor"], "cli-rita");

    let ov = app
        .vbridge_cli(&[
            "override",
            "--candidate",
            c,
            "--application",
            a,
            "--to",
            "verified",
            "--reason-code",
            "doc-anomaly",
            "--note",
            "appeal upheld",
            "--actor",
            "cli-ada",
        ])
        .await;
    assert!(ov.status.success(), "{}", String::from_utf8_lossy(&ov.stderr));
    app.wait_synced(c, a, "verified").await;
    let last = app.writes().await.into_iter().last().unwrap();
    assert_eq!(
        (last.fields["override_actor"].as_str(), last.fields["verification_state"].as_str()),
        ("cli-ada", "verified")
    );
    let unknown = app
        .vbridge_cli(&[
            "override",
            "--candidate",
            "ghost",
            "--application",
            a,
            "--to",
            "verified",
            "--reason-code",
            "doc-anomaly",
            "--actor",
            "cli-ada",
        ])
        .await;
    assert!(!unknown.status.success());
    assert!(!app.workflow_exists("ghost", a).await, "nothing started for an unknown verification");
}
