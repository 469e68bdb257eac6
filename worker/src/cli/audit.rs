//! `audit verify|seal|retention|refused` and `timeline`: the offline audit tools,
//! which need the event store and nothing else.

use super::exit_code;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vbridge::config::database_url_from_env;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every hash chain and each chain's tail against its stored head,
    /// each retention against the policy's floor (and the seal, when given);
    /// report every broken chain; exit 1 if any is.
    Verify {
        /// Also check a seal made earlier by `audit seal`.
        #[arg(long)]
        seal: Option<PathBuf>,
    },
    /// Print a seal of every chain's head (JSON), to keep outside the store.
    Seal,
    /// Remove records older than the policy's eventLog.retentionDays (or
    /// --days, never fewer), keeping every chain verifiable. The bridge runs
    /// it nightly as a Temporal Schedule; this runs it now.
    Retention {
        #[arg(long)]
        days: Option<u32>,
    },
    /// List refused deliveries (the `rejected` chain: one row per delivery
    /// refused for its content, one per window of unauthenticated ones), as
    /// JSON; their ids are unverified claims.
    Refused {
        /// First seen at or after (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// First seen before (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only this reject code (`invalid_signature`, ...).
        #[arg(long)]
        code: Option<String>,
        /// Only deliveries that claimed this candidate.
        #[arg(long)]
        candidate: Option<String>,
        #[arg(long, default_value_t = vbridge::audit::refused_deliveries::DEFAULT_PAGE)]
        limit: u32,
        /// Where a page ended (`next` of the page before).
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TimelineFormat {
    Json,
    Csv,
    Html,
}

pub async fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { seal } => verify(seal.as_deref()).await,
        AuditCommand::Seal => exit_code(seal().await),
        AuditCommand::Retention { days } => exit_code(retention(days).await),
        AuditCommand::Refused { since, until, code, candidate, limit, cursor } => {
            exit_code(refused(since, until, code, candidate, limit, cursor).await)
        }
    }
}

async fn seal() -> anyhow::Result<()> {
    let store = vbridge::config::open_store(&database_url_from_env()).await?;
    let seal = vbridge::audit::seal(store.as_ref()).await?;
    println!("{}", serde_json::to_string_pretty(&seal)?);
    eprintln!("audit seal: {} chain heads, digest {}", seal.heads.len(), seal.digest);
    Ok(())
}

/// Exit 0 when every link holds, 1 at a broken one, 2 when the check
/// itself could not be made.
async fn verify(seal: Option<&Path>) -> ExitCode {
    let url = database_url_from_env();
    let report = async {
        let store = vbridge::config::open_store(&url).await?;
        let floor = vbridge::audit::retention::floor_days(&policy_from_env()?);
        let mut r = store.verify_chains().await?;
        let mut erased: Vec<String> = store.erasures(None).await?.into_iter().map(|e| e.record.candidate_id).collect();
        erased.sort();
        erased.dedup();
        r.erased_candidates = erased;
        for b in vbridge::audit::retention::floor_breaks(store.as_ref(), floor).await? {
            r.push(b);
        }
        // The seal is checked whatever the chains said: a rewrite that a
        // broken chain sits beside must still be named.
        if let Some(path) = seal {
            let text = std::fs::read_to_string(path)?;
            let seal: vbridge::audit::Seal = serde_json::from_str(&text)?;
            if let Some(b) = vbridge::audit::check_seal(store.as_ref(), &seal, floor).await? {
                r.push(b);
            }
        }
        anyhow::Ok(r)
    }
    .await;
    match report {
        Ok(r) => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            if r.broken_chains.is_empty() {
                eprintln!("audit verify: {} records in {} chains, every link intact", r.records, r.streams);
                if !r.erased_candidates.is_empty() {
                    eprintln!(
                        "audit verify: {} candidate(s) erased: their sealed fields no longer open; their chains verify",
                        r.erased_candidates.len()
                    );
                }
                return ExitCode::SUCCESS;
            }
            for b in &r.broken_chains {
                eprintln!(
                    "audit verify: BROKEN at {} (stream {}, position {}): {}",
                    b.record, b.stream, b.chain_pos, b.problem
                );
            }
            eprintln!("audit verify: {} broken chain(s) of {}", r.broken_chains.len(), r.streams);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("audit verify: {e}");
            ExitCode::from(2)
        }
    }
}

/// The policy `serve` would load: `VBRIDGE_POLICY`, else the built-in one.
pub(super) fn policy_from_env() -> anyhow::Result<vbridge_core::Policy> {
    Ok(match std::env::var("VBRIDGE_POLICY") {
        Ok(p) => vbridge_core::Policy::load(Path::new(&p))?,
        Err(_) => vbridge_core::Policy::parse(vbridge_core::DEFAULT_POLICY_YAML)?,
    })
}

async fn retention(days: Option<u32>) -> anyhow::Result<()> {
    let policy = policy_from_env()?;
    let store = vbridge::config::open_store(&database_url_from_env()).await?;
    let report = vbridge::audit::retention::run(store.as_ref(), &policy, days).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn refused(
    since: Option<String>,
    until: Option<String>,
    code: Option<String>,
    candidate_id: Option<String>,
    limit: u32,
    cursor: Option<String>,
) -> anyhow::Result<()> {
    use vbridge::audit::refused_deliveries::{list, store_time};
    use vbridge::store::refused::{Cursor, Filter};
    let time = |t: Option<String>| t.map(|t| store_time(&t)).transpose().map_err(anyhow::Error::msg);
    let filter = Filter { since: time(since)?, until: time(until)?, code, candidate_id };
    let after = cursor.as_deref().map(Cursor::parse).transpose().map_err(anyhow::Error::msg)?;
    let store = vbridge::config::open_store(&database_url_from_env()).await?;
    let page = list(store.as_ref(), &filter, after.as_ref(), limit).await?;
    println!("{}", serde_json::to_string_pretty(&page)?);
    Ok(())
}

pub async fn timeline(candidate: &str, application: Option<&str>, format: TimelineFormat) -> anyhow::Result<()> {
    vbridge_core::domain::CandidateId::parse(candidate)?;
    let store = vbridge::config::open_store(&database_url_from_env()).await?;
    use vbridge::audit::timeline;
    let t = timeline::build(store.as_ref(), candidate, application).await?;
    let out = match format {
        TimelineFormat::Json => serde_json::to_string_pretty(&t)?,
        TimelineFormat::Csv => timeline::to_csv(&t),
        TimelineFormat::Html => timeline::to_html(&t),
    };
    print!("{out}");
    Ok(())
}
