//! `vbridge simulate`: signed sample traffic against a running bridge. Per
//! candidate a `started` then a `decision`; some deliveries are repeated (as
//! a provider retrying after a timeout would) and some arrive out of order.
//! With `--provider`, the same in that provider's shapes, on its route.

use crate::devtools::client::{WebhookClient, decision, started};
use crate::devtools::providers::{Outcome, Signer, body};
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

/// `vbridge simulate --provider`: the same plan in a real provider's own
/// shapes, signed as it signs (`devtools::providers`), on its own route.
pub struct ProviderOptions {
    pub url: String,
    pub signer: Signer,
    pub candidates: usize,
    pub run_id: String,
}

/// What one candidate was sent: its reference and the decision's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub candidate_id: String,
    pub application_id: String,
    pub outcome: Outcome,
}

pub async fn run_provider(o: ProviderOptions) -> anyhow::Result<(BTreeMap<String, usize>, Vec<Sent>)> {
    let http = reqwest::Client::new();
    let kind = o.signer.kind;
    let name = kind.as_str();
    let outcomes = [Outcome::Verified, Outcome::NeedsReview, Outcome::Failed, Outcome::Verified];
    let base = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut summary: BTreeMap<String, usize> = BTreeMap::new();
    let mut sent = vec![];
    for i in 0..o.candidates {
        let (cand, app) = (format!("cand-{name}-{}-{i}", o.run_id), format!("{}", 7000 + i));
        let reference = format!("{cand}:{app}");
        // The provider's id of the verification (an inquiry, a run, a
        // session, an applicant): one per candidate.
        let check = format!("{name}{}x{i}", o.run_id);
        let outcome = outcomes[i % outcomes.len()];
        let t0 = (base + chrono::Duration::seconds(i as i64)).to_rfc3339();
        let started = body(kind, Outcome::Started, &reference, &check, 1, &t0);
        let mut send = async |b: &serde_json::Value| -> anyhow::Result<()> {
            let reply = o.signer.send(&http, &o.url, b).await?;
            let key =
                reply.body["status"].as_str().map(str::to_owned).unwrap_or_else(|| format!("http {}", reply.status));
            *summary.entry(key).or_default() += 1;
            Ok(())
        };
        send(&started).await?;
        // Timed once the started event is in: Veriff's carries no time and
        // stands at its receipt, which a decision must follow.
        let decision = body(kind, outcome, &reference, &check, 2, &chrono::Utc::now().to_rfc3339());
        send(&decision).await?;
        if i % 3 == 0 {
            send(&decision).await?; // a provider retry
        }
        sent.push(Sent { candidate_id: cand, application_id: app, outcome });
    }
    println!("sent {name} traffic for {} candidates to {}/webhooks/{name}", o.candidates, o.url);
    for s in &sent {
        println!("  {}:{} {:?}", s.candidate_id, s.application_id, s.outcome);
    }
    for (k, v) in &summary {
        println!("  {k:<10} {v}");
    }
    Ok((summary, sent))
}
