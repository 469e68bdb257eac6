//! Bench phases of the operations controls: 8, the interview-scheduling gate
//! (in process, and over HTTP at 1,000 req/s; targets p99 < 1 ms and < 5 ms);
//! 9, a reconciliation of N verifications (1 % drifted) on the real Temporal.

use super::bench::{Bridge, figures, print, start_bridge, start_sandbox};
use crate::app::Role;
use crate::config::Config;
use futures::StreamExt;
use std::time::{Duration, Instant};
use vbridge_proto::DecisionRecord;

fn seed_records(run: &str, i: usize) -> [DecisionRecord; 2] {
    let (c, a, k) = (format!("ctl-c-{run}-{i}"), format!("ctl-a-{run}-{i}"), format!("chk-{i}"));
    let at = crate::now_rfc3339();
    let fields = serde_json::json!({"verification_state": "verified", "verification_last_event_id": format!("e-{i}")});
    [
        DecisionRecord {
            record_id: format!("bench-ap-{run}-{i}"),
            recorded_at: at.clone(),
            kind: vbridge_core::record::RecordKind::Applied.into(),
            candidate_id: c.clone(),
            application_id: a.clone(),
            state_before: "pending".into(),
            state_after: "verified".into(),
            ..Default::default()
        },
        DecisionRecord {
            record_id: format!("bench-wr-{run}-{i}"),
            recorded_at: at,
            kind: vbridge_core::record::RecordKind::AtsWrite.into(),
            candidate_id: c,
            application_id: a.clone(),
            state_after: "verified".into(),
            write_targets: format!("application/{a}/verification-check/{k}"),
            detail: fields.to_string(),
            ..Default::default()
        },
    ]
}

pub async fn run(dir: &std::path::Path, run: &str, temporal_address: &str, n: usize) -> anyhow::Result<()> {
    let (sandbox_url, sb_stop) = start_sandbox().await?;
    let mut cfg = Config::load(None, true)?;
    cfg.listen = "127.0.0.1:0".into();
    cfg.temporal_address = temporal_address.to_owned();
    cfg.ats_url = Some(sandbox_url.clone());
    cfg.task_queue = format!("bench-controls-{run}");
    cfg.data_dir = dir.to_owned();
    cfg.database_url = format!("sqlite://{}", dir.join("controls.db").display());
    let store = crate::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        store.append_decisions(chunk.iter().flat_map(|i| seed_records(run, *i)).collect()).await?;
    }
    println!("8. controls over {n} verifications (seeded in {:.1} s)", t.elapsed().as_secs_f64());

    // 8a. The gate in process: the store read and the answer.
    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for i in 0..n {
        let a = format!("ctl-a-{run}-{}", (i * 7919) % n);
        let s = Instant::now();
        let g = crate::controls::gate_answer(store.as_ref(), &cfg.policy, &a).await?;
        lat.push(s.elapsed());
        anyhow::ensure!(g.allow_interview_scheduling && g.reason == "verified", "bench: unexpected gate answer {g:?}");
    }
    let in_process = figures(lat, t.elapsed(), 0);
    print("8a. gate, in process", &in_process);

    // 8b. Over HTTP at 1,000 req/s offered, for 10 s.
    let bridge: Bridge = start_bridge(cfg.clone(), [Role::Receiver].into_iter().collect())?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let (rate, seconds) = (1000u64, 10u64);
    let t = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::with_capacity((rate * seconds) as usize);
    for i in 0..(rate * seconds) as usize {
        ticker.tick().await;
        let url = format!("{}/v1/applications/ctl-a-{run}-{}/gate", bridge.url, (i * 7919) % n);
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let s = Instant::now();
            let ok = http.get(url).send().await.map(|r| r.status().is_success()).unwrap_or(false);
            (s.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        let (d, ok) = task.await?;
        lat.push(d);
        errors += usize::from(!ok);
    }
    let over_http = figures(lat, t.elapsed(), errors);
    print("8b. gate over HTTP, 1000 req/s offered", &over_http);
    println!(
        "    targets: in process p99 < 1 ms: {}; over HTTP p99 < 5 ms: {}",
        if in_process.p99_ms < 1.0 { "met" } else { "NOT met" },
        if over_http.p99_ms < 5.0 && errors == 0 { "met" } else { "NOT met" }
    );
    bridge.shutdown().await;

    // 9. Reconciliation: the ATS holds what was written, but for 1 %.
    let ats = reqwest::Client::new();
    let seeded: usize = futures::stream::iter(0..n)
        .map(|i| {
            let (ats, base) = (ats.clone(), sandbox_url.clone());
            async move {
                let state = if i % 100 == 0 { "failed" } else { "verified" };
                let body = serde_json::json!({"candidate_id": format!("ctl-c-{i}"), "fields": {
                    "verification_state": state, "verification_last_event_id": format!("e-{i}")}});
                let url = format!("{base}/applications/ctl-a-{run}-{i}/verification-checks/chk-{i}");
                ats.put(url).header("Idempotency-Key", format!("seed-{i}")).json(&body).send().await.is_ok() as usize
            }
        })
        .buffer_unordered(64)
        .fold(0, |a, b| async move { a + b })
        .await;
    anyhow::ensure!(seeded == n, "bench: the sandbox took {seeded} of {n} seeds");
    let bridge = start_bridge(cfg.clone(), crate::app::all_roles())?;
    let client = crate::temporal::connect(&cfg.temporal_address, &cfg.temporal_namespace).await?;
    let t = Instant::now();
    let run_id = crate::controls::reconcile::start(&client, &cfg.task_queue, &cfg.policy, false, "bench").await?;
    let report = loop {
        if let Some(json) = store.reconcile_run(&run_id).await? {
            break serde_json::from_str::<vbridge_proto::ReconcileProgress>(&json)?;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(1800), "bench: reconciliation did not finish in 30 min");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "9. reconciliation of {} checks: {:.1} s ({:.0} checks/s); drifted {}, healed {}, failed {}, unreadable {}",
        report.checked,
        secs,
        report.checked as f64 / secs,
        report.drifted,
        report.healed,
        report.failed,
        report.unreadable
    );
    bridge.shutdown().await;
    let _ = sb_stop.send(());
    println!(
        "{}",
        serde_json::json!({"gate_in_process": in_process, "gate_http": over_http,
            "reconcile": {"checks": report.checked, "seconds": secs, "drifted": report.drifted, "healed": report.healed}})
    );
    Ok(())
}
