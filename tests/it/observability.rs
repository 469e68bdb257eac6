//! Observability from outside: `/metrics` after known traffic (the policy's
//! five metrics under their docs/contract.md names, the bridge's own, the Temporal
//! SDK's worker metrics), and one trace id followed from the webhook's
//! header to the ATS request and through the JSON logs, which never carry a
//! secret or a redacted field.

use crate::harness::{OPS_TOKEN, Options, SECRET, TestApp, at};
use serde_json::{Value, json};
use vbridge::devtools::client::{decision, started};

/// The value of the sample `name` (with its labels, as printed) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A signed webhook carrying the caller's `X-Trace-Id`.
async fn send_traced(app: &TestApp, event: &Value, trace: &str) -> vbridge::devtools::client::Reply {
    let body = serde_json::to_vec(event).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let secret = vbridge_core::intake::signature::Secret::parse(SECRET, 0).unwrap();
    let sig = vbridge_core::intake::signature::sign_il(&secret, ts, &body);
    let headers = vec![
        ("X-IL-Timestamp".into(), ts.to_string()),
        ("X-IL-Signature".into(), sig),
        ("X-Trace-Id".into(), trace.into()),
    ];
    app.client.send_raw(body, headers).await.unwrap()
}

#[tokio::test]
async fn metrics_count_known_traffic_and_one_trace_id_runs_from_webhook_to_ats_and_logs() {
    let app = TestApp::spawn_with(
        "observability",
        Options {
            extra_env: vec![
                ("VBRIDGE_LOG_FORMAT".into(), "json".into()),
                ("VBRIDGE_LOG".into(), "debug,temporalio_sdk_core=warn,temporalio_sdk=warn,temporalio_client=warn,sqlx=warn,h2=warn,hyper=warn,tower=warn,reqwest=warn".into()),
            ],
            ..Default::default()
        },
    )
    .await;

    // Known traffic: two bad signatures, a verification that goes verified
    // 60 s (by the provider's clock) after its first event, one duplicate, a
    // needs_review, and one ATS failure (a 503, then the write goes through).
    for _ in 0..2 {
        let bytes = serde_json::to_vec(&started("cand-x", "app-x", "evt-x", &at(-10))).unwrap();
        let r = app
            .client
            .send_raw(bytes, vec![("X-IL-Timestamp".into(), "1".into()), ("X-IL-Signature".into(), "v1=00".into())])
            .await
            .unwrap();
        assert_eq!(r.status, 401);
    }
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(10);
    let t1 = (t0 + chrono::Duration::seconds(60)).to_rfc3339();
    let r = send_traced(&app, &started("cand-o", "app-o", "evt-o-1", &t0.to_rfc3339()), trace).await;
    assert_eq!((r.status, r.trace_id.as_deref()), (202, Some(trace)), "the caller's trace id is kept");
    app.wait_synced("cand-o", "app-o", "pending").await;
    app.ats_fault(json!({"mode": "status", "status": 503, "count": 1})).await;
    let mut verified = decision("cand-o", "app-o", "evt-o-2", &t1, "verified");
    verified["raw_face_image"] = json!("FACE-BYTES-MUST-NOT-BE-LOGGED");
    assert_eq!(app.send(&verified).await.status, 202);
    assert_eq!(app.send(&verified).await.status, 200, "a duplicate");
    app.wait_synced("cand-o", "app-o", "verified").await;
    assert_eq!(app.send(&started("cand-r", "app-r", "evt-r-1", &at(-10))).await.status, 202);
    let mut review = decision("cand-r", "app-r", "evt-r-2", &at(-9), "needs_review");
    review["reason_codes"] = json!(["liveness-low"]);
    assert_eq!(app.send(&review).await.status, 202);
    app.wait_synced("cand-r", "app-r", "needs_review").await;
    let gate = app.get_as("/v1/applications/app-o/gate", Some(OPS_TOKEN)).await.json::<Value>().await.unwrap();
    assert_eq!(gate["reason"], "verified");

    let text = app.metrics().await;
    let m = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
    // The policy's five, under docs/contract.md §5's names.
    assert_eq!(m("webhook_signature_invalid_count"), 2.0);
    assert_eq!(m("webhook_duplicate_event_count"), 1.0);
    assert_eq!(m("ats_write_failure_count"), 1.0);
    assert_eq!(m("manual_review_queue_depth"), 1.0);
    assert_eq!(m("time_apply_to_verified_count"), 1.0, "one verification went verified");
    assert_eq!(m("time_apply_to_verified_sum"), 60.0, "first event to verified, by occurred_at");
    assert_eq!(m("time_apply_to_verified_bucket{le=\"30\"}"), 0.0);
    assert_eq!(m("time_apply_to_verified_bucket{le=\"60\"}"), 1.0);
    // The bridge's own.
    assert_eq!(m("vbridge_webhook_requests_total{result=\"accepted\"}"), 4.0);
    assert_eq!(m("vbridge_webhook_requests_total{result=\"duplicate\"}"), 1.0);
    assert_eq!(m("vbridge_webhook_requests_total{result=\"signature_invalid\"}"), 2.0);
    let attempts = app.ats_requests().await.len() as f64;
    assert_eq!(m("vbridge_ats_write_duration_seconds_count{connector=\"generic\"}"), attempts, "one per attempt");
    assert_eq!(m("vbridge_gate_requests_total{reason=\"verified\"}"), 1.0);
    assert!(m("vbridge_relay_lag_seconds") < 60.0);
    assert_eq!(m("vbridge_manual_review_overdue"), 0.0);
    // The Temporal SDK's worker metrics, from its own exporter.
    assert!(text.lines().any(|l| l.starts_with("temporal_") && !l.starts_with('#')), "SDK metrics:\n{text}");
    assert!(text.contains("temporal_workflow_task_execution_latency_seconds"), "{text}");

    // The trace id reached the ATS, and every log line about the event has it.
    let sent = app.ats_requests().await;
    assert_eq!(sent[0].trace_id.as_deref(), Some(trace), "the first write carries the webhook's trace id");
    let log = app.bridge_log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let about_event: Vec<&Value> = lines.iter().filter(|l| l.to_string().contains("evt-o-1")).collect();
    assert!(about_event.len() >= 3, "the event is logged at intake, relay and write: {about_event:?}");
    for l in &about_event {
        assert!(l.to_string().contains(trace), "a line about evt-o-1 without its trace id: {l}");
    }
    // Never a secret, a token, or a redacted field's value.
    for forbidden in [SECRET, OPS_TOKEN, "FACE-BYTES-MUST-NOT-BE-LOGGED"] {
        assert!(!log.contains(forbidden), "the log carries {forbidden:?}");
    }
}

/// Every span an OTLP/HTTP JSON receiver got: (trace id, name).
fn spans_of(bodies: &[Value]) -> Vec<(String, String)> {
    let mut out = vec![];
    for b in bodies {
        for rs in b["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push((
                        s["traceId"].as_str().unwrap_or_default().to_owned(),
                        s["name"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn exported_traces_run_from_the_webhook_through_the_workflow_to_the_activity() {
    use axum::extract::State;
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let collector = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(|State(g): State<Arc<Mutex<Vec<Value>>>>, body: bytes::Bytes| async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    g.lock().unwrap().push(v);
                }
                axum::Json(json!({}))
            }),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let app = TestApp::spawn_with(
        "otel",
        Options {
            extra_env: vec![
                ("VBRIDGE_OTLP_ENDPOINT".into(), endpoint),
                ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    assert_eq!(send_traced(&app, &started("cand-ot", "app-ot", "evt-ot-1", &at(-10)), trace).await.status, 202);
    app.wait_synced("cand-ot", "app-ot", "pending").await;

    let names: Vec<String> = app
        .wait_for("the spans of the trace", std::time::Duration::from_secs(30), || async {
            let spans = spans_of(&got.lock().unwrap());
            let names: Vec<String> = spans.iter().filter(|(t, _)| t == trace).map(|(_, n)| n.clone()).collect();
            let has = |f: &dyn Fn(&str) -> bool| names.iter().any(|n| f(n));
            let all = has(&|n| n == "webhook")
                && has(&|n| n == "forward")
                && has(&|n| n == "HandleSignal:on_event")
                && has(&|n| n == "RunActivity:AtsActivities::write_verification");
            all.then_some(names)
        })
        .await;
    // The client's signal-with-start and our own activity span are in it too:
    // webhook → relay → Temporal → workflow → ATS write, one trace.
    assert!(names.iter().any(|n| n == "SignalWithStartWorkflow:CandidateVerification"), "{names:?}");
    assert!(names.iter().any(|n| n == "__write_verification"), "{names:?}");
}
