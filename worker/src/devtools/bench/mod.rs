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
//! Then it prints the ratios the targets are stated in. Phase 11
//! (`--providers-only`) sets the four provider routes beside the IL route;
//! phase 12 (`--hiring-only`) runs the hiring loop's triggers to their invites;
//! phase 13 (`--open-only N`) opens N verifications and keeps them open;
//! phase 14 (`--instances-only`) runs one bridge process, then two, on one
//! Postgres, and kills one mid-burst.

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

mod burst;
mod child;
mod flood;
mod hiring;
mod instances;
mod open;
mod outbox;
mod providers;
mod refusals;
mod report;

use burst::burst_phase;
use flood::flooded_open_loop;
use outbox::{drop_scratch_postgres, outbox_phase, scratch_postgres};
use report::{build_kind, fsync_probe, print_burst_ratio, print_postgres, verdict};

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
    /// Only phase 10: a flood of refused operator requests, the store and
    /// log growth, and the signed stream beside it.
    #[arg(long)]
    pub refusals_only: bool,
    /// Requests of phase 10's flood (each without a token, on a 4 KB path).
    #[arg(long, default_value_t = 50_000)]
    pub refusal_requests: usize,
    /// The signed stream's offered rate in phase 10 (requests per second).
    #[arg(long, default_value_t = 1000)]
    pub refusal_rate: u32,
    /// Only phase 11: the four provider routes beside the IL route.
    #[arg(long)]
    pub providers_only: bool,
    /// Only phase 12: the hiring loop's triggers at `--hiring-rate`, each to
    /// its invite in the sandbox's mailbox.
    #[arg(long)]
    pub hiring_only: bool,
    #[arg(long, default_value_t = 500)]
    pub hiring_triggers: usize,
    #[arg(long, default_value_t = 50)]
    pub hiring_rate: u32,
    /// Only phase 13: open this many verifications and keep them open
    /// (memory per open verification, the sticky cache, cold against warm).
    #[arg(long)]
    pub open_only: Option<usize>,
    /// Only phase 7: the burst through the whole stack, and the bare ceiling.
    #[arg(long)]
    pub burst_only: bool,
    /// Only phase 14: bursts (`--burst-events` over `--burst-applications`
    /// each) through one `vbridge serve` process, then two on one Postgres
    /// (`--postgres-url`), then two with one SIGKILLed mid-burst.
    #[arg(long)]
    pub instances_only: bool,
    /// Only the ack path: phases 0-3 on SQLite, then 1p/3p on Postgres, and
    /// their ratio (no Temporal work, no outbox history).
    #[arg(long)]
    pub ack_only: bool,
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

/// Run `send` over `items` with `concurrency` in flight: the latency of each
/// that answered as expected (`send` says so), the elapsed time, the errors.
pub(crate) async fn timed<T, F>(
    items: impl IntoIterator<Item = T>,
    concurrency: usize,
    send: impl Fn(T) -> F,
) -> (Vec<Duration>, Duration, usize)
where
    F: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let results: Vec<Option<Duration>> = futures::stream::iter(items)
        .map(|item| {
            let t = Instant::now();
            let answered = send(item);
            async move { answered.await.then(|| t.elapsed()) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let errors = results.iter().filter(|r| r.is_none()).count();
    (results.into_iter().flatten().collect(), elapsed, errors)
}

/// Send `bodies` with `concurrency` in flight; latency per request.
async fn closed_loop(client: &WebhookClient, bodies: Vec<Value>, concurrency: usize, expect: u16) -> Figures {
    let send = |b: Value| async move { matches!(client.send(&b).await, Ok(r) if r.status == expect) };
    let (lat, elapsed, errors) = timed(bodies, concurrency, send).await;
    figures(lat, elapsed, errors)
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

    if o.refusals_only {
        let r = refusals::refusal_phase(&dir, &run, o.refusal_requests, o.concurrency, o.refusal_rate, o.rate_seconds)
            .await?;
        refusals::report(&r, o.refusal_rate);
        println!("{}", serde_json::json!({ "refusals": r }));
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
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
    // The phases run alone: each prints its figures as JSON, then the parts stop.
    let alone = if o.hiring_only {
        Some(
            serde_json::json!({ "hiring": hiring::hiring_phase(&cfg, &dir, &run, o.hiring_triggers, o.hiring_rate).await? }),
        )
    } else if let Some(n) = o.open_only {
        Some(serde_json::json!({ "open": open::open_phase(&cfg, &dir, &run, n.max(4), o.concurrency).await? }))
    } else if o.burst_only {
        let b = burst_phase(&cfg, &dir, &run, &o).await?;
        print_burst_ratio(&b);
        Some(serde_json::json!({ "burst": b }))
    } else if o.instances_only {
        let i = instances::instances_phase(&cfg, &dir, &run, &o).await?;
        println!(
            "  two instances, one killed mid-burst: none lost, none doubled   {}",
            verdict(i.none_lost_none_doubled())
        );
        Some(serde_json::json!({ "instances": i }))
    } else if o.providers_only {
        let r = providers::provider_phase(&cfg, &dir, secret, &run, o.requests, o.concurrency).await?;
        Some(serde_json::json!({ "providers": r }))
    } else {
        None
    };
    if let Some(figures) = alone {
        println!("{figures}");
        let _ = sb_stop.send(());
        drop(temporal);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }

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
    let outbox = if o.ack_only { vec![] } else { outbox_phase(&dir, o.postgres_admin_url(), &run).await? };

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

    if o.ack_only {
        if let Some((pg_first, pg_rated)) = &postgres {
            print_postgres(&first, pg_first, pg_rated, None, o.rate);
        }
        println!(
            "{}",
            serde_json::json!({"first": first, "duplicates": dups, "rated": rated,
                "postgres": postgres.as_ref().map(|(f, r)| serde_json::json!({"first": f, "rated": r}))})
        );
        let _ = sb_stop.send(());
        drop(temporal);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }

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
    let refused =
        refusals::refusal_phase(&dir, &run, o.refusal_requests, o.concurrency, o.refusal_rate, o.rate_seconds).await?;
    refusals::report(&refused, o.refusal_rate);

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
        print_burst_ratio(b);
    }
    for (backend, empty, full, old) in &outbox {
        println!(
            "  {backend}: outbox round (256 + theirs) with 100k forwarded rows {full:.2} ms vs {empty:.2} ms with none ({:.1}x); the old anti-join {old:.2} ms",
            full / empty.max(1e-9)
        );
    }
    if let Some((pg_first, pg_rated)) = &postgres {
        print_postgres(&first, pg_first, pg_rated, Some(&bare), o.rate);
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
