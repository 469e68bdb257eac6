//! Phase 13 (`--open-only N`, long, run by hand): N verifications opened and
//! left open, as in a hiring season: the bridge process's memory (a `vbridge
//! serve` child of its own, so that the sandbox ATS and the load generator,
//! which keep every write and request, are not counted) and its growth per
//! open verification, the worker's sticky cache (hits, misses,
//! forced evictions), and what a cold verification (evicted from the cache:
//! its next task replays its history) costs against a warm one.

use super::burst::{persisted_stack, rss_mib, running_workflows};
use super::child::{ServeChild, bridge_env};
use super::*;
use crate::devtools::client::decision;

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Opened {
    pub(super) verifications: usize,
    pub(super) cached_workflows: usize,
    /// First send to the last `pending` write.
    pub(super) open_seconds: f64,
    pub(super) running: usize,
    /// The bridge process's RSS once started, and with all open.
    pub(super) rss_before_mib: f64,
    pub(super) rss_open_mib: f64,
    /// The bench process's (sandbox ATS, load generator), for comparison.
    pub(super) bench_rss_open_mib: f64,
    /// (RSS open − RSS before) / verifications, in KiB.
    pub(super) kib_per_verification: f64,
    pub(super) sticky_hits: u64,
    pub(super) sticky_misses: u64,
    pub(super) forced_evictions: u64,
    /// The `state` query of the first verification opened (evicted) and of
    /// the last (cached), in ms.
    pub(super) query_cold_ms: f64,
    pub(super) query_warm_ms: f64,
    /// A decision webhook to its ATS write, of the second opened and the
    /// second last.
    pub(super) signal_cold_ms: f64,
    pub(super) signal_warm_ms: f64,
}

/// The sum of a Prometheus sample's values over its label sets (a counter
/// may carry the `_total` suffix).
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            let rest = l.strip_prefix(name).map(|r| r.strip_prefix("_total").unwrap_or(r));
            rest.is_some_and(|r| r.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn writes_of(
    http: &reqwest::Client,
    sandbox: &str,
) -> anyhow::Result<Vec<crate::devtools::sandbox::AppliedWrite>> {
    Ok(http.get(format!("{sandbox}/_sandbox/writes")).send().await?.json().await?)
}

/// Wait until the sandbox holds `n` writes; how long it took.
async fn wait_writes(http: &reqwest::Client, sandbox: &str, n: usize, limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if writes_of(http, sandbox).await?.len() >= n {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < limit, "only some of {n} writes within {limit:?}");
        // The list grows with every write: poll it gently.
        tokio::time::sleep(if n > 1000 { Duration::from_secs(2) } else { Duration::from_millis(100) }).await;
    }
}

pub(super) async fn open_phase(
    cfg: &Config,
    dir: &std::path::Path,
    run: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Opened> {
    let (temporal, sandbox_url, sb_stop, open_cfg) = persisted_stack(cfg, dir, "open", run).await?;
    let cached = open_cfg.worker_cached_workflows;
    let mut env = bridge_env(&open_cfg, &dir.join("open-bridge"))?;
    // The production default: verifications stay open for a day at rest.
    env.push(("VBRIDGE_QUIET_CLOSE_MS", "86400000".to_owned()));
    env.push(("VBRIDGE_WORKER_CACHED_WORKFLOWS", cached.to_string()));
    let mut bridge = ServeChild::start(dir.join("open-bridge.log"), "receiver,relay,worker", &env).await?;
    let client = WebhookClient::new(&bridge.url, "bench-secret");
    let http = reqwest::Client::new();
    let rss_before_mib = bridge.rss_mib();
    let at = crate::now_rfc3339();
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (client, at) = (client.clone(), at.clone());
            let body = started(&format!("open-{run}-c{i}"), "app-1", &format!("open-{run}-{i}"), &at);
            async move { client.send(&body).await.map(|r| r.status) }
        })
        .buffer_unordered(concurrency)
        .for_each(|r| async move {
            if !matches!(r, Ok(202)) {
                eprintln!("bench: an open was not acked: {r:?}");
            }
        })
        .await;
    println!("13. {n} verifications acked in {:.1} s", start.elapsed().as_secs_f64());
    wait_writes(&http, &sandbox_url, n, Duration::from_secs(4 * 3600)).await?;
    let open_seconds = start.elapsed().as_secs_f64();
    let tclient = temporal::connect(&temporal.address, "default").await?;
    let running = running_workflows(&tclient).await;
    let (rss_open_mib, bench_rss_open_mib) = (bridge.rss_mib(), rss_mib());
    let kib_per_verification = (rss_open_mib - rss_before_mib) * 1024.0 / n.max(1) as f64;
    println!(
        "13. {n} open in {open_seconds:.0} s ({running} running); bridge RSS {rss_before_mib:.0} -> {rss_open_mib:.0} MiB, \
         {kib_per_verification:.1} KiB per open verification (cache of {cached} workflows); \
         the bench process (sandbox, load) {bench_rss_open_mib:.0} MiB"
    );

    // Cold verifications (the first opened: evicted once more than the
    // cache's size were opened; their next task replays the history) against
    // warm ones (the last opened). A query warms what it asks, so the query
    // and the decision each take their own.
    let handle = |i: usize| {
        tclient.get_workflow_handle::<vbridge_workflows::CandidateVerification>(vbridge_core::domain::workflow_id(
            &format!("open-{run}-c{i}"),
            "app-1",
        ))
    };
    let mut query_ms = vec![];
    for i in [0, n - 1] {
        let t = Instant::now();
        handle(i).query(vbridge_workflows::CandidateVerification::state, (), Default::default()).await?;
        query_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut signal_ms = vec![];
    for i in [1, n - 2] {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        let body = decision(&format!("open-{run}-c{i}"), "app-1", &format!("open-{run}-{i}-d"), &later, "verified");
        let t = Instant::now();
        client.send(&body).await?;
        loop {
            let v = handle(i).query(vbridge_workflows::CandidateVerification::state, (), Default::default()).await?;
            if v.state == "verified" && v.ats_sync == "synced" {
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "verification {i} not written within 120 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (query_cold_ms, query_warm_ms) = (query_ms[0], query_ms[1]);
    let metrics = bridge.metrics().await;
    let opened = Opened {
        verifications: n,
        cached_workflows: cached,
        open_seconds,
        running,
        rss_before_mib,
        rss_open_mib,
        bench_rss_open_mib,
        kib_per_verification,
        sticky_hits: sample(&metrics, "temporal_sticky_cache_hit"),
        sticky_misses: sample(&metrics, "temporal_sticky_cache_miss"),
        forced_evictions: sample(&metrics, "temporal_sticky_cache_total_forced_eviction"),
        query_cold_ms,
        query_warm_ms,
        signal_cold_ms: signal_ms[0],
        signal_warm_ms: signal_ms[1],
    };
    println!(
        "13. sticky cache: {} hits, {} misses, {} forced evictions; query cold {:.0} ms, warm {:.0} ms; \
         decision to ATS write cold {:.0} ms, warm {:.0} ms",
        opened.sticky_hits,
        opened.sticky_misses,
        opened.forced_evictions,
        query_cold_ms,
        query_warm_ms,
        opened.signal_cold_ms,
        opened.signal_warm_ms
    );
    bridge.stop().await?;
    let _ = sb_stop.send(());
    drop(temporal);
    Ok(opened)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_is_summed_over_its_label_sets_and_never_confused_with_a_longer_name() {
        let text = "# HELP x\n\
                    temporal_sticky_cache_hit{task_queue=\"a\"} 3\n\
                    temporal_sticky_cache_hit{task_queue=\"b\"} 4\n\
                    temporal_sticky_cache_hit_other 100\n\
                    temporal_sticky_cache_miss_total 2\n";
        assert_eq!(super::sample(text, "temporal_sticky_cache_hit"), 7);
        assert_eq!(super::sample(text, "temporal_sticky_cache_miss"), 2);
        assert_eq!(super::sample(text, "absent"), 0);
    }
}
