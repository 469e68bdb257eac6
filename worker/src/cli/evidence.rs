//! `evidence export|verify|keygen|public-key` (docs/evidence.md): a
//! candidate's signed evidence pack out of the store, and its check, which
//! needs the file and the bridge's public key and nothing else.

use super::exit_code;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vbridge::config::database_url_from_env;
use vbridge_core::evidence::{EvidenceKey, PublicKey, verify};

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Export a candidate's signed evidence pack (JSON, or the printable
    /// HTML view); stdout without --output. Needs VBRIDGE_EVIDENCE_KEY.
    Export {
        #[arg(long)]
        candidate: String,
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long)]
        html: bool,
        /// Who exports it (recorded in the pack).
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// Check a pack offline (no store, no network); each problem is named by
    /// its chain and position. Exit 0 verified, 1 not, 2 unreadable input.
    Verify {
        file: PathBuf,
        /// The bridge's public key: base64, or a file holding it or the
        /// JSON the bridge serves at /.well-known/vbridge-evidence-key.
        /// Without it the pack is checked against the key it names, which
        /// proves nothing about who signed it.
        #[arg(long)]
        public_key: Option<String>,
        /// Also recompute keyed links (hex audit keys, as VBRIDGE_AUDIT_KEY),
        /// when the checker holds them.
        #[arg(long)]
        audit_key: Option<String>,
    },
    /// Make a new evidence key: prints the seed to keep as
    /// VBRIDGE_EVIDENCE_KEY (a secret) and the public half to publish.
    Keygen,
    /// Print the configured key's public half (the document to publish).
    PublicKey,
}

pub async fn run(command: EvidenceCommand) -> ExitCode {
    match command {
        EvidenceCommand::Export { candidate, output, html, actor } => {
            exit_code(export(&candidate, output.as_deref(), html, &actor).await)
        }
        EvidenceCommand::Verify { file, public_key, audit_key } => {
            check(&file, public_key.as_deref(), audit_key.as_deref())
        }
        EvidenceCommand::Keygen => exit_code(keygen()),
        EvidenceCommand::PublicKey => exit_code(configured_key().map(|k| {
            println!("{}", serde_json::to_string_pretty(&k.public().document()).unwrap_or_default());
        })),
    }
}

fn configured_key() -> anyhow::Result<EvidenceKey> {
    vbridge::config::evidence_key_from_env()?
        .ok_or_else(|| anyhow::anyhow!("VBRIDGE_EVIDENCE_KEY is not set (`vbridge evidence keygen` makes one)"))
}

async fn export(candidate: &str, output: Option<&Path>, html: bool, actor: &str) -> anyhow::Result<()> {
    vbridge_core::domain::CandidateId::parse(candidate)?;
    let key = configured_key()?;
    let policy = super::audit::policy_from_env()?;
    let store = vbridge::config::open_store(&database_url_from_env()).await?;
    let pack = vbridge::audit::evidence::export(store.as_ref(), &policy, Some(&key), candidate, actor).await?;
    let text = if html { vbridge::audit::evidence::to_html(&pack, &key) } else { serde_json::to_string_pretty(&pack)? };
    let records: usize = pack.chains.iter().map(|c| c.records.len()).sum();
    match output {
        Some(path) => std::fs::write(path, text)?,
        None => println!("{text}"),
    }
    eprintln!(
        "evidence export: {records} records in {} chain(s), signed by evidence key {}",
        pack.chains.len(),
        pack.signature.key_id
    );
    Ok(())
}

/// A public key given as text, or as a file holding it.
fn public_key(given: &str) -> anyhow::Result<PublicKey> {
    let text = match std::fs::read_to_string(given) {
        Ok(t) => t,
        Err(_) => given.to_owned(),
    };
    PublicKey::parse(&text).map_err(|e| anyhow::anyhow!("--public-key: {e}"))
}

fn check(file: &Path, trusted: Option<&str>, audit_key: Option<&str>) -> ExitCode {
    let inputs = || -> anyhow::Result<_> {
        let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let trusted = trusted.map(public_key).transpose()?;
        let keys = vbridge_core::chain::Keyring::parse(audit_key.unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("--audit-key: {e}"))?;
        Ok((bytes, trusted, keys))
    };
    let (bytes, trusted, keys) = match inputs() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("evidence verify: {e}");
            return ExitCode::from(2);
        }
    };
    let v = verify(&bytes, trusted.as_ref(), &keys);
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    for p in &v.problems {
        eprintln!("evidence verify: BROKEN at {}: {}", p.place, p.what);
    }
    if !v.ok() {
        eprintln!("evidence verify: {} problem(s); the pack is NOT verified", v.problems.len());
        return ExitCode::FAILURE;
    }
    let whose = if v.trusted_key {
        format!("the trusted key {}", v.key_id)
    } else {
        format!("key {} (not compared with a trusted key: pass --public-key)", v.key_id)
    };
    eprintln!(
        "evidence verify: candidate {}: {} records in {} chain(s), every link intact, signed by {whose}; keyed links: {} recomputed, {} by digest",
        v.candidate_id, v.records, v.chains, v.keyed_links_checked, v.keyed_links_by_digest
    );
    ExitCode::SUCCESS
}

fn keygen() -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("the OS's randomness: {e}"))?;
    let key = EvidenceKey::from_seed(seed);
    println!("VBRIDGE_EVIDENCE_KEY={}", hex::encode(seed));
    println!("{}", serde_json::to_string_pretty(&key.public().document())?);
    eprintln!("evidence keygen: keep the first line secret; publish the JSON (docs/evidence.md)");
    Ok(())
}
