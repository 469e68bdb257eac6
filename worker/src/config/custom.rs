//! The declared providers (docs/providers.md, "Other providers, declared"):
//! `VBRIDGE_CUSTOM_PROVIDERS` names a TOML file, one table per provider,
//! each parsed into `vbridge_core::intake::providers::custom::Spec` at
//! start-up; its secrets come from `VBRIDGE_CUSTOM_{NAME}_SECRETS` (or its
//! `_FILE`), never from the file, which is configuration to review and keep
//! in the repository. Every error names the file and the key.

use super::ConfigError;
use crate::intake::signature::Secret;
use std::collections::BTreeMap;
use std::path::Path;
use vbridge_core::intake::providers::custom::{Custom, RawSpec, Spec};

const VAR: &str = "VBRIDGE_CUSTOM_PROVIDERS";
/// At most this many declared providers.
pub const MAX_DECLARED: usize = 16;

/// The secrets variable of a declared provider: `checkr` → `custom_checkr_secrets`.
pub fn secrets_key(name: &str) -> String {
    format!("custom_{}_secrets", name.replace('-', "_"))
}

/// The environment variable of a declared provider's secrets:
/// `checkr` → `VBRIDGE_CUSTOM_CHECKR_SECRETS`.
pub fn secrets_var(name: &str) -> String {
    super::sources::var_name(&secrets_key(name))
}

/// Read and check the file; `secret` looks a secrets setting up (its key).
pub fn declared(
    path: &Path,
    secret: impl Fn(&str) -> Result<Option<String>, ConfigError>,
) -> Result<Vec<Custom>, ConfigError> {
    let problem = |p: String| ConfigError::Invalid { name: VAR, problem: format!("{}: {p}", path.display()) };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    let specs = parse(&text).map_err(&problem)?;
    let mut out = vec![];
    for spec in specs {
        let key = secrets_key(spec.name.as_str());
        let var = secrets_var(spec.name.as_str());
        let csv = secret(&key)?.ok_or_else(|| problem(format!("{}: {var} is not set", spec.name.as_str())))?;
        let secrets = Secret::parse_raw_list(&csv)
            .map_err(|e| ConfigError::Invalid { name: VAR, problem: format!("{var}: {e}") })?;
        out.push(Custom { spec, secrets });
    }
    Ok(out)
}

/// A secrets setting from the environment: the variable, else the file its
/// `_FILE` names (container secrets).
pub fn env_secret(key: &str) -> Result<Option<String>, ConfigError> {
    let var = super::sources::var_name(key);
    if let Some(v) = super::sources::var(key) {
        return Ok(Some(v));
    }
    let Some(path) = super::sources::var(&format!("{key}_file")) else { return Ok(None) };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::Env { var: var.clone(), problem: format!("{var}_FILE ({path}): {e}") })?;
    Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty()))
}

fn parse(text: &str) -> Result<Vec<Spec>, String> {
    let raw: BTreeMap<String, toml::Value> = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    if raw.len() > MAX_DECLARED {
        return Err(format!("at most {MAX_DECLARED} providers"));
    }
    raw.into_iter()
        .map(|(name, table)| {
            let raw: RawSpec = table.try_into().map_err(|e: toml::de::Error| format!("{name}: {}", e.message()))?;
            Spec::parse(&name, &raw).map_err(|e| e.to_string())
        })
        .collect()
}

/// Checkr declared for the custom adapter (`VBRIDGE_CUSTOM_PROVIDERS`), as
/// docs/providers.md shows it (the tests use this one copy). (Checkr's report carries
/// no field the customer fills in: the reference is read from its first tag.)
pub const EXAMPLE_CHECKR: &str = r#"
[checkr]
signature_header = "X-Checkr-Signature"
encoding = "hex"
algorithm = "sha256"
reference = "/data/object/tags/0"
check_id = "/data/object/id"
event_key = "/id"
time = "/created_at"
status = "/data/object/result"
event_name = "/type"
statuses = { clear = "verified", consider = "needs_review" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKR: &str = EXAMPLE_CHECKR;

    #[test]
    fn errors_name_the_file_and_the_key() {
        assert_eq!(parse(CHECKR).unwrap()[0].name.as_str(), "checkr");
        let cases = [
            (CHECKR.replace("\"sha256\"", "\"md5\""), "checkr.algorithm:"),
            (CHECKR.replace("clear = \"verified\"", "clear = \"ok\""), "checkr.statuses.clear:"),
            (CHECKR.replace("event_key = \"/id\"\n", ""), "checkr: missing field `event_key`"),
            (CHECKR.replace("event_key", "evnt_key"), "checkr: unknown field `evnt_key`"),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err();
            assert!(e.starts_with(want), "{want}: {e}");
        }
        let dir = std::env::temp_dir().join(format!("vbridge-custom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("providers.toml");
        std::fs::write(&file, CHECKR).unwrap();
        let e = declared(&file, |_| Ok(None)).err().unwrap().to_string();
        assert!(e.contains("providers.toml") && e.contains("VBRIDGE_CUSTOM_CHECKR_SECRETS"), "{e}");
        let ok = declared(&file, |k| Ok((k == "custom_checkr_secrets").then(|| "k1,k2".to_owned()))).unwrap();
        assert_eq!(ok[0].secrets.len(), 2);
    }
}
