//! The operator's controls: `gating` (the kill switch), `pause`/`resume`,
//! `reconcile run`, `writes failed|retry` (dead letters) and `override`.

use super::review::{HumanMove, Who, human_move};
use super::tools_forwarder;
use clap::Subcommand;
use std::path::PathBuf;
use vbridge::config::Config;

#[derive(Subcommand)]
pub enum ReconcileCommand {
    /// Run one now (the nightly Temporal Schedule runs the same workflow),
    /// with a progress bar and a diff table at the end.
    Run {
        /// Report the differences; heal nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value = "cli")]
        actor: String,
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum WritesCommand {
    /// List the open dead letters, newest first.
    Failed {
        #[arg(long)]
        json: bool,
    },
    /// Re-drive one dead letter (by its idempotency key) or all, after the
    /// field mapping or the ATS was fixed; each keeps its idempotency key.
    Retry {
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        key: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        actor: String,
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// One of: `--candidate` with `--application`, `--query`, `--all`.
#[derive(clap::Args)]
pub struct PauseArgs {
    #[arg(long, requires = "application", conflicts_with_all = ["query", "region", "all"])]
    candidate: Option<String>,
    #[arg(long)]
    application: Option<String>,
    /// A visibility query narrowing the open verifications, e.g.
    /// "ApplicationId STARTS_WITH 'emea-'".
    #[arg(long, conflicts_with = "all")]
    query: Option<String>,
    /// Every open verification of one region (the `Region` search attribute,
    /// from the events' `signals.job.region`).
    #[arg(long, conflicts_with_all = ["query", "all"])]
    region: Option<String>,
    /// Every open verification.
    #[arg(long)]
    all: bool,
    #[arg(long, default_value = "")]
    reason: String,
    #[arg(long)]
    actor: String,
    #[arg(long, env = "VBRIDGE_CONFIG")]
    config: Option<PathBuf>,
}

/// An admin's override: the human move to `to`, with a reason code and a note.
pub async fn override_state(
    candidate: &str,
    application: &str,
    to: String,
    reason_code: String,
    note: String,
    who: Who,
) -> anyhow::Result<()> {
    let o = vbridge_proto::OverrideRequest { to, reason_code, note, ..Default::default() };
    human_move(candidate, application, who, HumanMove::Override(o)).await
}

/// `vbridge erase`: the store first, then the histories (docs/privacy.md).
pub async fn erase(
    candidate: &str,
    reason_code: String,
    actor: String,
    note: String,
    request_id: Option<String>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = Config::load_for_tools(config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let req = vbridge::erasure::Request {
        candidate: vbridge_core::domain::CandidateId::parse(candidate)?,
        actor,
        reason_code,
        note,
        trigger: vbridge::erasure::Trigger::Cli,
        trace_id: vbridge_core::domain::TraceId::new_random().as_str().to_owned(),
        request_id: request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    };
    let client = vbridge::temporal::connect(&cfg.temporal_address, &cfg.temporal_namespace).await;
    if let Err(e) = &client {
        eprintln!("Temporal cannot be reached ({e}): the store is erased, the histories are owed");
    }
    let temporal = client.as_ref().ok().map(|c| (c, cfg.temporal_namespace.as_str()));
    let report = vbridge::erasure::erase(store.as_ref(), temporal, req).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

pub async fn gating(enabled: bool, reason: &str, actor: &str, config: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(!reason.trim().is_empty(), "--reason must say why gating changes");
    let cfg = Config::load_for_tools(config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let trace_id = vbridge_core::domain::TraceId::new_random();
    let c =
        vbridge::controls::set_gating(store.as_ref(), &cfg.policy, enabled, actor, reason, trace_id.as_str()).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let g = vbridge_proto::GatingSignal {
        enabled,
        banner: vbridge::controls::banner_for(&cfg.policy, enabled),
        actor: actor.to_owned(),
        reason: reason.to_owned(),
    };
    let job = vbridge::temporal::human::broadcast_gating(&fw, &cfg.temporal_namespace, g).await?;
    println!("{}", serde_json::json!({ "enabled": enabled, "changed_at": c.changed_at, "broadcast": job }));
    Ok(())
}

pub async fn pause(args: PauseArgs, paused: bool) -> anyhow::Result<()> {
    let cfg = Config::load_for_tools(args.config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let p = vbridge_proto::PauseSignal {
        paused,
        actor: args.actor,
        reason: args.reason,
        trace_id: vbridge_core::domain::TraceId::new_random().as_str().to_owned(),
    };
    anyhow::ensure!(
        args.candidate.is_some() || args.query.is_some() || args.region.is_some() || args.all,
        "say which: --candidate C --application A, --query Q, --region R, or --all"
    );
    let query = match (&args.region, &args.query) {
        (Some(r), _) => Some(format!("Region = '{}'", r.replace('\'', ""))),
        (None, q) => q.clone(),
    };
    match (args.candidate, args.application) {
        (Some(c), Some(a)) => {
            let v = vbridge::temporal::human::Verification {
                candidate_id: vbridge_core::domain::CandidateId::parse(&c)?,
                application_id: vbridge_core::domain::ApplicationId::parse(&a)?,
            };
            vbridge::temporal::human::pause(store.as_ref(), &fw, &v, p).await?;
            println!("{}", serde_json::json!({ "paused": paused }));
        }
        _ => {
            let job = vbridge::temporal::human::pause_all(&fw, &cfg.temporal_namespace, query.as_deref(), p).await?;
            println!("{}", serde_json::json!({ "paused": paused, "batch": job }));
        }
    }
    Ok(())
}

pub async fn reconcile(command: ReconcileCommand) -> anyhow::Result<()> {
    let ReconcileCommand::Run { dry_run, actor, config } = command;
    reconcile_run(dry_run, &actor, config).await
}

async fn reconcile_run(dry_run: bool, actor: &str, config: Option<PathBuf>) -> anyhow::Result<()> {
    use vbridge_workflows::reconcile::Reconciliation;
    let cfg = Config::load_for_tools(config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let client = vbridge::temporal::connect(&cfg.temporal_address, &cfg.temporal_namespace).await?;
    let total = store.expected_count().await?;
    let run_id = vbridge::controls::reconcile::start(&client, &cfg.task_queue, &cfg.policy, dry_run, actor).await?;
    eprintln!("reconcile: run {run_id}{}", if dry_run { " (dry run)" } else { "" });
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} checks · {msg} · {elapsed}")
            .expect("a valid template"),
    );
    let handle = client.get_workflow_handle::<Reconciliation>(run_id.clone());
    let report = loop {
        if let Some(json) = store.reconcile_run(&run_id).await? {
            break serde_json::from_str::<vbridge_proto::ReconcileProgress>(&json)?;
        }
        if let Ok(p) = handle.query(Reconciliation::progress, (), Default::default()).await {
            bar.set_position(p.checked as u64);
            bar.set_message(format!("{} drifted, {} healed, {} failed", p.drifted, p.healed, p.failed));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    bar.set_position(report.checked as u64);
    bar.finish_with_message(format!("{} drifted, {} healed, {} failed", report.drifted, report.healed, report.failed));
    println!("{:<24} {:<28} {:<26} {:<26} {:<26} OUTCOME", "APPLICATION", "CHECK", "FIELD", "EXPECTED", "FOUND");
    for d in &report.items {
        let Some(e) = &d.expected else { continue };
        let fields: Vec<(String, String)> = if d.missing {
            vec![("(the whole check)".into(), "(missing)".into())]
        } else {
            d.found.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (field, found) in fields {
            let expected = e.fields.get(&field).cloned().unwrap_or_default();
            println!(
                "{:<24} {:<28} {:<26} {:<26} {:<26} {}",
                e.application_id, e.verification_check_id, field, expected, found, d.outcome
            );
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "run_id": run_id, "checked": report.checked, "drifted": report.drifted,
            "healed": report.healed, "failed": report.failed, "unreadable": report.unreadable,
        })
    );
    Ok(())
}

pub async fn writes(command: WritesCommand) -> anyhow::Result<()> {
    match command {
        WritesCommand::Failed { json } => writes_failed(json).await,
        WritesCommand::Retry { key, all: _, reason, actor, config } => writes_retry(key, &reason, &actor, config).await,
    }
}

async fn writes_failed(json: bool) -> anyhow::Result<()> {
    let store = vbridge::config::open_store(&vbridge::config::database_url_from_env()).await?;
    let items = store.dead_letters(None, vbridge::controls::dead_letters::MAX_LIST).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!(
        "{:<46} {:<20} {:<20} {:<13} {:<25} REASON",
        "IDEMPOTENCY KEY", "CANDIDATE", "APPLICATION", "STATE", "FAILED AT"
    );
    for d in &items {
        println!(
            "{:<46} {:<20} {:<20} {:<13} {:<25} {}",
            d.idempotency_key, d.candidate_id, d.application_id, d.state, d.failed_at, d.reason
        );
    }
    eprintln!("{} open dead letter(s)", items.len());
    Ok(())
}

async fn writes_retry(key: Option<String>, reason: &str, actor: &str, config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load_for_tools(config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let r = vbridge::controls::dead_letters::retry(store.as_ref(), &fw, key.as_deref(), actor, reason).await?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
