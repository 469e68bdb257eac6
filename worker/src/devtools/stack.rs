//! `vbridge dev`: the whole embedded stack on one machine: the Temporal dev
//! server (persisted under the data dir, UI on :8233), the sandbox ATS, and
//! the receiver, relay and worker.

use crate::app::{self, all_roles};
use crate::config::Config;
use crate::devtools::devserver::{DevServer, DevServerOptions};
use crate::devtools::providers::{DEV_VERIFF_API_KEY, dev_adapter, dev_secret};
use std::net::SocketAddr;
use std::path::PathBuf;
use vbridge_core::intake::ats::AtsKind;
use vbridge_core::intake::providers::ProviderKind;

pub struct DevOptions {
    pub config: Option<PathBuf>,
    pub temporal_port: u16,
    pub ui_port: u16,
    pub ats_port: u16,
    /// The API the sandbox speaks to the bridge (`generic`, `greenhouse`, ...).
    pub ats: String,
    /// The sandbox's SMTP sink (the mailbox), which the bridge mails through
    /// unless VBRIDGE_SMTP_URL is set.
    pub smtp_port: u16,
}

/// The seed of `vbridge dev`'s evidence key (dev only).
pub const DEV_EVIDENCE_SEED: [u8; 32] = [0xde; 32];

pub async fn run(opts: DevOptions) -> anyhow::Result<()> {
    let mut cfg = Config::load(opts.config.as_deref(), true)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let shutdown = crate::shutdown_on_signals();

    println!("vbridge dev: starting the Temporal dev server (data in {})", cfg.data_dir.display());
    let mut temporal = DevServer::start(DevServerOptions {
        port: opts.temporal_port,
        ui_port: Some(opts.ui_port),
        db_file: Some(cfg.data_dir.join("temporal.db")),
        log_file: cfg.data_dir.join("temporal.log"),
    })
    .await?;
    cfg.temporal_address = temporal.address.clone();
    // Every provider route answers in dev: the ones left unconfigured get
    // dev secrets, printed below, that `simulate --provider` signs with.
    let dev_providers: Vec<ProviderKind> = match std::sync::Arc::get_mut(&mut cfg.providers) {
        Some(p) => ProviderKind::ALL.into_iter().filter(|k| p.add_missing(dev_adapter(*k))).collect(),
        None => vec![],
    };

    // The hiring loop answers in dev: the ATS routes get dev secrets, and a
    // policy without the `verification` extension gets the example one.
    let dev_ats: Vec<AtsKind> = match std::sync::Arc::get_mut(&mut cfg.ats_hooks) {
        Some(h) => {
            AtsKind::ALL.into_iter().filter(|k| h.add_missing(crate::devtools::ats_hooks::dev_adapter(*k))).collect()
        }
        None => vec![],
    };
    let example_policy = cfg.policy.hiring().is_none();
    if example_policy {
        let text = format!("{}{}", cfg.policy.text(), vbridge_core::hiring::EXAMPLE_EXTENSION);
        cfg.policy = vbridge_core::Policy::parse(&text)?;
    }

    // Evidence packs export in dev too, signed by a fixed dev key (never a
    // production one: its seed is in this file).
    let dev_evidence = cfg.evidence_key.is_none();
    if dev_evidence {
        cfg.evidence_key = Some(std::sync::Arc::new(vbridge_core::evidence::EvidenceKey::from_seed(DEV_EVIDENCE_SEED)));
    }

    let impersonating = opts.ats != "generic";
    if impersonating && cfg.ats_url.is_some() {
        anyhow::bail!("--ats {} impersonates an ATS in the sandbox: unset VBRIDGE_ATS_URL", opts.ats);
    }
    let sandbox_url = if cfg.ats_url.is_none() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.ats_port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut rx = shutdown.clone();
        // The impersonated ATS knows the fields the bridge writes (under the
        // field map's keys), so `vbridge ats check` passes against it.
        let known = crate::config::written_fields(&cfg.policy)
            .into_iter()
            .map(|f| cfg.ats_field_map.0.get(&f).cloned().unwrap_or(f))
            .collect();
        let smtp = tokio::net::TcpListener::bind(("127.0.0.1", opts.smtp_port)).await?;
        let smtp_addr = smtp.local_addr()?;
        tokio::spawn(crate::devtools::sandbox::serve_with_mail(listener, Some(smtp), Some(known), async move {
            let _ = rx.wait_for(|v| *v).await;
        }));
        cfg.ats_url = Some(url.clone());
        // Verifications start at the sandbox's Veriff, and mail goes to its
        // mailbox, unless configured otherwise.
        if cfg.hiring.start.is_none() {
            cfg.hiring.start = Some(vbridge_activities::hiring::start::ProviderApi {
                provider: vbridge_activities::hiring::start::StartProvider::Veriff,
                url: url.clone(),
                key: crate::devtools::sandbox::impersonate::API_KEY.into(),
            });
        }
        if cfg.hiring.mail.is_none() {
            cfg.hiring.mail = Some((format!("smtp://{smtp_addr}"), "vbridge dev <hiring@localhost>".into()));
        }
        if impersonating {
            cfg.ats_kind = crate::devtools::sandbox::impersonate::connector_for(&opts.ats, &url).ok_or_else(|| {
                anyhow::anyhow!("--ats {}: generic, greenhouse, greenhouse-v1, ashby or lever", opts.ats)
            })?;
        }
        Some(url)
    } else {
        None
    };

    let ui = temporal.ui_url.clone().unwrap_or_default();
    let ats = cfg.ats_url.clone().unwrap_or_default();
    let using_dev_secret = std::env::var("VBRIDGE_WEBHOOK_SECRETS").is_err();
    let declared: Vec<(String, String)> = (cfg.providers.declared_names().into_iter())
        .map(|n| (n.to_owned(), crate::config::declared_secrets_var(n)))
        .collect();
    let result = app::serve(cfg, all_roles(), shutdown, move |addr: SocketAddr| {
        println!("vbridge dev: ready");
        println!("  webhooks     POST http://{addr}/webhooks/verification");
        println!("  metrics      http://{addr}/metrics");
        println!("  readiness    http://{addr}/readyz");
        println!("  Temporal UI  {ui}/namespaces/default/workflows");
        match &sandbox_url {
            Some(u) => println!("  sandbox ATS  {u}/_sandbox/writes (speaking {})", opts.ats),
            None => println!("  ATS          {ats}"),
        }
        if using_dev_secret {
            println!("  signing secret (dev only): {}", crate::config::DEV_SECRET);
        }
        for kind in ProviderKind::ALL {
            let route = format!("POST http://{addr}/webhooks/{}", kind.as_str());
            match (dev_providers.contains(&kind), kind) {
                (false, _) => println!("  {:<12} {route} (configured)", kind.as_str()),
                (true, ProviderKind::Veriff) => println!(
                    "  {:<12} {route} (dev secret {}, X-AUTH-CLIENT {DEV_VERIFF_API_KEY})",
                    kind.as_str(),
                    dev_secret(kind)
                ),
                (true, _) => println!("  {:<12} {route} (dev secret {})", kind.as_str(), dev_secret(kind)),
            }
        }
        for kind in AtsKind::ALL {
            let route = format!("POST http://{addr}/webhooks/ats/{}", kind.as_str());
            match dev_ats.contains(&kind) {
                true => println!("  {:<12} {route} (dev secret {})", kind.as_str(), crate::devtools::ats_hooks::dev_secret(kind)),
                false => println!("  {:<12} {route} (configured)", kind.as_str()),
            }
        }
        if let Some(u) = &sandbox_url {
            println!("  mailbox      {u}/_sandbox/mailbox (the invites the bridge mails)");
            println!("  sessions     {u}/_sandbox/providers/sessions (verifications started at the sandbox's Veriff)");
        }
        if example_policy {
            println!("  hiring loop  the policy has no `verification` extension: the example of docs/hiring.md is used");
        }
        if dev_evidence {
            println!("  evidence     GET http://{addr}/v1/candidates/C/evidence-pack (dev key; public half at /.well-known/vbridge-evidence-key)");
        }
        println!(
            "  start one:   vbridge simulate --url http://{addr} --ats ashby --candidate cand-1 --application 7001 --email you@example.org"
        );
        for (name, var) in &declared {
            println!("  {name:<12} POST http://{addr}/webhooks/custom/{name} (declared; secrets in {var})");
        }
        println!(
            "  send sample traffic: vbridge simulate --url http://{addr} [--provider persona|onfido|veriff|sumsub]"
        );
        println!("Ctrl-C stops everything.");
    })
    .await;
    temporal.stop();
    result
}
