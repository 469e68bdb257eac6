//! `review list|decide`, and the human move `override` shares: the same
//! update the API sends, with the actor given by `--actor`.

use super::tools_forwarder;
use clap::Subcommand;
use std::path::PathBuf;
use vbridge::config::Config;
use vbridge::review::queue;

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Open items in due order, overdue ones flagged (reads the store).
    List {
        #[arg(long)]
        queue: Option<String>,
        /// Only overdue items.
        #[arg(long)]
        overdue: bool,
        #[arg(long)]
        reason_code: Option<String>,
        #[arg(long, default_value_t = queue::DEFAULT_PAGE)]
        limit: u32,
        /// Continue after a page (the `next` a page printed).
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Decide an item in review: verified or failed, with a reason code.
    Decide {
        #[arg(long)]
        candidate: String,
        #[arg(long)]
        application: String,
        #[arg(long)]
        decision: String,
        #[arg(long)]
        reason_code: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        who: Who,
    },
}

/// Who makes a human move from the CLI, and its idempotency.
#[derive(clap::Args)]
pub struct Who {
    /// The actor recorded (the CLI talks to the store and Temporal directly,
    /// so it is whoever may run it; the API takes the token's subject).
    #[arg(long)]
    actor: String,
    /// Retrying with the same key applies the move once.
    #[arg(long)]
    idempotency_key: Option<String>,
    #[arg(long, env = "VBRIDGE_CONFIG")]
    config: Option<PathBuf>,
}

pub enum HumanMove {
    Decide(vbridge_proto::ReviewDecision),
    Override(vbridge_proto::OverrideRequest),
}

pub async fn run(command: ReviewCommand) -> anyhow::Result<()> {
    match command {
        ReviewCommand::List { queue, overdue, reason_code, limit, cursor, json } => {
            let filter = queue::Filter { queue, overdue: overdue.then_some(true), reason_code };
            list(filter, limit, cursor, json).await
        }
        ReviewCommand::Decide { candidate, application, decision, reason_code, note, who } => {
            let d = vbridge_proto::ReviewDecision { decision, reason_code, note, ..Default::default() };
            human_move(&candidate, &application, who, HumanMove::Decide(d)).await
        }
    }
}

async fn list(filter: queue::Filter, limit: u32, cursor: Option<String>, json: bool) -> anyhow::Result<()> {
    let after = cursor.as_deref().map(queue::Cursor::parse).transpose().map_err(anyhow::Error::msg)?;
    let limit = limit.clamp(1, queue::MAX_PAGE);
    let store = vbridge::config::open_store(&vbridge::config::database_url_from_env()).await?;
    let page = vbridge::review::list(store.as_ref(), &filter, after.as_ref(), limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<24} {:<14} {:<25} {:>9}  {:<28} FLAGS",
        "CANDIDATE", "APPLICATION", "QUEUE", "DUE", "LEFT", "REASON CODES"
    );
    for i in &page.items {
        let left = if i.overdue {
            format!("OVERDUE{}", if i.escalations > 0 { format!("x{}", i.escalations) } else { String::new() })
        } else {
            format!("{}m", i.seconds_left / 60)
        };
        println!(
            "{:<24} {:<24} {:<14} {:<25} {:>9}  {:<28} {}",
            i.candidate_id,
            i.application_id,
            i.queue,
            i.due_at,
            left,
            i.reason_codes.join(","),
            i.flags.join(",")
        );
    }
    if let Some(next) = page.next {
        eprintln!("more: --cursor {next}");
    }
    Ok(())
}

/// A human move from the CLI: the same update the API sends, with the
/// actor given by `--actor`.
pub async fn human_move(candidate: &str, application: &str, who: Who, m: HumanMove) -> anyhow::Result<()> {
    use vbridge::temporal::human::{self, Verification};
    // The CLI needs Temporal, the store and the policy, not the webhook secrets.
    let cfg = Config::load_for_tools(who.config.as_deref())?;
    let v = Verification {
        candidate_id: vbridge_core::domain::CandidateId::parse(candidate)?,
        application_id: vbridge_core::domain::ApplicationId::parse(application)?,
    };
    let store = vbridge::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let request_id = who.idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let trace_id = vbridge_core::domain::TraceId::new_random().as_str().to_owned();
    let view = match m {
        HumanMove::Decide(mut d) => {
            (d.actor, d.request_id, d.trace_id) = (who.actor, request_id, trace_id);
            human::decide(store.as_ref(), &fw, &v, d).await?
        }
        HumanMove::Override(mut o) => {
            (o.actor, o.request_id, o.trace_id) = (who.actor, request_id, trace_id);
            human::override_state(store.as_ref(), &fw, &v, o).await?
        }
    };
    println!("{}", serde_json::json!({ "state": view.state, "ats_sync": view.ats_sync, "review": view.review }));
    Ok(())
}
