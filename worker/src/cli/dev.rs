//! The devtools commands (feature `devtools`): `dev`, `sandbox-ats`,
//! `simulate`; `bench` goes straight to `devtools::bench`.

use std::io::Write;
use vbridge::devtools::providers::{DEV_VERIFF_API_KEY, Outcome, Signer, dev_secret, secret_var};
use vbridge::devtools::{simulate, stack};
use vbridge_core::intake::providers::ProviderKind;

pub async fn dev(opts: stack::DevOptions) -> anyhow::Result<()> {
    stack::run(opts).await
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

/// One candidate of the hiring loop (`vbridge simulate --ats ...`, or
/// `--provider ... --check ...`): the walkthrough of docs/hiring.md.
#[derive(clap::Args, Debug, Clone)]
pub struct OneCandidate {
    /// Send one ATS stage change (greenhouse or ashby), signed with
    /// `--secret`, else the ATS's secret setting, else its dev secret.
    #[arg(long, value_parser = ats_kind)]
    pub ats: Option<vbridge_core::intake::ats::AtsKind>,
    #[arg(long, default_value = "cand-1")]
    pub candidate: String,
    #[arg(long, default_value = "7001")]
    pub application: String,
    #[arg(long, default_value = "candidate@example.org")]
    pub email: String,
    #[arg(long, default_value = "Identity Check")]
    pub stage: String,
    #[arg(long, default_value = "Product Designer")]
    pub role: String,
    #[arg(long, default_value = "Berlin")]
    pub region: String,
    /// With --provider: send one event of that provider about this check
    /// (the session the bridge started; see the invite or the Temporal UI).
    #[arg(long)]
    pub check: Option<String>,
    /// With --check: started, verified, needs_review, failed, retake or expired.
    #[arg(long, default_value = "verified", value_parser = outcome)]
    pub outcome: Outcome,
}

fn ats_kind(s: &str) -> Result<vbridge_core::intake::ats::AtsKind, String> {
    vbridge_core::intake::ats::AtsKind::parse(s).ok_or_else(|| format!("\"{s}\": greenhouse or ashby"))
}

fn outcome(s: &str) -> Result<Outcome, String> {
    Ok(match s {
        "started" => Outcome::Started,
        "verified" => Outcome::Verified,
        "needs_review" => Outcome::NeedsReview,
        "failed" => Outcome::Failed,
        "retake" => Outcome::Retake,
        "expired" => Outcome::Expired,
        _ => return Err(format!("\"{s}\": started, verified, needs_review, failed, retake or expired")),
    })
}

/// `vbridge simulate --ats`: one signed stage change, printed with its answer.
pub async fn simulate_stage_change(url: String, secret: Option<String>, one: OneCandidate) -> anyhow::Result<()> {
    use vbridge::devtools::ats_hooks;
    let kind = one.ats.expect("--ats");
    let secret = secret
        .or_else(|| first_of(ats_hooks::secret_var(kind)))
        .unwrap_or_else(|| ats_hooks::dev_secret(kind).to_owned());
    let key = format!("sim-{}", uuid::Uuid::new_v4().simple());
    let at = chrono::Utc::now().to_rfc3339();
    let m = ats_hooks::Move {
        candidate_id: &one.candidate,
        application_id: &one.application,
        stage: &one.stage,
        role: &one.role,
        region: &one.region,
        email: &one.email,
        key: &key,
        at: &at,
    };
    let body = ats_hooks::stage_change(kind, &m);
    let reply = ats_hooks::send(&reqwest::Client::new(), &url, kind, &secret, &key, &body).await?;
    println!(
        "{} stage change of {}:{} into {:?}: HTTP {} {}",
        kind.as_str(),
        one.candidate,
        one.application,
        one.stage,
        reply.status,
        reply.body
    );
    Ok(())
}

/// `vbridge simulate --provider P --check ID`: one event of the provider
/// about that check (for example the session the bridge started).
pub async fn simulate_check(
    url: String,
    kind: ProviderKind,
    secret: Option<String>,
    api_key: Option<String>,
    one: OneCandidate,
) -> anyhow::Result<()> {
    let secret = secret.or_else(|| first_of(secret_var(kind))).unwrap_or_else(|| dev_secret(kind).to_owned());
    let api_key = api_key
        .or_else(|| std::env::var("VBRIDGE_VERIFF_API_KEY").ok())
        .unwrap_or_else(|| DEV_VERIFF_API_KEY.to_owned());
    let signer = Signer::new(kind, &secret, &api_key);
    let check = one.check.clone().expect("--check");
    let reference = format!("{}:{}", one.candidate, one.application);
    let n = (chrono::Utc::now().timestamp() % 1_000_000) as u32;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let b = vbridge::devtools::providers::body(kind, one.outcome, &reference, &check, n, &at);
    let reply = signer.send(&reqwest::Client::new(), &url, &b).await?;
    println!(
        "{} {:?} for check {check} of {reference}: HTTP {} {}",
        kind.as_str(),
        one.outcome,
        reply.status,
        reply.body
    );
    Ok(())
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
