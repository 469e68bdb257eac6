//! `vbridge simulate`: signed sample traffic against a running bridge. Per
//! candidate a `started` then a `decision`; some deliveries are repeated (as
//! a provider retrying after a timeout would) and some arrive out of order.

use crate::devtools::client::{WebhookClient, decision, started};
use std::collections::BTreeMap;

pub struct SimulateOptions {
    pub url: String,
    pub secret: String,
    pub candidates: usize,
    pub run_id: String,
}

pub async fn run(o: SimulateOptions) -> anyhow::Result<BTreeMap<String, usize>> {
    let client = WebhookClient::new(&o.url, &o.secret);
    let outcomes = ["verified", "needs_review", "failed", "verified"];
    let base = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut summary: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..o.candidates {
        let cand = format!("cand-{}-{i}", o.run_id);
        // Numeric, as Greenhouse's application ids are, so that the same
        // traffic works whichever ATS the sandbox speaks (`dev --ats`).
        let app = format!("{}", 7000 + i);
        let t0 = (base + chrono::Duration::seconds(i as i64)).to_rfc3339();
        let t1 = (base + chrono::Duration::seconds(i as i64 + 60)).to_rfc3339();
        let s = started(&cand, &app, &format!("evt-{cand}-s"), &t0);
        let d = decision(&cand, &app, &format!("evt-{cand}-d"), &t1, outcomes[i % outcomes.len()]);
        let mut plan = if i % 4 == 3 { vec![&d, &s] } else { vec![&s, &d] };
        if i % 3 == 0 {
            plan.push(&d); // a provider retry
        }
        for body in plan {
            let reply = client.send(body).await?;
            let key =
                reply.body["status"].as_str().map(str::to_owned).unwrap_or_else(|| format!("http {}", reply.status));
            *summary.entry(key).or_default() += 1;
        }
    }
    println!("sent traffic for {} candidates to {}", o.candidates, o.url);
    for (k, v) in &summary {
        println!("  {k:<10} {v}");
    }
    Ok(summary)
}
