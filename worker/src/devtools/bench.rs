//! `vbridge bench`: figures for the spine, all measured in one run on one
//! machine against the real parts: the Temporal dev server, SQLite, HTTP.
//!
//! 0. first deliveries at concurrency 1 and 8 (group commit at work);
//! 1. durable-ack throughput and latency of first deliveries, at a fixed concurrency;
//! 2. duplicate answers, at the same concurrency;
//! 3. ack latency at a fixed offered rate (open loop);
//! 4. the bare signal-with-start rate, from the same client to the same dev server;
//! 5. received → written-to-the-ATS latency through the whole stack.
//!
//! Then it prints the ratios the targets are stated in.

use crate::app::{self, Role};
use crate::config::Config;
use crate::devtools::client::{WebhookClient, started};
use crate::devtools::devserver::{DevServer, DevServerOptions};
use crate::temporal::{self, forward::Forwarder};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    #[arg(long, default_value_t = 5000)]
    pub requests: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 1000)]
    pub signal_starts: usize,
    /// Offered rate of the fixed-rate run (requests per second).
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    #[arg(long, default_value_t = 10)]
    pub rate_seconds: u32,
    #[arg(long, default_value_t = 200)]
    pub end_to_end: usize,
    /// Events of the burst phase (7), against a persisted dev server, and as
    /// many for the bare ceiling; 0 skips it.
    #[arg(long, default_value_t = 5000)]
    pub burst_events: usize,
    /// Applications the burst's events are spread over.
    #[arg(long, default_value_t = 2000)]
    pub burst_applications: usize,
    /// The burst bridge's quiet period before a verification at rest closes:
    /// the production default (24 h) keeps the burst's workflows open, as in
    /// production; a short one (30000) also measures them closing, during and
    /// after the burst (the bench then waits for it).
    #[arg(long, default_value_t = 86_400_000)]
    pub burst_quiet_close_ms: u32,
    /// Also measure the ack path on Postgres (a scratch database is made
    /// there, and dropped after); `none` to skip.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// Only the controls' phases (8: the gate, 9: reconciliation).
    #[arg(long)]
    pub controls_only: bool,
    /// Verifications the gate and reconciliation phases are measured over.
    #[arg(long, default_value_t = 10_000)]
    pub controls_verifications: usize,
}

impl BenchOptions {
    fn postgres_admin_url(&self) -> Option<&str> {
        (self.postgres_url != "none").then_some(self.postgres_url.as_str())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub count: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

pub(crate) fn figures(mut lat: Vec<Duration>, elapsed: Duration, errors: usize) -> Figures {
    lat.sort();
    let pct = |p: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64() * 1000.0
    };
    Figures {
        count: lat.len(),
        seconds: elapsed.as_secs_f64(),
        per_second: lat.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

/// Send `bodies` with `concurrency` in flight; latency per request.
async fn closed_loop(client: &WebhookClient, bodies: Vec<Value>, concurrency: usize, expect: u16) -> Figures {
    let start = Instant::now();
    let results: Vec<Option<Duration>> = futures::stream::iter(bodies)
        .map(|b| async move {
            let t = Instant::now();
            match client.send(&b).await {
                Ok(r) if r.status == expect => Some(t.elapsed()),
                _ => None,
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let errors = results.iter().filter(|r| r.is_none()).count();
    figures(results.into_iter().flatten().collect(), elapsed, errors)
}

/// Offer `rate` requests per second for `seconds`, whatever the answers' speed.
async fn open_loop(client: &WebhookClient, run: &str, rate: u32, seconds: u32) -> Figures {
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let c = client.clone();
        let body = started(&format!("rate-{run}-{i}"), "app", &format!("evt-rate-{run}-{i}"), &crate::now_rfc3339());
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            match c.send(&body).await {
                Ok(r) if r.status == 202 => Some(t.elapsed()),
                _ => None,
            }
        }));
    }
    let mut lat = vec![];
    let mut errors = 0;
    let mut slow = std::collections::BTreeMap::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.await.ok().flatten() {
            Some(d) => {
                if d > Duration::from_millis(20) {
                    *slow.entry((i as u32 * 10) / rate).or_insert(0u32) += 1;
                }
                lat.push(d)
            }
            None => errors += 1,
        }
    }
    if std::env::var("VBRIDGE_BENCH_DEBUG").is_ok() {
        eprintln!("slow requests by 100 ms bucket: {slow:?}");
    }
    figures(lat, start.elapsed(), errors)
}

pub(crate) fn print(name: &str, f: &Figures) {
    println!(
        "{name:<38} {:>7} req {:>9.1}/s   p50 {:>8.2} ms   p99 {:>8.2} ms   errors {}",
        f.count, f.per_second, f.p50_ms, f.p99_ms, f.errors
    );
}

pub(crate) struct Bridge {
    pub(crate) url: String,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

/// A sandbox ATS on a free port: its URL, and what stops it.
pub(crate) async fn start_sandbox() -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::devtools::sandbox::serve(listener, async move {
        let _ = rx.await;
    }));
    Ok((url, stop))
}

/// Run `serve` in-process on a thread of its own (its worker future is not Send).
pub(crate) fn start_bridge(cfg: Config, roles: BTreeSet<Role>) -> anyhow::Result<Bridge> {
    let (stop, rx) = watch::channel(false);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let handle = tokio::runtime::Handle::current();
    let done = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            if let Err(e) = app::serve(cfg, roles, rx, move |a| {
                let _ = addr_tx.send(a);
            })
            .await
            {
                eprintln!("bench: bridge failed: {e:#}");
            }
        })
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(30))?;
    Ok(Bridge { url: format!("http://{addr}"), stop, done })
}

impl Bridge {
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }
}

pub async fn run(o: BenchOptions) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("vbridge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let run = chrono::Utc::now().format("%H%M%S").to_string();
    println!("vbridge bench: {} requests at concurrency {}, data in {}", o.requests, o.concurrency, dir.display());
    println!("machine: {} cores; {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), build_kind());
    println!("{}", fsync_probe(&dir)?);

    let temporal = DevServer::start(DevServerOptions {
        port: 0,
        ui_port: None,
        db_file: None,
        log_file: dir.join("temporal.log"),
    })
    .await?;
    if o.controls_only {
        return crate::devtools::bench_controls::run(&dir, &run, &temporal.address, o.controls_verifications).await;
    }
    let (sandbox_url, sb_stop) = start_sandbox().await?;

    let secret = "bench-secret";
    let mut cfg = Config::load(None, true)?;
    cfg.secrets = vec![crate::intake::signature::Secret::parse(secret, 1)?];
    cfg.listen = "127.0.0.1:0".into();
    cfg.temporal_address = temporal.address.clone();
    cfg.ats_url = Some(sandbox_url.clone());
    cfg.task_queue = format!("bench-{run}");
    cfg.data_dir = dir.clone();

    // 1-4: the receiver alone, so only the ack path is measured.
    let mut receiver_cfg = cfg.clone();
    receiver_cfg.database_url = format!("sqlite://{}", dir.join("ack.db").display());
    let bridge = start_bridge(receiver_cfg, [Role::Receiver].into_iter().collect())?;
    let client = WebhookClient::new(&bridge.url, secret);
    let warm: Vec<Value> = (0..200)
        .map(|i| started(&format!("warm-{run}-{i}"), "app", &format!("evt-warm-{run}-{i}"), &crate::now_rfc3339()))
        .collect();
    closed_loop(&client, warm, o.concurrency, 202).await;

    // Group commit: more requests in flight share each fsync.
    for c in [1usize, 8] {
        let n = (o.requests / 8).max(100);
        let sweep: Vec<Value> = (0..n)
            .map(|i| {
                started(&format!("sw{c}-{run}-{i}"), "app", &format!("evt-sw{c}-{run}-{i}"), &crate::now_rfc3339())
            })
            .collect();
        let f = closed_loop(&client, sweep, c, 202).await;
        print(&format!("0. first deliveries, concurrency {c}"), &f);
    }

    let bodies: Vec<Value> = (0..o.requests)
        .map(|i| started(&format!("c-{run}-{i}"), "app", &format!("evt-{run}-{i}"), &crate::now_rfc3339()))
        .collect();
    let first = closed_loop(&client, bodies.clone(), o.concurrency, 202).await;
    print("1. first deliveries (durable ack)", &first);

    let dups = closed_loop(&client, bodies.clone(), o.concurrency, 200).await;
    print("2. duplicate deliveries", &dups);

    let rated = open_loop(&client, &run, o.rate, o.rate_seconds).await;
    print(&format!("3. first deliveries at {} req/s offered", o.rate), &rated);

    // 3f. The same offered rate beside a flood of unsigned requests.
    let flooded = flooded_open_loop(&client, &run, o.rate, o.rate_seconds, o.concurrency).await;
    print(&format!("3f. signed at {} req/s beside a flood", o.rate), &flooded.0);
    println!(
        "{:<38} {:>7} req {:>9.1}/s   (all answered 401: {})",
        "    the unsigned flood",
        flooded.1.count,
        flooded.1.per_second,
        flooded.1.errors == 0
    );
    bridge.shutdown().await;

    // 6. The relay's outbox read against a long forwarded history.
    let outbox = outbox_phase(&dir, o.postgres_admin_url(), &run).await?;

    // The same ack path on Postgres, same load, same run.
    let postgres = match o.postgres_admin_url() {
        Some(admin) => {
            let (url, db) = scratch_postgres(admin, &run).await?;
            let mut pg_cfg = cfg.clone();
            pg_cfg.database_url = url;
            let bridge = start_bridge(pg_cfg, [Role::Receiver].into_iter().collect())?;
            let client = WebhookClient::new(&bridge.url, secret);
            let bodies: Vec<Value> = (0..o.requests)
                .map(|i| started(&format!("pg-{run}-{i}"), "app", &format!("evt-pg-{run}-{i}"), &crate::now_rfc3339()))
                .collect();
            let first = closed_loop(&client, bodies, o.concurrency, 202).await;
            print("1p. first deliveries on Postgres", &first);
            let rated = open_loop(&client, &format!("pg{run}"), o.rate, o.rate_seconds).await;
            print(&format!("3p. Postgres at {} req/s offered", o.rate), &rated);
            bridge.shutdown().await;
            drop_scratch_postgres(admin, &db).await;
            Some((first, rated))
        }
        None => None,
    };

    // Temporal last: its own work would otherwise load the machine during the
    // ack measurements above.
    let tclient = temporal::connect(&temporal.address, "default").await?;
    let forwarder = Forwarder {
        client: tclient,
        task_queue: format!("bench-bare-{run}"),
        policy: Arc::new(cfg.policy.clone()),
        tuning: cfg.tuning,
        public_url: cfg.public_url.clone(),
        banner: Default::default(),
    };
    let signals: Vec<_> = bodies
        .iter()
        .take(o.signal_starts)
        .map(|b| vbridge_proto::EventSignal {
            event_id: b["event_id"].as_str().unwrap_or_default().to_owned(),
            candidate_id: format!("bare-{}", b["candidate_id"].as_str().unwrap_or_default()),
            application_id: "app".into(),
            event_type: "verification.started".into(),
            occurred_at: crate::now_rfc3339(),
            ..Default::default()
        })
        .collect();
    let start = Instant::now();
    let results: Vec<Option<Duration>> = futures::stream::iter(signals)
        .map(|ev| {
            let f = forwarder.clone();
            async move {
                let t = Instant::now();
                f.forward(&ev, false).await.ok().map(|_| t.elapsed())
            }
        })
        .buffer_unordered(o.concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let errors = results.iter().filter(|r| r.is_none()).count();
    let bare = figures(results.into_iter().flatten().collect(), elapsed, errors);
    print("4. bare Temporal signal-with-start", &bare);

    // 5: the whole stack, received -> written to the ATS.
    let mut full_cfg = cfg.clone();
    full_cfg.database_url = format!("sqlite://{}", dir.join("e2e.db").display());
    let bridge = start_bridge(full_cfg, crate::app::all_roles())?;
    let client = WebhookClient::new(&bridge.url, secret);
    let http = reqwest::Client::new();
    let mut sent_at = std::collections::HashMap::new();
    let e2e_start = Instant::now();
    for i in 0..o.end_to_end {
        let body = started(&format!("e2e-{run}-{i}"), "app", &format!("evt-e2e-{run}-{i}"), &crate::now_rfc3339());
        sent_at.insert(format!("evt-e2e-{run}-{i}"), chrono::Utc::now());
        client.send(&body).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lat = vec![];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let writes: Vec<crate::devtools::sandbox::AppliedWrite> =
            http.get(format!("{sandbox_url}/_sandbox/writes")).send().await?.json().await?;
        if writes.len() >= o.end_to_end || Instant::now() > deadline {
            for w in writes {
                if let (Some(id), Ok(at)) =
                    (w.fields.get("verification_last_event_id"), chrono::DateTime::parse_from_rfc3339(&w.at))
                    && let Some(sent) = sent_at.get(id)
                {
                    lat.push((at.with_timezone(&chrono::Utc) - *sent).to_std().unwrap_or_default());
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing = o.end_to_end - lat.len();
    let e2e = figures(lat, e2e_start.elapsed(), missing);
    print("5. received -> written to the ATS", &e2e);
    bridge.shutdown().await;
    let _ = sb_stop.send(());

    // 7. A burst through the whole stack, and the bare ceiling, against a
    // persisted dev server (as `vbridge dev` runs it).
    let burst = if o.burst_events > 0 { Some(burst_phase(&cfg, &dir, &run, &o).await?) } else { None };
    crate::devtools::bench_controls::run(&dir, &run, &temporal.address, o.controls_verifications).await?;
    drop(temporal);

    println!();
    let ack_vs_bare = first.per_second / bare.per_second.max(1e-9);
    let dup_vs_first = dups.per_second / first.per_second.max(1e-9);
    println!("ratios (targets in brackets):");
    println!(
        "  ack throughput / bare signal-with-start   {ack_vs_bare:>6.1}x   [>= 10x]  {}",
        verdict(ack_vs_bare >= 10.0)
    );
    println!(
        "  p99 ack at {} req/s                       {:>6.2} ms [<= 20 ms] {}",
        o.rate,
        rated.p99_ms,
        verdict(rated.p99_ms <= 20.0 && rated.errors == 0)
    );
    println!(
        "  duplicate / first-delivery throughput     {dup_vs_first:>6.1}x   [>= 2x]   {}",
        verdict(dup_vs_first >= 2.0)
    );
    println!(
        "  p99 signed at {} req/s beside a flood      {:>6.2} ms (alone {:.2} ms, {:.1}x)",
        o.rate,
        flooded.0.p99_ms,
        rated.p99_ms,
        flooded.0.p99_ms / rated.p99_ms.max(1e-9)
    );
    if let Some(b) = &burst {
        println!(
            "  burst end to end / bare ceiling           {:>6.2}x   [>= 0.8x]  {} ({:.1} vs {:.1} events/s)",
            b.ratio,
            verdict(b.ratio >= 0.8),
            b.bridge.per_second,
            b.bare_per_second
        );
    }
    for (backend, empty, full, old) in &outbox {
        println!(
            "  {backend}: outbox read (512) with 100k forwarded rows {full:.2} ms vs {empty:.2} ms with none ({:.1}x); the old anti-join {old:.2} ms",
            full / empty.max(1e-9)
        );
    }
    if let Some((pg_first, pg_rated)) = &postgres {
        println!(
            "  Postgres: ack throughput {:.0}/s ({:.2}x SQLite), p99 at {} req/s {:.2} ms, ack / bare {:.1}x",
            pg_first.per_second,
            pg_first.per_second / first.per_second.max(1e-9),
            o.rate,
            pg_rated.p99_ms,
            pg_first.per_second / bare.per_second.max(1e-9)
        );
    }
    println!(
        "{}",
        serde_json::json!({"first": first, "bare_signal_with_start": bare, "duplicates": dups, "rated": rated, "end_to_end": e2e,
            "postgres": postgres.as_ref().map(|(f, r)| serde_json::json!({"first": f, "rated": r})),
            "flooded": flooded.0, "flood": flooded.1, "burst": burst,
            "outbox": outbox.iter().map(|(b, e, f, o)| serde_json::json!({"backend": b, "empty_ms": e, "100k_forwarded_ms": f, "old_anti_join_ms": o})).collect::<Vec<_>>(),
            "ratios": {"ack_vs_bare": ack_vs_bare, "dup_vs_first": dup_vs_first}})
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
struct Burst {
    /// First send to last ATS write: events per second, p50/p99 of received → written.
    bridge: Figures,
    writes: usize,
    bare_per_second: f64,
    ratio: f64,
    /// Open workflows and this process's RSS (the bridge runs in it) when the
    /// last write landed, and after the quiet period closed the verifications.
    open_after_burst: usize,
    open_after_quiet: usize,
    rss_after_burst_mib: f64,
    rss_after_quiet_mib: f64,
}

/// The longest quiet period the bench waits for after the burst.
const QUIET_WAIT_MAX: Duration = Duration::from_secs(120);

/// This process's resident memory, from /proc (Linux), in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

async fn running_workflows(client: &temporalio_client::Client) -> usize {
    client.count_workflows("ExecutionStatus = 'Running'", Default::default()).await.map(|c| c.count()).unwrap_or(0)
}

/// The burst's events: per application a `started`, then for half of them a
/// `needs_review` and a `verified`, for the other half a `verified`; the first
/// `events` of that sequence, spread over `apps` applications.
fn burst_bodies(run: &str, events: usize, apps: usize) -> Vec<(String, Value)> {
    let mut out = vec![];
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    let t = |s: i64| (base + chrono::Duration::seconds(s)).to_rfc3339();
    for step in 0..3 {
        for a in 0..apps {
            let (cand, app) = (format!("burst-{run}-c{a}"), format!("app-{a}"));
            let id = format!("burst-{run}-{a}-{step}");
            let body = match (step, a % 2) {
                (0, _) => started(&cand, &app, &id, &t(0)),
                (1, 0) => crate::devtools::client::decision(&cand, &app, &id, &t(60), "needs_review"),
                (1, _) | (2, 0) => crate::devtools::client::decision(&cand, &app, &id, &t(120), "verified"),
                _ => continue,
            };
            out.push((id, body));
        }
    }
    out.truncate(events);
    out
}

async fn burst_phase(cfg: &Config, dir: &std::path::Path, run: &str, o: &BenchOptions) -> anyhow::Result<Burst> {
    let temporal = DevServer::start(DevServerOptions {
        port: 0,
        ui_port: None,
        db_file: Some(dir.join("burst-temporal.db")),
        log_file: dir.join("burst-temporal.log"),
    })
    .await?;
    let (sandbox_url, sb_stop) = start_sandbox().await?;
    let mut burst_cfg = cfg.clone();
    burst_cfg.temporal_address = temporal.address.clone();
    burst_cfg.database_url = format!("sqlite://{}", dir.join("burst.db").display());
    burst_cfg.ats_url = Some(sandbox_url.clone());
    burst_cfg.task_queue = format!("burst-{run}");
    burst_cfg.tuning.quiet_close_ms = o.burst_quiet_close_ms;
    let bridge = start_bridge(burst_cfg, crate::app::all_roles())?;
    let client = WebhookClient::new(&bridge.url, "bench-secret");
    let bodies = burst_bodies(run, o.burst_events, o.burst_applications);
    let events = bodies.len();
    let start = Instant::now();
    let started_at = chrono::Utc::now();
    let sent: Vec<(String, chrono::DateTime<chrono::Utc>)> = futures::stream::iter(bodies)
        .map(|(id, body)| {
            let client = client.clone();
            async move {
                let at = chrono::Utc::now();
                let ok = matches!(client.send(&body).await, Ok(r) if r.status == 202);
                ok.then_some((id, at))
            }
        })
        .buffer_unordered(o.concurrency)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let sent_at: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = sent.into_iter().collect();
    println!(
        "7. burst: {events} events over {} applications acked in {:.1} s",
        o.burst_applications,
        start.elapsed().as_secs_f64()
    );
    // Done when every application's last event is written (a decision that
    // overtook an earlier one skips it, so writes can be fewer than events).
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let expected_verified = bodies_verified(events, o.burst_applications);
    let writes: Vec<crate::devtools::sandbox::AppliedWrite> = loop {
        let writes: Vec<crate::devtools::sandbox::AppliedWrite> =
            http.get(format!("{sandbox_url}/_sandbox/writes")).send().await?.json().await?;
        let verified = writes
            .iter()
            .filter(|w| w.fields.get("verification_state").map(String::as_str) == Some("verified"))
            .count();
        if verified >= expected_verified || Instant::now() > deadline {
            break writes;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let last = writes.iter().filter_map(|w| chrono::DateTime::parse_from_rfc3339(&w.at).ok()).max();
    let lat: Vec<Duration> = writes
        .iter()
        .filter_map(|w| {
            let id = w.fields.get("verification_last_event_id")?;
            let at = chrono::DateTime::parse_from_rfc3339(&w.at).ok()?.with_timezone(&chrono::Utc);
            (at - *sent_at.get(id)?).to_std().ok()
        })
        .collect();
    let span =
        last.map(|l| (l.with_timezone(&chrono::Utc) - started_at).to_std().unwrap_or_default()).unwrap_or_default();
    let mut bridge_figures = figures(lat, span, events - sent_at.len());
    bridge_figures.per_second = events as f64 / span.as_secs_f64().max(1e-9);
    print("7. burst: received -> written", &bridge_figures);
    let write_count = writes.len();
    let tclient = temporal::connect(&temporal.address, "default").await?;
    let (open_after_burst, rss_after_burst_mib) = (running_workflows(&tclient).await, rss_mib());
    let quiet = Duration::from_millis(o.burst_quiet_close_ms as u64);
    let mut open_after_quiet = open_after_burst;
    if quiet <= QUIET_WAIT_MAX {
        let deadline = Instant::now() + quiet + Duration::from_secs(90);
        while open_after_quiet > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            open_after_quiet = running_workflows(&tclient).await;
        }
    }
    let rss_after_quiet_mib = rss_mib();
    println!(
        "7. open workflows: {open_after_burst} at the last write, {open_after_quiet} after the quiet period ({} s{}); \
         RSS {rss_after_burst_mib:.0} MiB -> {rss_after_quiet_mib:.0} MiB",
        quiet.as_secs(),
        if quiet <= QUIET_WAIT_MAX { "" } else { ", not waited for" }
    );
    bridge.shutdown().await;
    let _ = sb_stop.send(());

    // The bare ceiling: the same number of events over as many workflows.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let queue = format!("bare-burst-{run}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let (client, queue, done) = (tclient.clone(), queue.clone(), done.clone());
        let cached = cfg.worker_cached_workflows;
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            handle.block_on(crate::devtools::bare::run_worker(client, &queue, done, cached, async move {
                let _ = stop_rx.await;
            }))
        })
    };
    let start = Instant::now();
    let apps = o.burst_applications.max(1);
    futures::stream::iter(0..events)
        .map(|i| {
            let (client, queue) = (tclient.clone(), queue.clone());
            async move {
                crate::devtools::bare::signal(&client, &queue, &format!("bare-{run}-{}", i % apps), format!("{i}"))
                    .await
            }
        })
        .buffer_unordered(o.concurrency)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("bench: {e}");
            }
        })
        .await;
    while done.load(std::sync::atomic::Ordering::Relaxed) < events as u64 && start.elapsed() < Duration::from_secs(1800)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bare_per_second = done.load(std::sync::atomic::Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("7. bare ceiling: {events} events, one signal and one no-op activity each: {bare_per_second:.1}/s");
    let _ = stop_tx.send(());
    let _ = worker.await;
    drop(temporal);
    let ratio = bridge_figures.per_second / bare_per_second.max(1e-9);
    Ok(Burst {
        bridge: bridge_figures,
        writes: write_count,
        bare_per_second,
        ratio,
        open_after_burst,
        open_after_quiet,
        rss_after_burst_mib,
        rss_after_quiet_mib,
    })
}

/// How many `verified` writes the burst ends with: one per application whose
/// events include a `verified` decision.
fn bodies_verified(events: usize, apps: usize) -> usize {
    // Step 1 carries `verified` for odd applications; step 2 is a `verified`
    // for each even one.
    let step1 = events.saturating_sub(apps).min(apps);
    let step2 = events.saturating_sub(2 * apps).min(apps.div_ceil(2));
    (0..step1).filter(|a| a % 2 == 1).count() + step2
}

/// An open-loop signed stream while `flooders` clients send unsigned requests
/// as fast as they can: (the signed stream, the flood).
async fn flooded_open_loop(
    client: &WebhookClient,
    run: &str,
    rate: u32,
    seconds: u32,
    flooders: usize,
) -> (Figures, Figures) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = {
        let (stop, answered) = (stop.clone(), answered.clone());
        let client = client.clone();
        let run = run.to_owned();
        tokio::spawn(async move {
            let start = Instant::now();
            let results: Vec<Vec<(Duration, bool)>> = futures::future::join_all((0..flooders).map(|f| {
                let (stop, answered) = (stop.clone(), answered.clone());
                let client = client.clone();
                let run = run.clone();
                async move {
                    let mut out = vec![];
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let body =
                            serde_json::to_vec(&started("junk", "app", &format!("junk-{run}-{f}-{i}"), "x")).unwrap();
                        let t = Instant::now();
                        let ok = matches!(client.send_raw(body, vec![]).await, Ok(r) if r.status == 401);
                        out.push((t.elapsed(), ok));
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        i += 1;
                    }
                    out
                }
            }))
            .await;
            let all: Vec<(Duration, bool)> = results.into_iter().flatten().collect();
            let errors = all.iter().filter(|(_, ok)| !ok).count();
            figures(all.into_iter().map(|(d, _)| d).collect(), start.elapsed(), errors)
        })
    };
    // The signed stream starts once the flood is in full swing.
    while answered.load(std::sync::atomic::Ordering::Relaxed) < flooders * 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let signed = open_loop(client, &format!("fl{run}"), rate, seconds).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flood = flood.await.expect("the flood task");
    (signed, flood)
}

/// The outbox read the relay does, p50 of 50 reads, on a store with no
/// history and on one with 100k accepted rows already forwarded, with the
/// anti-join the relay used before the outbox for comparison. Per backend:
/// (name, empty ms, 100k ms, old query ms).
async fn outbox_phase(
    dir: &std::path::Path,
    postgres_admin: Option<&str>,
    run: &str,
) -> anyhow::Result<Vec<(String, f64, f64, f64)>> {
    const OLD: &str = "SELECT d.seq, COALESCE(d.signal, '') AS signal FROM deliveries d \
         WHERE d.processing_result = 'accepted' AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) \
         ORDER BY d.seq LIMIT 512";
    async fn reads(store: &dyn crate::store::EventStore) -> f64 {
        let mut lat = vec![];
        for _ in 0..50 {
            let t = Instant::now();
            let _ = store.unforwarded(512).await;
            lat.push(t.elapsed());
        }
        figures(lat, Duration::from_secs(1), 0).p50_ms
    }
    let mut out = vec![];
    let mut urls = vec![("SQLite".to_owned(), format!("sqlite://{}", dir.join("outbox.db").display()), None)];
    if let Some(admin) = postgres_admin {
        let (url, db) = scratch_postgres(admin, &format!("ob{run}")).await?;
        urls.push(("Postgres".to_owned(), url, Some(db)));
    }
    for (name, url, scratch) in urls {
        let store = crate::config::open_store(&url).await?;
        for i in 0..20 {
            let r = crate::store::DeliveryRecord {
                received_at: crate::now_rfc3339(),
                signature_valid: true,
                event_id: Some(format!("pending-{i}")),
                candidate_id: Some("c".into()),
                application_id: Some("a".into()),
                idempotency_key: Some(format!("pending-{i}")),
                trace_id: "t".into(),
                signal: Some("{}".into()),
                ..Default::default()
            };
            store.commit(r).await?;
        }
        let empty = reads(store.as_ref()).await;
        // 100k accepted rows, forwarded long ago, written in bulk.
        let bulk_deliveries = "INSERT INTO deliveries (received_at, event_id, idempotency_key, signature_valid, \
             processing_result, trace_id, body_sha256, signal) \
             SELECT '2020-01-01T00:00:00.000Z', 'old-' || n, 'old-' || n, TRUE, 'accepted', 't', '00', '{}' FROM {series}";
        let bulk_forwards = "INSERT INTO forwards (seq, forwarded_at) SELECT seq, '2020-01-01T00:00:00.000Z' \
             FROM deliveries WHERE event_id LIKE 'old-%'";
        if name == "SQLite" {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await?;
            let series =
                "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100000) SELECT n FROM s)";
            sqlx::query(&bulk_deliveries.replace("{series}", series)).execute(&mut c).await?;
            sqlx::query(bulk_forwards).execute(&mut c).await?;
        } else {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(&bulk_deliveries.replace("{series}", "generate_series(1, 100000) AS n"))
                .execute(&mut c)
                .await?;
            sqlx::query(bulk_forwards).execute(&mut c).await?;
            sqlx::query("ANALYZE").execute(&mut c).await?;
        }
        let full = reads(store.as_ref()).await;
        // The same reads with the relay's old query, on one connection.
        let mut lat = vec![];
        if name == "SQLite" {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await?;
            for _ in 0..10 {
                let t = Instant::now();
                sqlx::query(OLD).fetch_all(&mut c).await?;
                lat.push(t.elapsed());
            }
        } else {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await?;
            for _ in 0..10 {
                let t = Instant::now();
                sqlx::query(OLD).fetch_all(&mut c).await?;
                lat.push(t.elapsed());
            }
        }
        let old = figures(lat, Duration::from_secs(1), 0).p50_ms;
        print(
            &format!("6. outbox read, {name}, 100k forwarded"),
            &Figures { p50_ms: full, ..figures(vec![], Duration::from_secs(1), 0) },
        );
        out.push((name, empty, full, old));
        drop(store);
        if let (Some(db), Some(admin)) = (scratch, postgres_admin) {
            drop_scratch_postgres(admin, &db).await;
        }
    }
    Ok(out)
}

async fn scratch_postgres(admin: &str, run: &str) -> anyhow::Result<(String, String)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.map_err(|e| {
        anyhow::anyhow!("the Postgres part of the bench needs {admin}: {e} (or pass --postgres-url none)")
    })?;
    let db = format!("vbridge_bench_{run}_{}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await?;
    let (base, _) = admin.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("{admin} does not end in /DATABASE"))?;
    Ok((format!("{base}/{db}"), db))
}

async fn drop_scratch_postgres(admin: &str, db: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
    }
}

/// The disk's own fsync latency, measured here and now: a durable ack cannot
/// beat it, and its tail shows through in the ack's p99.
fn fsync_probe(dir: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let mut lat = vec![];
    for _ in 0..1000 {
        f.write_all(&[0u8; 4096])?;
        let t = Instant::now();
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    let fig = figures(lat.clone(), Duration::from_secs(1), 0);
    let max = lat.iter().max().copied().unwrap_or_default();
    Ok(format!(
        "disk: 1000 x fsync(4 KiB): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        fig.p50_ms,
        fig.p99_ms,
        max.as_secs_f64() * 1000.0
    ))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn build_kind() -> &'static str {
    if cfg!(debug_assertions) { "debug build (use --release for real figures)" } else { "release build" }
}
