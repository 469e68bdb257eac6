//! A `vbridge serve` child process for the phases that need a bridge of its
//! own: its log apart, its CPU time readable, and a real SIGTERM or SIGKILL.

use super::*;
use std::process::Stdio;

pub(super) struct ServeChild {
    process: tokio::process::Child,
    pub(super) url: String,
    pub(super) log: std::path::PathBuf,
}

impl ServeChild {
    /// `vbridge serve --roles ROLES` with exactly `env` (no `VBRIDGE_CONFIG`
    /// file), stderr to `log`; ready once it says where it listens.
    pub(super) async fn start(
        log: std::path::PathBuf,
        roles: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<ServeChild> {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command.args(["serve", "--roles", roles]).env_remove("VBRIDGE_CONFIG").env("VBRIDGE_LISTEN", "127.0.0.1:0");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut process =
            command.stdout(Stdio::piped()).stderr(std::fs::File::create(&log)?).kill_on_drop(true).spawn()?;
        let mut lines = tokio::io::BufReader::new(process.stdout.take().expect("stdout")).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("vbridge: listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow::anyhow!("the bench's bridge did not start; see {}", log.display()))?;
        Ok(ServeChild { process, url, log })
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// The bridge process's resident memory in MiB (Linux; 0 elsewhere or
    /// once it is gone).
    pub(super) fn rss_mib(&self) -> f64 {
        self.pid().map_or(0.0, |pid| super::burst::rss_mib_of(&format!("/proc/{pid}/status")))
    }

    /// SIGTERM (the bridge finishes what it holds), then wait.
    pub(super) async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.process.id() {
            // SAFETY: a signal to our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        tokio::time::timeout(Duration::from_secs(30), self.process.wait()).await??;
        Ok(())
    }

    /// Its `/metrics` (outside dev mode they need the `ops` role: the
    /// token [`bridge_env`] grants), or nothing.
    pub(super) async fn metrics(&self) -> String {
        let request = reqwest::Client::new().get(format!("{}/metrics", self.url)).bearer_auth(OPS_TOKEN);
        match request.send().await {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub(super) async fn kill(&mut self) {
        let _ = self.process.kill().await;
    }
}

/// The operator token of the bench's bridges (role `ops`).
const OPS_TOKEN: &str = "bench-ops-token";

/// The environment of a bridge on `own`'s parts (store, Temporal, task
/// queue, ATS), signing with the bench's secret, its data in `data_dir`.
pub(super) fn bridge_env(own: &Config, data_dir: &std::path::Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    std::fs::create_dir_all(data_dir)?;
    Ok(vec![
        ("VBRIDGE_WEBHOOK_SECRETS", "bench-secret".to_owned()),
        ("VBRIDGE_DATABASE_URL", own.database_url.clone()),
        ("VBRIDGE_DATA_DIR", data_dir.display().to_string()),
        ("VBRIDGE_TEMPORAL_ADDRESS", own.temporal_address.clone()),
        ("VBRIDGE_TASK_QUEUE", own.task_queue.clone()),
        ("VBRIDGE_ATS_URL", own.ats_url.clone().unwrap_or_default()),
        ("VBRIDGE_API_TOKENS", format!("ops:bench:{}", hex::encode(crate::http::auth::token_hash(OPS_TOKEN)))),
    ])
}
