//! Phase 14 (`--instances-only`): scale-out on one machine. Bridges run as
//! `vbridge serve` child processes (all roles) on one scratch Postgres, one
//! persisted Temporal dev server and one sandbox ATS; the relay's lease (a
//! Postgres advisory lock) lets one of them forward at a time, while both
//! receive and both work the task queue.
//!
//! Three rounds, each a burst of its own applications (the burst's mix):
//! one instance; two instances, the events spread across both; two
//! instances again, the lease holder SIGKILLed once 40 % are acked, its
//! unanswered requests sent to the other (as a provider retries). Then
//! every event sent is looked up: accepted once at intake, one audit record
//! of its application (applied or skipped), no ATS write twice.

use super::burst::{bodies_verified, burst_bodies, cpu_seconds, persisted_stack};
use super::child::{ServeChild, bridge_env};
use super::outbox::{drop_scratch_postgres, scratch_postgres};
use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// When the kill round kills: after this share of its events is acked.
const KILL_AFTER: f64 = 0.4;

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Round {
    pub(super) label: &'static str,
    pub(super) instances: usize,
    pub(super) events: usize,
    /// Each event's ack (202, or 200 for a re-send whose first try had
    /// committed), the send's whole span.
    pub(super) acks: Figures,
    pub(super) acks_per_instance: Vec<usize>,
    /// First send to the round's last ATS write.
    pub(super) drain_per_second: f64,
    pub(super) drained: bool,
    /// Requests re-sent to the survivor after the kill.
    pub(super) resent: usize,
    /// CPU seconds per 1,000 of the round's events, per instance (none for
    /// the killed one) and for the Temporal dev server.
    pub(super) cpu_s_per_1000: Vec<Option<f64>>,
    pub(super) temporal_cpu_s_per_1000: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Instances {
    pub(super) rounds: Vec<Round>,
    pub(super) events: usize,
    /// Events with no accepted delivery, or more than one.
    pub(super) intake_lost: usize,
    pub(super) intake_doubled: usize,
    /// Events the workflows logged no application of (applied, or skipped
    /// as stale), or more than one.
    pub(super) lost: usize,
    pub(super) doubled: usize,
    /// Events a workflow got again and skipped as duplicates (the relay
    /// killed between a signal and its mark sends it again).
    pub(super) redelivered_skipped: usize,
    pub(super) ats_writes: usize,
    pub(super) ats_keys_written_twice: usize,
    pub(super) verified_writes: usize,
    pub(super) expected_verified: usize,
}

impl Instances {
    pub(super) fn none_lost_none_doubled(&self) -> bool {
        self.intake_lost + self.intake_doubled + self.lost + self.doubled + self.ats_keys_written_twice == 0
            && self.verified_writes == self.expected_verified
    }
}

/// The parts every round shares.
struct Stage {
    sandbox_url: String,
    temporal_pid: Option<u32>,
    run: String,
    events: usize,
    apps: usize,
    concurrency: usize,
}

pub(super) async fn instances_phase(
    cfg: &Config,
    dir: &std::path::Path,
    run: &str,
    o: &BenchOptions,
) -> anyhow::Result<Instances> {
    let admin =
        o.postgres_admin_url().ok_or_else(|| anyhow::anyhow!("two instances share a Postgres: give --postgres-url"))?;
    let (url, db) = scratch_postgres(admin, &format!("in{run}")).await?;
    let result = rounds(cfg, dir, run, o, &url).await;
    drop_scratch_postgres(admin, &db).await;
    result
}

async fn rounds(
    cfg: &Config,
    dir: &std::path::Path,
    run: &str,
    o: &BenchOptions,
    url: &str,
) -> anyhow::Result<Instances> {
    let (temporal, sandbox_url, sb_stop, mut own) = persisted_stack(cfg, dir, "instances", run).await?;
    own.database_url = url.to_owned();
    let env = |i: usize| bridge_env(&own, &dir.join(format!("instance-{i}")));
    let all_roles = "receiver,relay,worker";
    let stage = Stage {
        sandbox_url: sandbox_url.clone(),
        temporal_pid: temporal.pid(),
        run: run.to_owned(),
        events: o.burst_events,
        apps: o.burst_applications.max(1),
        concurrency: o.concurrency,
    };
    let mut bridges = vec![ServeChild::start(dir.join("instance-0.log"), all_roles, &env(0)?).await?];
    let mut rounds = vec![stage.round("one", &mut bridges, None).await?];
    bridges.push(ServeChild::start(dir.join("instance-1.log"), all_roles, &env(1)?).await?);
    rounds.push(stage.round("two", &mut bridges, None).await?);
    // Kill the one that forwards: its relay's lease must pass to the other.
    let mut holder = None;
    for (i, b) in bridges.iter().enumerate() {
        if relay_forwarded(b).await > 0 {
            holder = Some(i);
        }
    }
    let holder = holder.unwrap_or_else(|| {
        println!("14. neither instance says it forwarded (its /metrics?): killing instance 0, which started first");
        0
    });
    rounds.push(stage.round("kill", &mut bridges, Some(holder)).await?);

    let sent: Vec<String> = rounds
        .iter()
        .flat_map(|r| burst_bodies(&format!("{run}{}", r.label), r.events, stage.apps).into_iter().map(|(id, _)| id))
        .collect();
    let writes = sandbox_writes(&sandbox_url).await?;
    let expected_verified = rounds.iter().map(|r| bodies_verified(r.events, stage.apps)).sum();
    let mut figures = count_once(url, &sent, &writes, expected_verified).await?;
    figures.rounds = rounds;
    for mut b in bridges {
        let _ = b.stop().await;
    }
    let _ = sb_stop.send(());
    drop(temporal);
    Ok(figures)
}

impl Stage {
    /// A burst of `self.events` over applications of its own, the i-th
    /// event sent to bridge i mod n; with `kill`, that bridge is SIGKILLed
    /// once [`KILL_AFTER`] of the events are acked.
    async fn round(
        &self,
        label: &'static str,
        bridges: &mut [ServeChild],
        kill: Option<usize>,
    ) -> anyhow::Result<Round> {
        let n = bridges.len();
        let clients: Vec<WebhookClient> = bridges.iter().map(|b| WebhookClient::new(&b.url, "bench-secret")).collect();
        let survivor = kill.map(|k| (k + 1) % n);
        let pids: Vec<Option<u32>> = bridges.iter().map(ServeChild::pid).collect();
        let cpu_start: Vec<f64> = pids.iter().map(|p| cpu_seconds_of(*p)).collect();
        let temporal_start = cpu_seconds(self.temporal_pid);
        let prefix = format!("burst-{}{label}-", self.run);
        let bodies = burst_bodies(&format!("{}{label}", self.run), self.events, self.apps);
        let (acked, dead, resent) = (AtomicUsize::new(0), AtomicBool::new(false), AtomicUsize::new(0));
        let start = Instant::now();
        let started_at = chrono::Utc::now();
        let sending = futures::stream::iter(bodies.into_iter().enumerate())
            .map(|(i, (_, body))| {
                let (clients, acked, dead, resent) = (&clients, &acked, &dead, &resent);
                async move {
                    let t = Instant::now();
                    let mut target = i % n;
                    for _ in 0..200 {
                        if Some(target) == kill && dead.load(Relaxed) {
                            target = survivor.unwrap_or(target);
                            resent.fetch_add(1, Relaxed);
                        }
                        match clients[target].send(&body).await {
                            Ok(r) if r.status == 202 || r.status == 200 => {
                                acked.fetch_add(1, Relaxed);
                                return Some((target, t.elapsed()));
                            }
                            _ => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                    None
                }
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>();
        let killing = async {
            let Some(k) = kill else { return };
            while (acked.load(Relaxed) as f64) < self.events as f64 * KILL_AFTER
                && start.elapsed() < Duration::from_secs(600)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            bridges[k].kill().await;
            dead.store(true, Relaxed);
            println!("14. {label}: SIGKILLed instance {k} (the relay's lease holder) at {} acked", acked.load(Relaxed));
        };
        let (answers, ()) = tokio::join!(sending, killing);
        let send_span = start.elapsed();
        let mut acks_per_instance = vec![0; n];
        let mut lat = vec![];
        for (target, d) in answers.iter().flatten() {
            acks_per_instance[*target] += 1;
            lat.push(*d);
        }
        let errors = answers.iter().filter(|a| a.is_none()).count();
        let acks = figures(lat, send_span, errors);

        // Drained when every application with a `verified` has it written.
        let expected = bodies_verified(self.events, self.apps);
        let deadline = Instant::now() + Duration::from_secs(1800);
        let (last, drained) = loop {
            let writes = sandbox_writes(&self.sandbox_url).await?;
            let ours: Vec<_> = writes
                .iter()
                .filter(|w| w.fields.get("verification_last_event_id").is_some_and(|id| id.starts_with(&prefix)))
                .collect();
            let verified = ours
                .iter()
                .filter(|w| w.fields.get("verification_state").map(String::as_str) == Some("verified"))
                .count();
            if verified >= expected || Instant::now() > deadline {
                let last = ours.iter().filter_map(|w| chrono::DateTime::parse_from_rfc3339(&w.at).ok()).max();
                break (last, verified >= expected);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let span = last.map(|l| (l.with_timezone(&chrono::Utc) - started_at).to_std().unwrap_or_default());
        let drain_per_second = self.events as f64 / span.unwrap_or_default().as_secs_f64().max(1e-9);
        let per_1000 = |s: f64| s * 1000.0 / self.events.max(1) as f64;
        let cpu_s_per_1000: Vec<Option<f64>> = pids
            .iter()
            .zip(&cpu_start)
            .enumerate()
            .map(|(i, (p, s))| (Some(i) != kill).then(|| per_1000(cpu_seconds_of(*p) - s)))
            .collect();
        let temporal_cpu_s_per_1000 = per_1000(cpu_seconds(self.temporal_pid) - temporal_start);
        let round = Round {
            label,
            instances: n,
            events: self.events,
            acks,
            acks_per_instance,
            drain_per_second,
            drained,
            resent: resent.load(Relaxed),
            cpu_s_per_1000,
            temporal_cpu_s_per_1000,
        };
        report(&round);
        Ok(round)
    }
}

/// A child's CPU seconds; 0 once it is gone.
fn cpu_seconds_of(pid: Option<u32>) -> f64 {
    if pid.is_some() { cpu_seconds(pid) } else { 0.0 }
}

fn report(r: &Round) {
    let cpu: Vec<String> =
        r.cpu_s_per_1000.iter().map(|c| c.map_or_else(|| "killed".to_owned(), |c| format!("{c:.1}"))).collect();
    println!(
        "14. {} ({} instance{}): {} events acked at {:.0}/s (p99 {:.1} ms, per instance {:?}, {} re-sent, {} errors), \
         drained at {:.1} events/s{}; CPU-s per 1,000 events: bridges [{}], Temporal {:.1}",
        r.label,
        r.instances,
        if r.instances == 1 { "" } else { "s" },
        r.events,
        r.acks.per_second,
        r.acks.p99_ms,
        r.acks_per_instance,
        r.resent,
        r.acks.errors,
        r.drain_per_second,
        if r.drained { "" } else { " (NOT drained in 30 min)" },
        cpu.join(", "),
        r.temporal_cpu_s_per_1000
    );
}

async fn sandbox_writes(sandbox_url: &str) -> anyhow::Result<Vec<crate::devtools::sandbox::AppliedWrite>> {
    Ok(reqwest::get(format!("{sandbox_url}/_sandbox/writes")).await?.json().await?)
}

async fn relay_forwarded(bridge: &ServeChild) -> u64 {
    bridge
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("vbridge_relay_forwarded_count ").and_then(|v| v.trim().parse::<f64>().ok()))
        .unwrap_or(0.0) as u64
}

/// The reason a workflow gives an event id it already handled.
fn machine_duplicate() -> String {
    vbridge_core::machine::Outcome::Skipped(vbridge_core::machine::Skip::Duplicate).reason()
}

/// Every event sent, looked up in the shared store and the ATS: accepted
/// once, applied (or skipped as stale) once, each ATS write once. The
/// workflows log their records a moment after applying: waited for.
async fn count_once(
    url: &str,
    sent: &[String],
    writes: &[crate::devtools::sandbox::AppliedWrite],
    expected_verified: usize,
) -> anyhow::Result<Instances> {
    let store = crate::config::open_store(url).await?;
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for d in store.deliveries(None, None).await? {
        if d.content.processing_result == "accepted"
            && let Some(id) = d.content.event_id
        {
            *accepted.entry(id).or_default() += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut redelivered;
    let (records, seen) = loop {
        let mut records: HashMap<String, usize> = HashMap::new();
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        redelivered = 0;
        for d in store.decisions(None, None).await? {
            let r = d.record;
            // A re-delivery (the relay killed between the signal and its
            // mark sends it again) is skipped as a duplicate: not applied.
            if r.reason == machine_duplicate() {
                redelivered += 1;
            } else if ["applied", "skipped", "refused"].contains(&r.kind.as_str()) {
                *records.entry(r.event_id.clone()).or_default() += 1;
            }
            seen.entry(r.event_id)
                .or_default()
                .push(format!("{} {} ({} -> {}) {}", r.kind, r.record_id, r.state_before, r.state_after, r.reason));
        }
        if sent.iter().all(|id| records.contains_key(id)) || Instant::now() > deadline {
            break (records, seen);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // What a run that failed looks like: the first few events out of line.
    for id in sent.iter().filter(|id| records.get(*id).copied().unwrap_or(0) != 1).take(5) {
        println!("14. event {id}: {:?}", seen.get(id));
    }
    let count = |m: &HashMap<String, usize>, pick: fn(usize) -> bool| {
        sent.iter().filter(|id| pick(m.get(*id).copied().unwrap_or(0))).count()
    };
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for w in writes {
        *keys.entry(w.idempotency_key.as_str()).or_default() += 1;
    }
    let verified_writes =
        writes.iter().filter(|w| w.fields.get("verification_state").map(String::as_str) == Some("verified")).count();
    let figures = Instances {
        rounds: vec![],
        events: sent.len(),
        intake_lost: count(&accepted, |c| c == 0),
        intake_doubled: count(&accepted, |c| c > 1),
        lost: count(&records, |c| c == 0),
        doubled: count(&records, |c| c > 1),
        redelivered_skipped: redelivered,
        ats_writes: writes.len(),
        ats_keys_written_twice: keys.values().filter(|c| **c > 1).count(),
        verified_writes,
        expected_verified,
    };
    println!(
        "14. {} events: intake lost {}, doubled {}; applications lost {}, doubled {} ({} re-deliveries skipped as \
         duplicates); {} ATS writes, {} keys written twice, {} verified of {} expected",
        figures.events,
        figures.intake_lost,
        figures.intake_doubled,
        figures.lost,
        figures.doubled,
        figures.redelivered_skipped,
        figures.ats_writes,
        figures.ats_keys_written_twice,
        figures.verified_writes,
        figures.expected_verified
    );
    Ok(figures)
}
