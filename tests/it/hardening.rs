//! The hostile or unlucky day: poison in a burst, a lost database
//! connection, honest health, floods, signatures at the edge, and a closed
//! operator API.

use crate::harness::{AUDITOR_TOKEN, OPS_TOKEN, Options, SECRET, TestApp, at, postgres_url};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};
use vbridge::devtools::client::{Reply, WebhookClient, started};
use vbridge::intake::signature::{Secret, sign_il};

const WAIT: Duration = Duration::from_secs(60);

async fn readyz(app: &TestApp) -> (u16, serde_json::Value) {
    let r = app.get_as("/readyz", None).await;
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// Sign `bytes` with the IL scheme and extra headers.
async fn send_signed(client: &WebhookClient, bytes: Vec<u8>) -> Reply {
    client.send_il(&client.secret.clone(), chrono::Utc::now().timestamp(), bytes).await.unwrap()
}

async fn nul_burst(app: TestApp) {
    let client = app.client.clone();
    let mut sends: Vec<(&'static str, Vec<u8>, bool)> = vec![];
    for i in 0..60 {
        let body = started(&format!("cand-n{i}"), "app-n", &format!("evt-n{i}"), &at(-1));
        sends.push(("good", serde_json::to_vec(&body).unwrap(), true));
    }
    for i in 0..10 {
        let mut body = started(&format!("cand-x{i}"), "app-n", &format!("evt-x{i}"), &at(-1));
        if i % 2 == 0 {
            body["event_type"] = json!("verification.\u{0}started");
        } else {
            body["signals"] = json!({"note": "a\u{0}b"});
        }
        sends.push(("signed-nul", serde_json::to_vec(&body).unwrap(), true));
        let mut body = started(&format!("cand-\u{0}u{i}"), "app-n", &format!("evt-\u{0}u{i}"), &at(-1));
        body["event_type"] = json!("\u{0}");
        sends.push(("unsigned-nul", serde_json::to_vec(&body).unwrap(), false));
    }
    let replies: Vec<(&str, Reply)> = futures::stream::iter(sends)
        .map(|(kind, bytes, signed)| {
            let client = client.clone();
            async move {
                let r = if signed {
                    send_signed(&client, bytes).await
                } else {
                    client.send_raw(bytes, vec![]).await.unwrap()
                };
                (kind, r)
            }
        })
        .buffer_unordered(80)
        .collect()
        .await;
    for (kind, r) in &replies {
        match *kind {
            "good" => assert_eq!(r.status, 202, "a good delivery: {:?}", r.body),
            "signed-nul" => {
                assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_payload")));
                let field = r.body["error"]["field"].as_str().unwrap();
                assert!(field == "event_type" || field == "signals.note", "{field}");
            }
            _ => assert_eq!(r.status, 401, "{:?}", r.body),
        }
    }
    // Every signed delivery is a row; the unsigned ones are counted per
    // window, their claimed ids cleaned of the NUL.
    let rows = app
        .wait_for("70 delivery rows", WAIT, || async {
            let rows = app.deliveries(None).await;
            (rows.len() == 70).then_some(rows)
        })
        .await;
    assert_eq!(rows.iter().filter(|r| r.processing_result == "accepted").count(), 60);
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let refused = app
        .wait_for("10 unsigned refusals counted", WAIT, || async {
            let filter =
                vbridge::store::refused::Filter { code: Some("missing_signature".into()), ..Default::default() };
            let rows = store.refused_deliveries(&filter, None, 100).await.ok()?;
            (rows.len() == 10).then_some(rows)
        })
        .await;
    assert!(refused.iter().any(|r| r.candidate_id == "cand-u3"), "unsigned claims kept, sanitized: {refused:?}");
    for i in [0, 29, 59] {
        app.wait_synced(&format!("cand-n{i}"), "app-n", "pending").await;
    }
}

#[tokio::test]
async fn a_burst_with_nul_bearing_deliveries_accepts_every_good_one() {
    nul_burst(TestApp::spawn("nul").await).await;
}

#[tokio::test]
async fn on_postgres_a_burst_with_nul_bearing_deliveries_accepts_every_good_one() {
    let database_url = Some(postgres_url().await);
    nul_burst(TestApp::spawn_with("nul-pg", Options { database_url, ..Default::default() }).await).await;
}

#[tokio::test]
async fn on_postgres_the_writer_survives_a_terminated_connection() {
    let url = postgres_url().await;
    let app = TestApp::spawn_with("pgkill", Options { database_url: Some(url.clone()), ..Default::default() }).await;
    let db = url.rsplit('/').next().unwrap().to_owned();
    let client = app.client.clone();
    let unavailable = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // A provider that retries on 503, as the contract asks.
    let provider = {
        let (unavailable, acked) = (unavailable.clone(), acked.clone());
        futures::stream::iter(0..120)
            .map(move |i| {
                let client = client.clone();
                let (unavailable, acked) = (unavailable.clone(), acked.clone());
                async move {
                    let body = started(&format!("cand-k{i}"), "app-k", &format!("evt-k{i}"), &at(-1));
                    for _ in 0..400 {
                        let r = client.send(&body).await.unwrap();
                        if r.status == 503 {
                            unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return r.status;
                    }
                    panic!("never acknowledged");
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<u16>>()
    };
    // Mid-burst, three times: every connection to the database is terminated.
    let killer = async {
        for after in [20, 50, 80] {
            while acked.load(std::sync::atomic::Ordering::Relaxed) < after {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            crate::harness::raw_sql(
                &url,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{db}' AND pid <> pg_backend_pid()"
                ),
            )
            .await
            .unwrap();
        }
    };
    let (statuses, ()) = tokio::join!(provider, killer);
    assert!(statuses.iter().all(|s| *s == 202 || *s == 200), "{statuses:?}");
    assert!(unavailable.load(std::sync::atomic::Ordering::Relaxed) > 0, "the kill was felt as 503s");
    let rows = app.deliveries(None).await;
    let accepted: std::collections::BTreeSet<_> =
        rows.iter().filter(|r| r.processing_result == "accepted").filter_map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(accepted.len(), 120, "every delivery is in the store once");
    assert_eq!(rows.iter().filter(|r| r.processing_result == "accepted").count(), 120, "none twice");
    let writes = app
        .wait_for("120 ATS writes", WAIT, || async {
            let w = app.writes().await;
            (w.len() >= 120).then_some(w)
        })
        .await;
    assert_eq!(writes.len(), 120, "each event written once");
    let (status, _) = readyz(&app).await;
    assert_eq!(status, 200, "ready again after the reconnect");
}

#[tokio::test]
async fn readyz_names_the_failing_part_and_healthz_stays_live() {
    let mut app = TestApp::spawn_with(
        "ready",
        Options {
            persist_temporal: true,
            extra_env: vec![("VBRIDGE_READY_MAX_RELAY_LAG_MS".into(), "1000".into())],
            ..Default::default()
        },
    )
    .await;
    // Ready once Temporal is connected (not before: readiness is honest).
    let body = app
        .wait_for("ready after start", WAIT, || async {
            let (status, body) = readyz(&app).await;
            (status == 200).then_some(body)
        })
        .await;
    assert_eq!(body["status"], "ready", "{body}");
    for part in ["store", "temporal", "relay_lag"] {
        assert!(body["checks"][part].is_string(), "{part} is checked: {body}");
    }

    // The store cannot commit: another process holds the write lock.
    let holder = crate::harness::WriteLock::take(&app.database_url()).await;
    let body = app
        .wait_for("readyz to fail on the store", WAIT, || async {
            let (status, body) = readyz(&app).await;
            (status == 503).then_some(body)
        })
        .await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["failing"], json!(["store"]), "{body}");
    assert_eq!(app.get_as("/healthz", None).await.status().as_u16(), 200, "liveness is not readiness");
    holder.release().await;
    app.wait_for("ready again", WAIT, || async { (readyz(&app).await.0 == 200).then_some(()) }).await;

    // Temporal goes away; accepted events wait in the outbox.
    app.temporal.stop();
    assert_eq!(app.send(&started("cand-r", "app-r", "evt-r-1", &at(-1))).await.status, 202);
    let body = app
        .wait_for("readyz to name temporal and relay_lag", WAIT, || async {
            let (status, body) = readyz(&app).await;
            let failing = body["failing"].as_array()?.clone();
            (status == 503 && failing.len() == 2).then_some(body)
        })
        .await;
    assert_eq!(body["failing"], json!(["temporal", "relay_lag"]), "{body}");
    app.temporal.restart().await.unwrap();
    app.wait_synced("cand-r", "app-r", "pending").await;
    app.wait_for("ready once Temporal is back", WAIT, || async { (readyz(&app).await.0 == 200).then_some(()) }).await;
}

#[tokio::test]
async fn requests_past_the_in_flight_bound_are_shed_at_once() {
    let app = TestApp::spawn_with(
        "shed",
        Options {
            extra_env: vec![
                ("VBRIDGE_MAX_IN_FLIGHT".into(), "2".into()),
                ("VBRIDGE_COMMIT_TIMEOUT_MS".into(), "3000".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let holder = crate::harness::WriteLock::take(&app.database_url()).await;
    let client = app.client.clone();
    let timed: Vec<(u16, Duration)> = futures::future::join_all((0..10).map(|i| {
        let client = client.clone();
        async move {
            let t = Instant::now();
            let r = client.send(&started(&format!("cand-s{i}"), "app-s", &format!("evt-s{i}"), &at(-1))).await.unwrap();
            (r.status, t.elapsed())
        }
    }))
    .await;
    holder.release().await;
    assert!(timed.iter().all(|(s, _)| *s == 503), "{timed:?}");
    let fast = timed.iter().filter(|(_, d)| *d < Duration::from_secs(1)).count();
    assert!(fast >= 7, "the excess is shed at once, not queued: {timed:?}");
    assert!(app.metrics().await.contains("vbridge_http_shed_count "), "shedding is counted");
}

#[tokio::test]
async fn a_flood_of_unsigned_requests_is_answered_at_once_and_never_starves_accepted_events() {
    let app = TestApp::spawn("flood").await;
    let holder = crate::harness::WriteLock::take(&app.database_url()).await;
    // While no commit can happen, 9,000 unsigned requests: each answered 401
    // without waiting for the store, and none of them queued for its writer.
    let client = app.client.clone();
    let t = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..9_000)
        .map(|i| {
            let client = client.clone();
            async move {
                let body = serde_json::to_vec(&started("cand-junk", "app-j", &format!("evt-j{i}"), &at(-1))).unwrap();
                client.send_raw(body, vec![]).await.unwrap().status
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let flood_took = t.elapsed();
    assert!(statuses.iter().all(|s| *s == 401));
    assert!(flood_took < Duration::from_secs(60), "{flood_took:?}");
    let metrics = app.metrics().await;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vbridge_store_deferred_rows_dropped_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert_eq!(dropped, 0, "no junk row was ever queued for the writer");
    assert!(metrics.contains("webhook_signature_invalid_count 9000"), "every one counted: {metrics}");
    holder.release().await;
    // A signed event right after is committed ahead of the junk backlog.
    let t = Instant::now();
    let r = app.send(&started("cand-ok", "app-j", "evt-ok", &at(-1))).await;
    assert_eq!(r.status, 202);
    assert!(t.elapsed() < Duration::from_secs(2), "accepted events are not starved: {:?}", t.elapsed());
}

#[tokio::test]
async fn signatures_at_the_edge_over_http() {
    let app = TestApp::spawn("sigedge").await;
    let body = serde_json::to_vec(&started("cand-g", "app-g", "evt-g-1", &at(-1))).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let right = sign_il(&Secret::parse(SECRET, 1).unwrap(), ts, &body);
    let wrong = format!("v1={}", "ab".repeat(32));
    let send = |sig: String, with_ts: bool| {
        let mut h = vec![("X-IL-Signature".to_owned(), sig)];
        if with_ts {
            h.push(("X-IL-Timestamp".to_owned(), ts.to_string()));
        }
        app.client.send_raw(body.clone(), h)
    };
    // No timestamp.
    let r = send(right.clone(), false).await.unwrap();
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("missing_timestamp")));
    // Nine entries: refused whatever they hold.
    let nine = std::iter::repeat_n(wrong.clone(), 8).chain([right.clone()]).collect::<Vec<_>>().join(",");
    let r = send(nine, true).await.unwrap();
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("invalid_signature")));
    // Several entries, the right one last, mixed separators: accepted.
    let several = format!("{wrong}, {wrong} {right}");
    let r = send(several, true).await.unwrap();
    assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{:?}", r.body);
}

#[tokio::test]
async fn the_operator_api_needs_a_credential_and_the_right_role() {
    let metrics_port = vbridge::devtools::devserver::free_port();
    let app = TestApp::spawn_with(
        "auth",
        Options {
            extra_env: vec![
                ("VBRIDGE_API_TOKEN".into(), "legacy-read-token".into()),
                ("VBRIDGE_METRICS_LISTEN".into(), format!("127.0.0.1:{metrics_port}")),
            ],
            ..Default::default()
        },
    )
    .await;
    let path = "/v1/candidates/cand-a/timeline";
    let r = app.get_as(path, None).await;
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "unauthenticated");
    let r = app.get_as(path, Some("not-a-token")).await;
    assert_eq!(r.status().as_u16(), 401);
    let r = app.get_as(path, Some(OPS_TOKEN)).await;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "forbidden");
    assert_eq!(app.get_as(path, Some(AUDITOR_TOKEN)).await.status().as_u16(), 200);
    assert_eq!(app.get_as(path, Some("legacy-read-token")).await.status().as_u16(), 200, "VBRIDGE_API_TOKEN reads");
    assert_eq!(app.get_as("/healthz", None).await.status().as_u16(), 200);
    // With a metrics listener of its own, /metrics is open there and not on the API.
    let open = app.http.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(open.status().as_u16(), 200);
    let text = open.text().await.unwrap();
    assert!(text.contains("vbridge_api_unauthenticated_count 2"), "{text}");
    assert!(text.contains("vbridge_api_forbidden_count 1"), "{text}");
    assert_eq!(app.get_as("/metrics", Some(OPS_TOKEN)).await.status().as_u16(), 404);
    // Its log goes to a file here: no terminal, so no ANSI colour codes.
    let log = app.bridge_log();
    assert!(log.contains("operator API"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log that is not a terminal");
}

#[tokio::test]
async fn two_serves_on_one_sqlite_file_run_one_relay_and_the_other_takes_over() {
    let mut app = TestApp::spawn("lease").await;
    app.send(&started("cand-l1", "app-l", "evt-l1", &at(-2))).await;
    app.wait_synced("cand-l1", "app-l", "pending").await;
    // A second process on the same file: its receiver works, its relay waits.
    let second = app.spawn_second_bridge().await;
    assert_eq!(second.client.send(&started("cand-l2", "app-l", "evt-l2", &at(-2))).await.unwrap().status, 202);
    app.wait_synced("cand-l2", "app-l", "pending").await;
    let logs = |app: &TestApp| app.bridge_log().matches("relay lease taken").count();
    assert_eq!(logs(&app), 1, "only the first process took the relay lease");
    // The first dies: the second takes the lease and forwards what is new.
    app.kill_bridge();
    assert_eq!(second.client.send(&started("cand-l3", "app-l", "evt-l3", &at(-2))).await.unwrap().status, 202);
    app.wait_synced("cand-l3", "app-l", "pending").await;
    assert_eq!(logs(&app), 2, "the second process took the lease over");
    drop(second);
}

#[tokio::test]
async fn an_oversized_body_is_answered_413_not_with_a_reset_connection() {
    let app = TestApp::spawn("big").await;
    // Over the 256 KiB limit, under the 4 MiB drain: read, thrown away, 413.
    let big = serde_json::to_vec(&json!({"event_id": "x".repeat(1024 * 1024)})).unwrap();
    for _ in 0..20 {
        let r = app.client.send_raw(big.clone(), vec![]).await.expect("an answer, not a broken connection");
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (413, Some("payload_too_large")));
    }
}

/// The value of a Prometheus sample.
fn sample(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(-1.0)
}

/// A flood of refused requests (2,000 operator API requests without a token
/// on 4 KB paths, 2,000 forged deliveries claiming one candidate) is counted
/// whole by the metrics, but stored as one record per key per window and
/// logged once a second per source; signed deliveries beside it are taken.
#[tokio::test]
async fn a_flood_of_refusals_is_counted_whole_and_stored_and_logged_bounded() {
    const N: usize = 2000;
    const WINDOW_MS: u128 = 1000;
    let opts =
        Options { extra_env: vec![("VBRIDGE_REFUSAL_WINDOW_MS".into(), WINDOW_MS.to_string())], ..Default::default() };
    let app = TestApp::spawn_with("flood", opts).await;
    let start = Instant::now();
    let long = format!("/v1/candidates/{}/timeline", "x".repeat(4096));
    // Half the flood each way, interleaved.
    let statuses: Vec<u16> = futures::stream::iter(0..2 * N)
        .map(|i| {
            let (app, long) = (&app, &long);
            async move {
                if i % 2 == 0 {
                    app.get_as(long, None).await.status().as_u16()
                } else {
                    let forged = started("victim", "app-v", &format!("evt-forged-{i}"), &at(-1));
                    let headers =
                        vec![("X-IL-Timestamp".into(), "1".into()), ("X-IL-Signature".into(), "v1=00".into())];
                    app.client.send_raw(serde_json::to_vec(&forged).unwrap(), headers).await.unwrap().status
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401), "every one refused");
    // Signed deliveries beside the flood are taken.
    assert_eq!(app.send(&started("cand-f", "app-f", "evt-f-1", &at(-1))).await.status, 202);

    // Every refusal is counted, in the metrics at once and in the audit log
    // once its window is recorded.
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "vbridge_api_unauthenticated_count"), N as f64, "{metrics}");
    assert_eq!(sample(&metrics, "webhook_signature_invalid_count"), N as f64, "{metrics}");
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let count = |kind: &str, records: &[vbridge::store::StoredDecision]| -> u64 {
        records.iter().filter(|d| d.record.kind == kind).map(|d| vbridge::audit::refusals::count_of(&d.record)).sum()
    };
    let records = app
        .wait_for("every refusal counted in the audit log", WAIT, || async {
            let d = store.decisions(None, None).await.ok()?;
            (count("access_denied", &d) == N as u64 && count("deliveries_refused", &d) == N as u64).then_some(d)
        })
        .await;
    let elapsed = start.elapsed();
    // One key per source (a route template; a code and a claimed candidate),
    // so one record per source per window the flood spanned.
    let windows = (elapsed.as_millis() / WINDOW_MS) as usize + 2;
    let refusals: Vec<_> =
        records.iter().filter(|d| d.record.kind == "access_denied" || d.record.kind == "deliveries_refused").collect();
    assert!(refusals.len() <= 2 * windows, "{} records for {windows} windows of {elapsed:?}", refusals.len());
    let stored: usize =
        refusals.iter().map(|d| d.record.reason.len() + d.record.write_targets.len() + d.record.detail.len()).sum();
    assert!(stored <= refusals.len() * 1024, "{stored} bytes for {} records", refusals.len());
    for d in refusals.iter().filter(|d| d.record.kind == "access_denied") {
        assert_eq!(
            (d.stream.as_str(), d.record.write_targets.as_str()),
            ("access", "GET /v1/candidates/{id}/timeline")
        );
        let detail: serde_json::Value = serde_json::from_str(&d.record.detail).unwrap();
        assert!(detail["sample_path"].as_str().unwrap().len() <= 200, "{detail}");
    }
    for d in refusals.iter().filter(|d| d.record.kind == "deliveries_refused") {
        assert_eq!((d.stream.as_str(), d.record.candidate_id.as_str()), ("rejected", "victim"));
    }
    assert!(app.deliveries(Some("victim")).await.is_empty(), "no delivery row per forged delivery");
    // The log: a line a second per source, at most, about refusals.
    let log = app.bridge_log();
    let seconds = elapsed.as_secs() as usize + 2;
    for line in ["operator API: request refused", "webhook rejected"] {
        let n = log.lines().filter(|l| l.contains(line)).count();
        assert!((1..=seconds).contains(&n), "{n} lines \"{line}\" in {elapsed:?}");
    }
    assert!(log.len() < 1 << 20, "the log stays small: {} bytes", log.len());
}
