//! The `vbridge` command line: the top-level clap commands here, each area's
//! subcommands and bodies in its own file. An edge room: it may use every
//! room of the library; nothing uses it (it is part of the binary only).

mod ats;
mod audit;
mod config;
mod controls;
#[cfg(feature = "devtools")]
mod dev;
mod evidence;
mod policy;
mod review;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vbridge::app::Role;
use vbridge::config::Config;

#[derive(Parser)]
#[command(
    name = "vbridge",
    version,
    about = "Signed verification webhooks → durable Temporal workflows → idempotent ATS writes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// The sandbox's SMTP sink, the mailbox the bridge mails in dev.
        #[arg(long, default_value_t = 2525)]
        smtp_port: u16,
    },
    /// Run only the sandbox ATS (docs/contract.md §4), which can be told to fail.
    #[cfg(feature = "devtools")]
    SandboxAts {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
    },
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Evidence packs: export a candidate's signed pack, check one offline.
    Evidence {
        #[command(subcommand)]
        command: evidence::EvidenceCommand,
    },
    /// Export a candidate's timeline from the audit log.
    Timeline {
        #[arg(long)]
        candidate: String,
        #[arg(long)]
        application: Option<String>,
        #[arg(long, value_enum, default_value_t = audit::TimelineFormat::Json)]
        format: audit::TimelineFormat,
    },
    /// The manual-review queue: list it, decide an item (as `--actor`).
    Review {
        #[command(subcommand)]
        command: review::ReviewCommand,
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
        who: review::Who,
    },
    /// Erase a candidate's personal data (docs/privacy.md): the key that
    /// seals it is destroyed, the hiring rows deleted, the histories deleted;
    /// every chain still verifies. Prints the report as JSON.
    Erase {
        #[arg(long)]
        candidate: String,
        /// A code (`candidate_request`, `ats_anonymized`, ...).
        #[arg(long)]
        reason_code: String,
        #[arg(long)]
        actor: String,
        #[arg(long, default_value = "")]
        note: String,
        /// Erasing again with the same id appends no second record.
        #[arg(long)]
        request_id: Option<String>,
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
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
    Pause(controls::PauseArgs),
    /// Let the writes go again: each paused verification writes its latest
    /// state once.
    Resume(controls::PauseArgs),
    /// Reconciliation (diff-and-heal): what the bridge wrote against what
    /// the ATS holds.
    Reconcile {
        #[command(subcommand)]
        command: controls::ReconcileCommand,
    },
    /// Dead letters: ATS writes refused for good.
    Writes {
        #[command(subcommand)]
        command: controls::WritesCommand,
    },
    /// The ATS connector: check its credentials and field map against the
    /// live ATS.
    Ats {
        #[command(subcommand)]
        command: ats::AtsCommand,
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
        command: config::ConfigCommand,
    },
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Send signed sample traffic to a running bridge and print a summary.
    #[cfg(feature = "devtools")]
    Simulate {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Signing secret (default: the first of VBRIDGE_WEBHOOK_SECRETS, else
        /// the dev secret; with --provider, the first of that provider's
        /// secrets setting, else its dev secret as `vbridge dev` prints it).
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, default_value_t = 8)]
        candidates: usize,
        /// Send a real provider's shapes, signed as it signs, to its route:
        /// persona, onfido, veriff or sumsub.
        #[arg(long, value_parser = dev::provider_kind)]
        provider: Option<vbridge_core::intake::providers::ProviderKind>,
        /// Veriff's X-AUTH-CLIENT (default: VBRIDGE_VERIFF_API_KEY, else the dev key).
        #[arg(long)]
        api_key: Option<String>,
        #[command(flatten)]
        one: dev::OneCandidate,
    },
    /// Measure the spine (ack throughput and latency, bare signal-with-start,
    /// duplicates, a flood, the outbox, end to end, a burst and its bare
    /// ceiling) in one run, and print the ratios.
    #[cfg(feature = "devtools")]
    Bench(vbridge::devtools::bench::BenchOptions),
}

/// Run a command. The tools with their own exit codes (`audit verify`,
/// `policy check`, `ats check`, `probe`) return them; every other command
/// exits 0, or 1 with its error on stderr.
pub async fn run(command: Command) -> ExitCode {
    exit_code(match command {
        Command::Serve { config, roles } => serve::serve(config, roles).await,
        Command::Migrate => serve::migrate().await,
        #[cfg(feature = "devtools")]
        Command::Dev { config, temporal_port, ui_port, ats_port, ats, smtp_port } => {
            let opts =
                vbridge::devtools::stack::DevOptions { config, temporal_port, ui_port, ats_port, ats, smtp_port };
            dev::dev(opts).await
        }
        #[cfg(feature = "devtools")]
        Command::SandboxAts { listen } => dev::sandbox(&listen).await,
        Command::Audit { command } => return audit::run(command).await,
        Command::Evidence { command } => return evidence::run(command).await,
        Command::Timeline { candidate, application, format } => {
            audit::timeline(&candidate, application.as_deref(), format).await
        }
        Command::Policy { command } => return policy::run(command),
        Command::Review { command } => review::run(command).await,
        Command::Ats { command } => return ats::run(command).await,
        Command::Probe { url, timeout_secs } => return serve::probe(&url, timeout_secs).await,
        Command::Config { command } => config::run(command),
        Command::Erase { candidate, reason_code, actor, note, request_id, config } => {
            controls::erase(&candidate, reason_code, actor, note, request_id, config).await
        }
        Command::Gating { state, reason, actor, config } => {
            controls::gating(state == "on", &reason, &actor, config).await
        }
        Command::Reconcile { command } => controls::reconcile(command).await,
        Command::Writes { command } => controls::writes(command).await,
        Command::Pause(args) => controls::pause(args, true).await,
        Command::Resume(args) => controls::pause(args, false).await,
        Command::Override { candidate, application, to, reason_code, note, who } => {
            controls::override_state(&candidate, &application, to, reason_code, note, who).await
        }
        #[cfg(feature = "devtools")]
        Command::Bench(o) => vbridge::devtools::bench::run(o).await,
        #[cfg(feature = "devtools")]
        Command::Simulate { url, secret, one, .. } if one.ats.is_some() => {
            dev::simulate_stage_change(url, secret, one).await
        }
        #[cfg(feature = "devtools")]
        Command::Simulate { url, secret, provider: Some(kind), api_key, one, .. } if one.check.is_some() => {
            dev::simulate_check(url, kind, secret, api_key, one).await
        }
        #[cfg(feature = "devtools")]
        Command::Simulate { url, secret, candidates, provider: None, .. } => {
            dev::simulate(url, secret, candidates).await
        }
        #[cfg(feature = "devtools")]
        Command::Simulate { url, secret, candidates, provider: Some(kind), api_key, .. } => {
            dev::simulate_provider(url, kind, secret, api_key, candidates).await
        }
    })
}

/// 0, or 1 with the error (and its causes) on stderr.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
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
