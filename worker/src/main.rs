use clap::{Parser, Subcommand};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vbridge::app::{self, Role};
use vbridge::config::Config;

#[derive(Parser)]
#[command(
    name = "vbridge",
    version,
    about = "Signed verification webhooks → durable Temporal workflows → idempotent ATS writes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the receiver, relay and worker against the configured Temporal, store and ATS.
    Serve {
        /// TOML config file (environment variables win over it).
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
        /// Which roles to run (default: all).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// Apply the event store's migrations and exit (run it as the role that
    /// owns the schema; `serve` can then run as a role that owns nothing).
    Migrate,
    /// Run the whole embedded stack: Temporal dev server, sandbox ATS, and serve.
    #[cfg(feature = "devtools")]
    Dev {
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 7233)]
        temporal_port: u16,
        #[arg(long, default_value_t = 8233)]
        ui_port: u16,
        #[arg(long, default_value_t = 8090)]
        ats_port: u16,
        /// Which ATS API the sandbox speaks to the bridge: generic,
        /// greenhouse (Harvest v3, OAuth), greenhouse-v1, ashby or lever.
        #[arg(long, default_value = "generic")]
        ats: String,
    },
    /// Run only the sandbox ATS (CONTRACT §4), which can be told to fail.
    #[cfg(feature = "devtools")]
    SandboxAts {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
    },
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Export a candidate's timeline from the audit log.
    Timeline {
        #[arg(long)]
        candidate: String,
        #[arg(long)]
        application: Option<String>,
        #[arg(long, value_enum, default_value_t = TimelineFormat::Json)]
        format: TimelineFormat,
    },
    /// The manual-review queue: list it, decide an item (as `--actor`).
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Override a verification's state (an admin's move, as `--actor`),
    /// with a reason code and a note; recorded and written to the ATS.
    Override {
        #[arg(long)]
        candidate: String,
        #[arg(long)]
        application: String,
        /// The state to move to.
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason_code: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        who: Who,
    },
    /// The kill switch (`controls.killSwitch`): turn verification gating on
    /// or off, with a reason; open verifications get the ATS banner.
    Gating {
        #[arg(value_parser = ["on", "off"])]
        state: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        actor: String,
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Hold one verification's ATS writes (or every open one a visibility
    /// query names, or all); events are still taken and recorded.
    Pause(PauseArgs),
    /// Let the writes go again: each paused verification writes its latest
    /// state once.
    Resume(PauseArgs),
    /// Reconciliation (diff-and-heal): what the bridge wrote against what
    /// the ATS holds.
    Reconcile {
        #[command(subcommand)]
        command: ReconcileCommand,
    },
    /// Dead letters: ATS writes refused for good.
    Writes {
        #[command(subcommand)]
        command: WritesCommand,
    },
    /// The ATS connector: check its credentials and field map against the
    /// live ATS.
    Ats {
        #[command(subcommand)]
        command: AtsCommand,
    },
    /// GET a URL and exit 0 on a 2xx (a container health check: the image
    /// has no curl). `vbridge probe http://127.0.0.1:8080/readyz`
    Probe {
        url: String,
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Print the configuration `serve` would use, every secret redacted.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Send signed sample traffic to a running bridge and print a summary.
    #[cfg(feature = "devtools")]
    Simulate {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Signing secret (default: the first of VBRIDGE_WEBHOOK_SECRETS, else the dev secret).
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, default_value_t = 8)]
        candidates: usize,
    },
    /// Measure the spine (ack throughput and latency, bare signal-with-start,
    /// duplicates, a flood, the outbox, end to end, a burst and its bare
    /// ceiling) in one run, and print the ratios.
    #[cfg(feature = "devtools")]
    Bench(vbridge::devtools::bench::BenchOptions),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every hash chain and each chain's tail against its stored head;
    /// report the first broken link; exit 1 if one is.
    Verify {
        /// Also check a seal made earlier by `audit seal`.
        #[arg(long)]
        seal: Option<PathBuf>,
    },
    /// Print a seal of every chain's head (JSON), to keep outside the store.
    Seal,
    /// Remove records older than the policy's eventLog.retentionDays (or
    /// --days), keeping every chain verifiable; run it nightly.
    Retention {
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Open items in due order, overdue ones flagged (reads the store).
    List {
        #[arg(long)]
        queue: Option<String>,
        /// Only overdue items.
        #[arg(long)]
        overdue: bool,
        #[arg(long)]
        reason_code: Option<String>,
        #[arg(long, default_value_t = vbridge::review::queue::DEFAULT_PAGE)]
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

#[derive(Subcommand)]
enum AtsCommand {
    /// Do the credentials work, and does the ATS have a field for every
    /// field the bridge writes (through the field map)? Exit 0 when so, 1
    /// when fields are missing, 2 when the ATS refused or did not answer.
    Check {
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// The effective configuration as JSON (secrets redacted).
    Show {
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReconcileCommand {
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
enum WritesCommand {
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
struct PauseArgs {
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

/// Who makes a human move from the CLI, and its idempotency.
#[derive(clap::Args)]
struct Who {
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum TimelineFormat {
    Json,
    Csv,
    Html,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; prints every problem with its key path.
    Check { file: PathBuf },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to the end of main: it flushes buffered traces.
    let _telemetry = vbridge::telemetry::init();
    let result = match cli.command {
        Command::Serve { config, roles } => serve(config, roles).await,
        Command::Migrate => migrate().await,
        #[cfg(feature = "devtools")]
        Command::Dev { config, temporal_port, ui_port, ats_port, ats } => {
            use vbridge::devtools::stack;
            stack::run(stack::DevOptions { config, temporal_port, ui_port, ats_port, ats }).await
        }
        #[cfg(feature = "devtools")]
        Command::SandboxAts { listen } => sandbox(&listen).await,
        Command::Audit { command: AuditCommand::Verify { seal } } => return audit_verify(seal.as_deref()).await,
        Command::Audit { command: AuditCommand::Seal } => audit_seal().await,
        Command::Audit { command: AuditCommand::Retention { days } } => audit_retention(days).await,
        Command::Timeline { candidate, application, format } => {
            timeline(&candidate, application.as_deref(), format).await
        }
        Command::Policy { command: PolicyCommand::Check { file } } => return policy_check(&file),
        Command::Review { command: ReviewCommand::List { queue, overdue, reason_code, limit, cursor, json } } => {
            let filter = vbridge::review::queue::Filter { queue, overdue: overdue.then_some(true), reason_code };
            review_list(filter, limit, cursor, json).await
        }
        Command::Review {
            command: ReviewCommand::Decide { candidate, application, decision, reason_code, note, who },
        } => {
            let d = vbridge_proto::ReviewDecision { decision, reason_code, note, ..Default::default() };
            human_move(&candidate, &application, who, HumanMove::Decide(d)).await
        }
        Command::Ats { command: AtsCommand::Check { config, json } } => return ats_check(config, json).await,
        Command::Probe { url, timeout_secs } => return probe(&url, timeout_secs).await,
        Command::Config { command: ConfigCommand::Show { config } } => {
            let cfg = Config::load(config.as_deref(), false);
            match cfg {
                Ok(cfg) => {
                    println!("{}", serde_json::to_string_pretty(&vbridge::config::redacted(&cfg)).unwrap_or_default());
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Gating { state, reason, actor, config } => gating(state == "on", &reason, &actor, config).await,
        Command::Reconcile { command: ReconcileCommand::Run { dry_run, actor, config } } => {
            reconcile_run(dry_run, &actor, config).await
        }
        Command::Writes { command: WritesCommand::Failed { json } } => writes_failed(json).await,
        Command::Writes { command: WritesCommand::Retry { key, all: _, reason, actor, config } } => {
            writes_retry(key, &reason, &actor, config).await
        }
        Command::Pause(args) => pause(args, true).await,
        Command::Resume(args) => pause(args, false).await,
        Command::Override { candidate, application, to, reason_code, note, who } => {
            let o = vbridge_proto::OverrideRequest { to, reason_code, note, ..Default::default() };
            human_move(&candidate, &application, who, HumanMove::Override(o)).await
        }
        #[cfg(feature = "devtools")]
        Command::Bench(o) => vbridge::devtools::bench::run(o).await,
        #[cfg(feature = "devtools")]
        Command::Simulate { url, secret, candidates } => {
            let secret = secret
                .or_else(|| {
                    std::env::var("VBRIDGE_WEBHOOK_SECRETS")
                        .ok()
                        .and_then(|s| s.split(',').next().map(|s| s.trim().to_owned()))
                })
                .unwrap_or_else(|| vbridge::config::DEV_SECRET.to_owned());
            let run_id = chrono::Utc::now().format("%H%M%S").to_string();
            use vbridge::devtools::simulate;
            simulate::run(simulate::SimulateOptions { url, secret, candidates, run_id }).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<PathBuf>, roles: Vec<Role>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref(), false)?;
    let roles: BTreeSet<Role> = if roles.is_empty() { app::all_roles() } else { roles.into_iter().collect() };
    let shutdown = vbridge::shutdown_on_signals();
    app::serve(cfg, roles, shutdown, |addr| {
        println!("vbridge: listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .await
}

#[cfg(feature = "devtools")]
async fn sandbox(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("vbridge sandbox ATS: listening on http://{}", listener.local_addr()?);
    let _ = std::io::stdout().flush();
    let mut rx = vbridge::shutdown_on_signals();
    vbridge::devtools::sandbox::serve(listener, async move {
        let _ = rx.wait_for(|v| *v).await;
    })
    .await?;
    Ok(())
}

async fn probe(url: &str, timeout_secs: u64) -> ExitCode {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(timeout_secs.max(1))).build();
    match client.map(|c| c.get(url)) {
        Ok(req) => match req.send().await {
            Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
            Ok(r) => {
                eprintln!("probe {url}: HTTP {}", r.status());
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("probe {url}: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::from(2)
        }
    }
}

async fn ats_check(config: Option<PathBuf>, json: bool) -> ExitCode {
    let cfg = match Config::load(config.as_deref(), false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ats check: {e}");
            return ExitCode::from(2);
        }
    };
    let fields: Vec<String> = vbridge::config::written_fields(&cfg.policy).into_iter().collect();
    let kind = cfg.ats_kind.name();
    match cfg.ats_config().connector().check(&fields).await {
        Ok(report) => {
            if json {
                println!("{}", serde_json::json!({"kind": kind, "ok": report.missing.is_empty(), "report": report}));
            } else {
                println!("ats check ({kind}): {}", report.credentials);
                if let Some(note) = &report.note {
                    println!("  {note}");
                }
                for f in &fields {
                    let missing = report.missing.iter().any(|m| m == f || m.starts_with(&format!("{f} ")));
                    let mapped = cfg.ats_field_map.0.get(f).map(|k| format!(" → {k}")).unwrap_or_default();
                    let mark = if report.note.is_some() {
                        "-"
                    } else if missing {
                        "MISSING"
                    } else {
                        "ok"
                    };
                    println!("  {mark:7} {f}{mapped}");
                }
            }
            if report.missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({"kind": kind, "ok": false, "error": e}));
            } else {
                eprintln!("ats check ({kind}): {e}");
            }
            ExitCode::from(2)
        }
    }
}

fn policy_check(file: &std::path::Path) -> ExitCode {
    match vbridge_workflows::Policy::load(file) {
        Ok(p) => {
            println!("{}: valid (policyVersion {}, sha256 {})", file.display(), p.version(), p.sha256());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: invalid policy", file.display());
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

async fn migrate() -> anyhow::Result<()> {
    vbridge::store::open(&vbridge::config::database_url_from_env()).await?;
    eprintln!("migrate: the event store's schema is up to date");
    Ok(())
}

async fn audit_seal() -> anyhow::Result<()> {
    let store = vbridge::store::open(&vbridge::config::database_url_from_env()).await?;
    let seal = vbridge::audit::seal(store.as_ref()).await?;
    println!("{}", serde_json::to_string_pretty(&seal)?);
    eprintln!("audit seal: {} chain heads, digest {}", seal.heads.len(), seal.digest);
    Ok(())
}

async fn audit_verify(seal: Option<&std::path::Path>) -> ExitCode {
    let url = vbridge::config::database_url_from_env();
    let report = async {
        let store = vbridge::store::open(&url).await?;
        let mut r = store.verify_chains().await?;
        if r.broken.is_none()
            && let Some(path) = seal
        {
            let text = std::fs::read_to_string(path)?;
            let seal: vbridge::audit::Seal = serde_json::from_str(&text)?;
            r.broken = vbridge::audit::check_seal(store.as_ref(), &seal).await?;
        }
        anyhow::Ok(r)
    }
    .await;
    match report {
        Ok(r) => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            match &r.broken {
                None => {
                    eprintln!("audit verify: {} records in {} chains, every link intact", r.records, r.streams);
                    ExitCode::SUCCESS
                }
                Some(b) => {
                    eprintln!(
                        "audit verify: BROKEN at {} (stream {}, position {}): {}",
                        b.record, b.stream, b.chain_pos, b.problem
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("audit verify: {e}");
            ExitCode::from(2)
        }
    }
}

async fn timeline(candidate: &str, application: Option<&str>, format: TimelineFormat) -> anyhow::Result<()> {
    vbridge_workflows::domain::CandidateId::parse(candidate)?;
    let store = vbridge::store::open(&vbridge::config::database_url_from_env()).await?;
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

async fn review_list(
    filter: vbridge::review::queue::Filter,
    limit: u32,
    cursor: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let after = cursor.as_deref().map(vbridge::review::queue::Cursor::parse).transpose().map_err(anyhow::Error::msg)?;
    let limit = limit.clamp(1, vbridge::review::queue::MAX_PAGE);
    let store = vbridge::store::open(&vbridge::config::database_url_from_env()).await?;
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

enum HumanMove {
    Decide(vbridge_proto::ReviewDecision),
    Override(vbridge_proto::OverrideRequest),
}

/// A human move from the CLI: the same update the API sends, with the
/// actor given by `--actor`.
async fn human_move(candidate: &str, application: &str, who: Who, m: HumanMove) -> anyhow::Result<()> {
    use vbridge::temporal::human::{self, Verification};
    // The CLI needs Temporal, the store and the policy, not the webhook secrets.
    let cfg = Config::load_for_tools(who.config.as_deref())?;
    let v = Verification {
        candidate_id: vbridge_workflows::domain::CandidateId::parse(candidate)?,
        application_id: vbridge_workflows::domain::ApplicationId::parse(application)?,
    };
    let store = vbridge::store::open(&cfg.database_url).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let request_id = who.idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let trace_id = vbridge_workflows::domain::TraceId::new_random().as_str().to_owned();
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

/// What the operator CLI reaches Temporal with: the configuration's, and
/// the kill switch's banner as stored.
async fn tools_forwarder(
    cfg: &Config,
    store: &dyn vbridge::store::EventStore,
) -> anyhow::Result<vbridge::temporal::forward::Forwarder> {
    let client = vbridge::temporal::connect(&cfg.temporal_address, &cfg.temporal_namespace).await?;
    let fw = vbridge::temporal::forward::Forwarder {
        client,
        task_queue: cfg.task_queue.clone(),
        policy: std::sync::Arc::new(cfg.policy.clone()),
        tuning: cfg.tuning,
        public_url: cfg.public_url.clone(),
        banner: Default::default(),
    };
    vbridge::controls::refresh_banner(store, &cfg.policy, &fw.banner).await?;
    Ok(fw)
}

async fn gating(enabled: bool, reason: &str, actor: &str, config: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(!reason.trim().is_empty(), "--reason must say why gating changes");
    let cfg = Config::load_for_tools(config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url).await?;
    let trace_id = vbridge_workflows::domain::TraceId::new_random();
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

async fn pause(args: PauseArgs, paused: bool) -> anyhow::Result<()> {
    let cfg = Config::load_for_tools(args.config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let p = vbridge_proto::PauseSignal {
        paused,
        actor: args.actor,
        reason: args.reason,
        trace_id: vbridge_workflows::domain::TraceId::new_random().as_str().to_owned(),
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
                candidate_id: vbridge_workflows::domain::CandidateId::parse(&c)?,
                application_id: vbridge_workflows::domain::ApplicationId::parse(&a)?,
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

async fn reconcile_run(dry_run: bool, actor: &str, config: Option<PathBuf>) -> anyhow::Result<()> {
    use vbridge_workflows::reconcile::Reconciliation;
    let cfg = Config::load_for_tools(config.as_deref())?;
    let store = vbridge::store::open(&cfg.database_url).await?;
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

async fn writes_failed(json: bool) -> anyhow::Result<()> {
    let store = vbridge::store::open(&vbridge::config::database_url_from_env()).await?;
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
    let store = vbridge::store::open(&cfg.database_url).await?;
    let fw = tools_forwarder(&cfg, store.as_ref()).await?;
    let r = vbridge::controls::dead_letters::retry(store.as_ref(), &fw, key.as_deref(), actor, reason).await?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

async fn audit_retention(days: Option<u32>) -> anyhow::Result<()> {
    let days = match days {
        Some(d) => d,
        None => match std::env::var("VBRIDGE_POLICY") {
            Ok(p) => vbridge_workflows::Policy::load(std::path::Path::new(&p))?.raw().event_log.retention_days,
            Err(_) => {
                vbridge_workflows::Policy::parse(vbridge_workflows::DEFAULT_POLICY_YAML)?.raw().event_log.retention_days
            }
        },
    };
    let cutoff =
        (chrono::Utc::now() - chrono::Duration::days(days as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let store = vbridge::store::open(&vbridge::config::database_url_from_env()).await?;
    let report = store.retain(&cutoff).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
