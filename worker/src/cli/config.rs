//! `config show`: the configuration `serve` would use, every secret redacted.

use clap::Subcommand;
use std::path::PathBuf;
use vbridge::config::Config;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration as JSON (secrets redacted).
    Show {
        #[arg(long, env = "VBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub fn run(command: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Show { config } = command;
    let cfg = Config::load(config.as_deref(), false)?;
    println!("{}", serde_json::to_string_pretty(&vbridge::config::redacted(&cfg)).unwrap_or_default());
    Ok(())
}
