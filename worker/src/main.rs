//! The `vbridge` binary: parse the command line, start telemetry, run the
//! command (the commands live in `cli/`, by area).

mod cli;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Kept to the end of main: it flushes buffered traces.
    let _telemetry = vbridge::telemetry::init();
    cli::run(cli.command).await
}
