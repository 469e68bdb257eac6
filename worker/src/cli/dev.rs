//! The devtools commands (feature `devtools`): `dev`, `sandbox-ats`,
//! `simulate`; `bench` goes straight to `devtools::bench`.

use std::io::Write;
use std::path::PathBuf;
use vbridge::devtools::providers::{DEV_VERIFF_API_KEY, Signer, dev_secret, secret_var};
use vbridge::devtools::{simulate, stack};
use vbridge_core::intake::providers::ProviderKind;

pub async fn dev(
    config: Option<PathBuf>,
    temporal_port: u16,
    ui_port: u16,
    ats_port: u16,
    ats: String,
) -> anyhow::Result<()> {
    stack::run(stack::DevOptions { config, temporal_port, ui_port, ats_port, ats }).await
}

pub async fn sandbox(listen: &str) -> anyhow::Result<()> {
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

/// Signed with `--secret`, else the first of VBRIDGE_WEBHOOK_SECRETS, else
/// the dev secret.
pub async fn simulate(url: String, secret: Option<String>, candidates: usize) -> anyhow::Result<()> {
    let secret = secret
        .or_else(|| {
            std::env::var("VBRIDGE_WEBHOOK_SECRETS").ok().and_then(|s| s.split(',').next().map(|s| s.trim().to_owned()))
        })
        .unwrap_or_else(|| vbridge::config::DEV_SECRET.to_owned());
    let run_id = chrono::Utc::now().format("%H%M%S").to_string();
    simulate::run(simulate::SimulateOptions { url, secret, candidates, run_id }).await.map(|_| ())
}

/// `--provider`'s value.
pub fn provider_kind(s: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(s).ok_or_else(|| format!("\"{s}\": persona, onfido, veriff or sumsub"))
}

/// The first of a comma-separated setting.
fn first_of(var: &str) -> Option<String> {
    let v = std::env::var(var).ok()?;
    v.split(',').next().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Signed with `--secret`, else the first of the provider's secrets setting,
/// else the dev secret that `vbridge dev` configures.
pub async fn simulate_provider(
    url: String,
    kind: ProviderKind,
    secret: Option<String>,
    api_key: Option<String>,
    candidates: usize,
) -> anyhow::Result<()> {
    let secret = secret.or_else(|| first_of(secret_var(kind))).unwrap_or_else(|| dev_secret(kind).to_owned());
    let api_key = api_key
        .or_else(|| std::env::var("VBRIDGE_VERIFF_API_KEY").ok())
        .unwrap_or_else(|| DEV_VERIFF_API_KEY.to_owned());
    let run_id = chrono::Utc::now().format("%H%M%S").to_string();
    let signer = Signer::new(kind, &secret, &api_key);
    simulate::run_provider(simulate::ProviderOptions { url, signer, candidates, run_id }).await.map(|_| ())
}
