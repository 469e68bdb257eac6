//! `policy check`: validate a policy file, every problem with its key path.

use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file; prints every problem with its key path.
    Check { file: PathBuf },
}

pub fn run(command: PolicyCommand) -> ExitCode {
    let PolicyCommand::Check { file } = command;
    check(&file)
}

/// Exit 0 when valid, 2 when not.
fn check(file: &Path) -> ExitCode {
    match vbridge_core::Policy::load(file) {
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
