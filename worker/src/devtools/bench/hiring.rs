//! Phase 12 (`--hiring-only`): the hiring loop's triggers at a fixed
//! offered rate (50/s by default), through the whole stack: the Ashby route,
//! the commit, the relay, the workflow, the start at the sandbox's Veriff,
//! the invite through the sandbox's SMTP sink. It reports the p50/p99 from
//! the webhook's send to the invite's arrival in the sink, the sessions and
//! invites made (none doubled), and the Temporal work per trigger (history
//! events of a sample of the workflows).

use super::{print, start_bridge};
use crate::app::all_roles;
use crate::config::Config;
use crate::devtools::ats_hooks::{Move, dev_adapter, dev_secret, send, stage_change};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vbridge_core::intake::ats::AtsKind;

#[derive(Debug, Clone, serde::Serialize)]
pub struct HiringFigures {
    pub triggers: usize,
    pub offered_per_second: u32,
    pub sent_seconds: f64,
    pub accepted: usize,
    pub invites: usize,
    pub sessions: usize,
    pub webhook_to_invite: super::Figures,
    /// Mean history events of the sampled workflows (trigger → invite).
    pub history_events_per_trigger: f64,
}

/// Run the phase against the dev server at `temporal`, on a sandbox with a mailbox.
pub(crate) async fn hiring_phase(
    cfg: &Config,
    dir: &std::path::Path,
    run: &str,
    triggers: usize,
    rate: u32,
) -> anyhow::Result<HiringFigures> {
    let http_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let smtp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sandbox = format!("http://{}", http_l.local_addr()?);
    let smtp = format!("smtp://{}", smtp_l.local_addr()?);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::devtools::sandbox::serve_with_mail(http_l, Some(smtp_l), None, async move {
        let _ = rx.await;
    }));

    let mut cfg = cfg.clone();
    cfg.database_url = format!("sqlite://{}", dir.join("hiring.db").display());
    let text = format!("{}{}", cfg.policy.text(), vbridge_core::hiring::EXAMPLE_EXTENSION);
    cfg.policy = vbridge_core::Policy::parse(&text)?;
    cfg.ats_hooks = Arc::new(crate::intake::ats::AtsHooks::new(vec![dev_adapter(AtsKind::Ashby)]));
    cfg.hiring.start = Some(vbridge_activities::hiring::start::ProviderApi {
        provider: vbridge_activities::hiring::start::StartProvider::Veriff,
        url: sandbox.clone(),
        key: crate::devtools::sandbox::impersonate::API_KEY.into(),
    });
    cfg.hiring.mail = Some((smtp, "bench <bench@vbridge.test>".into()));
    cfg.task_queue = format!("bench-hiring-{run}");
    let bridge = start_bridge(cfg.clone(), all_roles())?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;

    // Open loop at `rate`: the send time of each trigger, by its address.
    let mut sent_at: BTreeMap<String, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    let mut accepted = 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    let started = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..triggers {
        tick.tick().await;
        let (c, a, email) = (format!("hb{run}c{i}"), format!("hb{run}a{i}"), format!("hb{run}-{i}@example.org"));
        sent_at.insert(email.clone(), chrono::Utc::now());
        let (http, url, key) = (http.clone(), bridge.url.clone(), format!("hb{run}k{i}"));
        in_flight.spawn(async move {
            let at = chrono::Utc::now().to_rfc3339();
            let m = Move {
                candidate_id: &c,
                application_id: &a,
                stage: "Identity Check",
                role: "Designer",
                region: "Berlin",
                email: &email,
                key: &key,
                at: &at,
            };
            let body = stage_change(AtsKind::Ashby, &m);
            let reply = send(&http, &url, AtsKind::Ashby, dev_secret(AtsKind::Ashby), &key, &body).await;
            reply.is_ok_and(|r| r.body["status"] == "accepted")
        });
    }
    while let Some(ok) = in_flight.join_next().await {
        accepted += usize::from(ok.unwrap_or(false));
    }
    let sent_seconds = started.elapsed().as_secs_f64();

    // Wait for every invite (or five minutes).
    let deadline = Instant::now() + Duration::from_secs(300);
    let mail = loop {
        let mail: Vec<serde_json::Value> =
            http.get(format!("{sandbox}/_sandbox/mailbox/messages")).send().await?.json().await?;
        if mail.len() >= triggers || Instant::now() > deadline {
            break mail;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut lat = vec![];
    for m in &mail {
        let to = m["envelope_to"][0].as_str().unwrap_or("").trim_matches(['<', '>']).to_owned();
        let got = m["received_at"].as_str().and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok());
        if let (Some(sent), Some(got)) = (sent_at.get(&to), got) {
            lat.push((got - *sent).to_std().unwrap_or_default());
        }
    }
    let elapsed = started.elapsed();
    let sessions: Vec<serde_json::Value> =
        http.get(format!("{sandbox}/_sandbox/providers/sessions")).send().await?.json().await?;

    // The Temporal work per trigger: history events of a sample.
    let client = crate::temporal::connect(&cfg.temporal_address, &cfg.temporal_namespace).await?;
    let sample: Vec<usize> = (0..triggers).step_by((triggers / 20).max(1)).collect();
    let mut events = 0usize;
    for i in &sample {
        let id = vbridge_core::domain::workflow_id(&format!("hb{run}c{i}"), &format!("hb{run}a{i}"));
        let h = client.get_workflow_handle::<vbridge_workflows::CandidateVerification>(id);
        events += h.describe(Default::default()).await.map(|d| d.history_length()).unwrap_or(0);
    }
    bridge.shutdown().await;
    let _ = stop.send(());

    let f = super::figures(lat, elapsed, triggers.saturating_sub(mail.len()));
    print("12. hiring: webhook -> invite in the sink", &f);
    let out = HiringFigures {
        triggers,
        offered_per_second: rate,
        sent_seconds,
        accepted,
        invites: mail.len(),
        sessions: sessions.len(),
        webhook_to_invite: f,
        history_events_per_trigger: events as f64 / sample.len().max(1) as f64,
    };
    println!(
        "    {} triggers offered at {}/s over {:.1} s: {} accepted, {} sessions, {} invites; {:.1} history events per trigger",
        out.triggers,
        out.offered_per_second,
        out.sent_seconds,
        out.accepted,
        out.sessions,
        out.invites,
        out.history_events_per_trigger
    );
    Ok(out)
}
