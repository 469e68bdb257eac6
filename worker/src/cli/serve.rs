//! `serve`, `migrate` and `probe`: running the bridge and checking on it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vbridge::app::{self, Role};
use vbridge::config::Config;

pub async fn serve(config: Option<PathBuf>, roles: Vec<Role>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref(), false)?;
    let roles: BTreeSet<Role> = if roles.is_empty() { app::all_roles() } else { roles.into_iter().collect() };
    let shutdown = vbridge::shutdown_on_signals();
    app::serve(cfg, roles, shutdown, |addr| {
        println!("vbridge: listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .await
}

pub async fn migrate() -> anyhow::Result<()> {
    vbridge::config::open_store(&vbridge::config::database_url_from_env()).await?;
    eprintln!("migrate: the event store's schema is up to date");
    Ok(())
}

/// Exit 0 on a 2xx, 1 on anything else, 2 when no request could be made.
pub async fn probe(url: &str, timeout_secs: u64) -> ExitCode {
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
