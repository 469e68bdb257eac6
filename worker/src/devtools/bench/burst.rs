//! Phase 7: a burst through the whole stack, and the bare ceiling, against a
//! persisted dev server (as `vbridge dev` runs it).

use super::*;

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Burst {
    /// First send to last ATS write: events per second, p50/p99 of received → written.
    pub(super) bridge: Figures,
    pub(super) writes: usize,
    pub(super) bare_per_second: f64,
    pub(super) ratio: f64,
    /// Open workflows and this process's RSS (the bridge runs in it) when the
    /// last write landed, and after the quiet period closed the verifications.
    pub(super) open_after_burst: usize,
    pub(super) open_after_quiet: usize,
    pub(super) rss_after_burst_mib: f64,
    pub(super) rss_after_quiet_mib: f64,
    /// The relay's counters at the end: events forwarded, signals sent
    /// (several events of one verification go as one batch).
    pub(super) relay_forwarded: u64,
    pub(super) relay_signals: u64,
    /// CPU seconds per 1,000 events during the bridge's burst: this process
    /// (the bridge, and the load generator and sandbox beside it) and the
    /// Temporal dev server; and the server's during the bare ceiling's run.
    pub(super) bridge_cpu_s_per_1000: f64,
    pub(super) temporal_cpu_s_per_1000: f64,
    pub(super) bare_temporal_cpu_s_per_1000: f64,
}

/// A process's CPU time (user + system), from /proc (Linux); 0 elsewhere.
pub(super) fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    // Fields after the command's closing parenthesis: utime and stime are
    // the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / per_second
}

/// The longest quiet period the bench waits for after the burst.
pub(super) const QUIET_WAIT_MAX: Duration = Duration::from_secs(120);

/// This process's resident memory, from /proc (Linux), in MiB.
pub(super) fn rss_mib() -> f64 {
    rss_mib_of("/proc/self/status")
}

/// A process's resident memory from its /proc status file, in MiB.
pub(super) fn rss_mib_of(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

pub(super) async fn running_workflows(client: &temporalio_client::Client) -> usize {
    client.count_workflows("ExecutionStatus = 'Running'", Default::default()).await.map(|c| c.count()).unwrap_or(0)
}

/// The burst's events: per application a `started`, then for half of them a
/// `needs_review` and a `verified`, for the other half a `verified`; the first
/// `events` of that sequence, spread over `apps` applications.
pub(super) fn burst_bodies(run: &str, events: usize, apps: usize) -> Vec<(String, Value)> {
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

/// A phase's own parts: a dev server persisted to a file (as `vbridge dev`
/// runs it), a sandbox ATS, and the bridge's configuration pointed at them
/// with a store and a task queue of the phase's own.
pub(super) async fn persisted_stack(
    cfg: &Config,
    dir: &std::path::Path,
    name: &str,
    run: &str,
) -> anyhow::Result<(DevServer, String, tokio::sync::oneshot::Sender<()>, Config)> {
    let temporal = DevServer::start(DevServerOptions {
        port: 0,
        ui_port: None,
        db_file: Some(dir.join(format!("{name}-temporal.db"))),
        log_file: dir.join(format!("{name}-temporal.log")),
    })
    .await?;
    let (sandbox_url, sb_stop) = start_sandbox().await?;
    let mut own = cfg.clone();
    own.temporal_address = temporal.address.clone();
    own.database_url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    own.ats_url = Some(sandbox_url.clone());
    own.task_queue = format!("{name}-{run}");
    Ok((temporal, sandbox_url, sb_stop, own))
}

pub(super) async fn burst_phase(
    cfg: &Config,
    dir: &std::path::Path,
    run: &str,
    o: &BenchOptions,
) -> anyhow::Result<Burst> {
    let (temporal, sandbox_url, sb_stop, mut burst_cfg) = persisted_stack(cfg, dir, "burst", run).await?;
    burst_cfg.tuning.quiet_close_ms = o.burst_quiet_close_ms;
    let bridge = start_bridge(burst_cfg, crate::app::all_roles())?;
    let cpu_start = (cpu_seconds(None), cpu_seconds(temporal.pid()));
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
    let per_1000 = |seconds: f64| seconds * 1000.0 / events.max(1) as f64;
    let bridge_cpu_s_per_1000 = per_1000(cpu_seconds(None) - cpu_start.0);
    let temporal_cpu_s_per_1000 = per_1000(cpu_seconds(temporal.pid()) - cpu_start.1);
    println!(
        "7. CPU per 1,000 events: {bridge_cpu_s_per_1000:.1} s this process (bridge, load, sandbox), \
         {temporal_cpu_s_per_1000:.1} s Temporal"
    );
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
    let counter = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
            .map(|v| v as u64)
            .unwrap_or(0)
    };
    let metrics = match http.get(format!("{}/metrics", bridge.url)).send().await {
        Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    let relay_forwarded = counter(&metrics, "vbridge_relay_forwarded_count ");
    let relay_signals = counter(&metrics, "vbridge_relay_signal_count ");
    println!(
        "7. relay: {relay_forwarded} events in {relay_signals} signals ({:.2} events per signal)",
        relay_forwarded as f64 / relay_signals.max(1) as f64
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
    let bare_cpu_start = cpu_seconds(temporal.pid());
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
    let bare_temporal_cpu_s_per_1000 = per_1000(cpu_seconds(temporal.pid()) - bare_cpu_start);
    println!(
        "7. bare ceiling: {events} events, one signal and one no-op activity each: {bare_per_second:.1}/s \
         ({bare_temporal_cpu_s_per_1000:.1} CPU-s of Temporal per 1,000)"
    );
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
        relay_forwarded,
        relay_signals,
        bridge_cpu_s_per_1000,
        temporal_cpu_s_per_1000,
        bare_temporal_cpu_s_per_1000,
    })
}

/// How many `verified` writes the burst ends with: one per application whose
/// events include a `verified` decision.
pub(super) fn bodies_verified(events: usize, apps: usize) -> usize {
    // Step 1 carries `verified` for odd applications; step 2 is a `verified`
    // for each even one.
    let step1 = events.saturating_sub(apps).min(apps);
    let step2 = events.saturating_sub(2 * apps).min(apps.div_ceil(2));
    (0..step1).filter(|a| a % 2 == 1).count() + step2
}
