//! `ats check`: the connector's credentials and field map against the live ATS.

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use vbridge::config::Config;

#[derive(Subcommand)]
pub enum AtsCommand {
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

pub async fn run(command: AtsCommand) -> ExitCode {
    let AtsCommand::Check { config, json } = command;
    check(config, json).await
}

async fn check(config: Option<PathBuf>, json: bool) -> ExitCode {
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
