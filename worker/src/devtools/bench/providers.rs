//! Phase 11: the four provider routes beside the IL route (docs/contract.md
//! §7). One receiver on SQLite with every route configured (the dev
//! secrets); first deliveries at the bench's concurrency, then the same
//! deliveries again (duplicates), each route in turn, in rounds, so that a
//! machine that slows down mid-phase slows every route alike. Each
//! provider's ack rate is reported as a ratio of the IL route's in the same
//! rounds (target: ≥ 0.8×).

use super::{Figures, figures, print, start_bridge, timed};
use crate::app::Role;
use crate::config::Config;
use crate::devtools::client::started;
use crate::devtools::providers::{DEV_VERIFF_API_KEY, Outcome, Signer, body, dev_adapter, dev_secret};
use crate::intake::providers::Providers;
use crate::intake::signature::{Secret, sign_il};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use vbridge_core::intake::providers::{ProviderKind, ReasonMap};

const ROUNDS: usize = 3;
const IL: &str = "il";

/// One delivery: its bytes and its headers.
type Request = (Vec<u8>, Vec<(String, String)>);

/// One route's deliveries, made before the clock starts, so that signing is
/// not measured.
struct Route {
    name: &'static str,
    url: String,
    requests: Vec<Request>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteFigures {
    pub first: Figures,
    pub duplicates: Figures,
    /// The route's first-delivery ack rate over the IL route's.
    pub first_vs_il: f64,
    pub duplicates_vs_il: f64,
}

fn routes(base: &str, secret: &str, run: &str, n: usize, round: usize) -> Vec<Route> {
    let now = crate::now_rfc3339();
    let key = Secret::parse(secret, 1).expect("the bench's secret");
    let il_client_headers = |bytes: &[u8]| {
        let ts = chrono::Utc::now().timestamp();
        vec![("X-IL-Timestamp".to_owned(), ts.to_string()), ("X-IL-Signature".to_owned(), sign_il(&key, ts, bytes))]
    };
    let mut out = vec![Route {
        name: IL,
        url: format!("{base}/webhooks/verification"),
        requests: (0..n)
            .map(|i| {
                let b = started(&format!("il{round}-{run}-{i}"), "app", &format!("evt-il{round}-{run}-{i}"), &now);
                let bytes = serde_json::to_vec(&b).expect("JSON");
                let headers = il_client_headers(&bytes);
                (bytes, headers)
            })
            .collect(),
    }];
    for kind in ProviderKind::ALL {
        let signer = Signer::new(kind, dev_secret(kind), DEV_VERIFF_API_KEY);
        let requests = (0..n)
            .map(|i| {
                let check = format!("bench{}{round}x{run}x{i}", kind.as_str());
                let reference = format!("c{}{round}-{run}-{i}:app", kind.as_str());
                let b = body(kind, Outcome::Started, &reference, &check, 1, &now);
                let bytes = serde_json::to_vec(&b).expect("JSON");
                let headers = signer.headers(&bytes, chrono::Utc::now().timestamp());
                (bytes, headers)
            })
            .collect();
        out.push(Route { name: kind.as_str(), url: format!("{base}/webhooks/{}", kind.as_str()), requests });
    }
    out
}

/// Send every request of `route` with `concurrency` in flight.
async fn closed_loop(
    http: &reqwest::Client,
    route: &Route,
    concurrency: usize,
    expect: u16,
) -> (Vec<Duration>, Duration, usize) {
    let send = |(bytes, headers): &Request| {
        let mut req = http.post(&route.url).header("content-type", "application/json").body(bytes.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { matches!(req.send().await, Ok(r) if r.status().as_u16() == expect) }
    };
    timed(route.requests.iter(), concurrency, send).await
}

#[derive(Default)]
struct Acc {
    lat: Vec<Duration>,
    elapsed: Duration,
    errors: usize,
}

impl Acc {
    fn add(&mut self, (lat, elapsed, errors): (Vec<Duration>, Duration, usize)) {
        self.lat.extend(lat);
        self.elapsed += elapsed;
        self.errors += errors;
    }
}

/// Run the phase on a receiver of its own (SQLite in `dir`).
pub(crate) async fn provider_phase(
    cfg: &Config,
    dir: &std::path::Path,
    secret: &str,
    run: &str,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<BTreeMap<String, RouteFigures>> {
    let mut cfg = cfg.clone();
    cfg.database_url = format!("sqlite://{}", dir.join("providers.db").display());
    let adapters = ProviderKind::ALL.into_iter().map(dev_adapter).collect();
    cfg.providers = Arc::new(Providers::new(adapters, ReasonMap::default()));
    let bridge = start_bridge(cfg, [Role::Receiver].into_iter().collect())?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let per_round = (requests / ROUNDS).max(100);
    // Warm every route once.
    for route in routes(&bridge.url, secret, &format!("w{run}"), 50, 9) {
        closed_loop(&http, &route, concurrency, 202).await;
    }
    let mut first: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut dups: BTreeMap<&str, Acc> = BTreeMap::new();
    for round in 0..ROUNDS {
        let made = routes(&bridge.url, secret, run, per_round, round);
        for route in &made {
            first.entry(route.name).or_default().add(closed_loop(&http, route, concurrency, 202).await);
        }
        for route in &made {
            dups.entry(route.name).or_default().add(closed_loop(&http, route, concurrency, 200).await);
        }
    }
    bridge.shutdown().await;
    let done = |acc: BTreeMap<&str, Acc>| -> BTreeMap<String, Figures> {
        acc.into_iter().map(|(k, a)| (k.to_owned(), figures(a.lat, a.elapsed, a.errors))).collect()
    };
    let (first, dups) = (done(first), done(dups));
    let il_first = first[IL].per_second.max(1e-9);
    let il_dups = dups[IL].per_second.max(1e-9);
    let mut out = BTreeMap::new();
    for (name, f) in &first {
        let d = dups[name].clone();
        print(&format!("11. {name} first deliveries"), f);
        print(&format!("11. {name} duplicates"), &d);
        out.insert(
            name.clone(),
            RouteFigures {
                first_vs_il: f.per_second / il_first,
                duplicates_vs_il: d.per_second / il_dups,
                first: f.clone(),
                duplicates: d,
            },
        );
    }
    for (name, r) in out.iter().filter(|(n, _)| n.as_str() != IL) {
        println!(
            "    {name:<8} ack rate vs IL: first {:.2}x, duplicates {:.2}x (target >= 0.8x)",
            r.first_vs_il, r.duplicates_vs_il
        );
    }
    Ok(out)
}
