//! Phase 10: a flood of refused operator requests (50,000 without a token,
//! on 4 KB paths) against a `vbridge serve --roles receiver` process of its
//! own (so that its store and its log are its alone, and measured): what the
//! flood adds to the store and to the log, and the signed webhook stream's
//! p99 at a fixed rate beside the flood against alone.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// A receiver of its own, with its own store and log.
struct Child {
    serve: super::child::ServeChild,
    url: String,
    db: std::path::PathBuf,
}

impl Child {
    async fn start(dir: &std::path::Path, name: &str, secret: &str) -> anyhow::Result<Child> {
        let db = dir.join(format!("{name}.db"));
        let token = crate::http::auth::token_hash("bench-ops-token");
        let env = [
            ("VBRIDGE_WEBHOOK_SECRETS", secret.to_owned()),
            ("VBRIDGE_DATABASE_URL", format!("sqlite://{}", db.display())),
            ("VBRIDGE_DATA_DIR", dir.display().to_string()),
            // Never called: the receiver role writes to no ATS.
            ("VBRIDGE_ATS_URL", "http://127.0.0.1:9".to_owned()),
            ("VBRIDGE_API_TOKENS", format!("ops:bench:{}", hex::encode(token))),
        ];
        let serve = super::child::ServeChild::start(dir.join(format!("{name}.log")), "receiver", &env).await?;
        Ok(Child { url: serve.url.clone(), serve, db })
    }

    /// Bytes of the store (database, WAL, shared memory) and of the log.
    fn sizes(&self) -> (u64, u64) {
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let db = self.db.display().to_string();
        let store = size(&self.db) + size(format!("{db}-wal").as_ref()) + size(format!("{db}-shm").as_ref());
        (store, size(&self.serve.log))
    }

    /// SIGTERM (the aggregates of the last window are flushed), then wait.
    async fn stop(mut self) -> anyhow::Result<(u64, u64)> {
        self.serve.stop().await?;
        Ok(self.sizes())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Refusals {
    pub(super) flood: Figures,
    pub(super) store_growth_bytes: u64,
    pub(super) log_growth_bytes: u64,
    pub(super) alone: Figures,
    pub(super) beside: Figures,
    pub(super) beside_flood: Figures,
}

/// `n` requests without a token on a 4 KB path, `concurrency` at a time,
/// or until `stop`; every one should be answered 401.
async fn flood(url: &str, n: usize, concurrency: usize, sent: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> Figures {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("an HTTP client");
    let path = format!("{url}/v1/candidates/{}/timeline", "x".repeat(4096));
    let start = Instant::now();
    let results: Vec<Option<Duration>> = futures::stream::iter(0..n)
        .take_while(|_| std::future::ready(!stop.load(Relaxed)))
        .map(|_| {
            let (http, path, sent) = (&http, &path, &sent);
            async move {
                let t = Instant::now();
                let ok = matches!(http.get(path).send().await, Ok(r) if r.status() == 401);
                sent.fetch_add(1, Relaxed);
                ok.then(|| t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let errors = results.iter().filter(|r| r.is_none()).count();
    figures(results.into_iter().flatten().collect(), start.elapsed(), errors)
}

/// Offer `rate` signed first deliveries per second until `stop` (or `seconds`).
async fn signed_until(client: &WebhookClient, run: &str, rate: u32, seconds: u32, stop: Arc<AtomicBool>) -> Figures {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut handles = vec![];
    for i in 0..(rate * seconds) as usize {
        if stop.load(Relaxed) {
            break;
        }
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let c = client.clone();
        let body = started(&format!("rf-{run}-{i}"), "app", &format!("evt-rf-{run}-{i}"), &crate::now_rfc3339());
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            matches!(c.send(&body).await, Ok(r) if r.status == 202).then(|| t.elapsed())
        }));
    }
    let mut lat = vec![];
    let mut errors = 0;
    for h in handles {
        match h.await.ok().flatten() {
            Some(d) => lat.push(d),
            None => errors += 1,
        }
    }
    figures(lat, start.elapsed(), errors)
}

/// Phase 10. `requests`: the flood's size; `rate`, `seconds`: the signed stream.
pub(super) async fn refusal_phase(
    dir: &std::path::Path,
    run: &str,
    requests: usize,
    concurrency: usize,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<Refusals> {
    let secret = "bench-secret";
    // a. The flood alone, against a fresh bridge: what it adds to the store
    // and the log (the bridge stopped with SIGTERM, so the last window's
    // aggregates are in the store).
    let bridge = Child::start(dir, &format!("refusals-a-{run}"), secret).await?;
    let (store0, log0) = bridge.sizes();
    let never = Arc::new(AtomicBool::new(false));
    let flood_alone = flood(&bridge.url, requests, concurrency, Default::default(), never.clone()).await;
    let (store1, log1) = bridge.stop().await?;

    // b. The signed stream alone, then beside the same flood.
    let bridge = Child::start(dir, &format!("refusals-b-{run}"), secret).await?;
    let client = WebhookClient::new(&bridge.url, secret);
    let warm: Vec<Value> =
        (0..200).map(|i| started(&format!("rw-{run}-{i}"), "app", &format!("evt-rw-{run}-{i}"), "x")).collect();
    closed_loop(&client, warm, concurrency, 202).await;
    let alone = signed_until(&client, &format!("a{run}"), rate, seconds, never).await;
    let (sent, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let flooding = {
        let (url, sent, stop) = (bridge.url.clone(), sent.clone(), stop.clone());
        tokio::spawn(async move { flood(&url, requests, concurrency, sent, stop).await })
    };
    while sent.load(Relaxed) < concurrency * 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The signed stream runs while the flood lasts (at most `seconds`).
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (flooding, done) = (flooding, done.clone());
        tokio::spawn(async move {
            let f = flooding.await;
            done.store(true, Relaxed);
            f
        })
    };
    let beside = signed_until(&client, &format!("b{run}"), rate, seconds, done).await;
    stop.store(true, Relaxed);
    let beside_flood = watcher.await??;
    bridge.stop().await?;
    Ok(Refusals {
        flood: flood_alone,
        store_growth_bytes: store1.saturating_sub(store0),
        log_growth_bytes: log1.saturating_sub(log0),
        alone,
        beside,
        beside_flood,
    })
}

pub(super) fn report(r: &Refusals, rate: u32) {
    print("10. refused requests, 4 KB paths", &r.flood);
    println!(
        "{:<38} store +{} bytes, log +{} bytes (all answered 401: {})",
        "    what the flood left",
        r.store_growth_bytes,
        r.log_growth_bytes,
        r.flood.errors == 0
    );
    print(&format!("10a. signed at {rate} req/s alone"), &r.alone);
    print(&format!("10b. signed at {rate} req/s beside it"), &r.beside);
    print("    the flood meanwhile", &r.beside_flood);
    let ratio = r.beside.p99_ms / r.alone.p99_ms.max(1e-9);
    println!(
        "  p99 signed beside the refusal flood / alone  {:>6.2} ms / {:.2} ms = {ratio:.1}x  [<= 2x] {}",
        r.beside.p99_ms,
        r.alone.p99_ms,
        verdict(ratio <= 2.0 && r.beside.errors == 0)
    );
}
