//! The real providers' settings (docs/contract.md §7, docs/providers.md):
//! each provider's secrets (comma-separated for rotation, each also
//! `_FILE`), and the table that maps their reason labels onto the policy's
//! reason codes (`VBRIDGE_PROVIDER_REASON_MAP`, a TOML file).

use super::{ConfigError, Settings};
use crate::intake::providers::Providers;
use crate::intake::signature::Secret;
use std::path::Path;
use vbridge_activities::Redacted;
use vbridge_core::Policy;
use vbridge_core::intake::providers::{
    Adapter, ProviderKind, ReasonMap, onfido::Onfido, persona::Persona, sumsub::Sumsub, veriff::Veriff,
};

/// The secrets of one setting, raw (a provider's secret is its bytes as written).
pub(super) fn secrets(name: &'static str, list: &Option<Vec<Redacted>>) -> Result<Option<Vec<Secret>>, ConfigError> {
    let Some(list) = list else { return Ok(None) };
    let secrets = list
        .iter()
        .enumerate()
        .map(|(i, r)| Secret::raw(&r.0, i + 1))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Invalid { name, problem: e.to_string() })?;
    Ok((!secrets.is_empty()).then_some(secrets))
}

/// The configured providers: a provider without secrets has no route (404).
pub fn providers(s: &Settings, policy: &Policy) -> Result<Providers, ConfigError> {
    let mut adapters: Vec<Box<dyn Adapter>> = vec![];
    if let Some(secrets) = secrets("VBRIDGE_PERSONA_WEBHOOK_SECRETS", &s.persona_webhook_secrets)? {
        adapters.push(Box::new(Persona { secrets }));
    }
    if let Some(tokens) = secrets("VBRIDGE_ONFIDO_WEBHOOK_TOKENS", &s.onfido_webhook_tokens)? {
        adapters.push(Box::new(Onfido { tokens }));
    }
    let veriff_key = s.veriff_api_key.as_ref().map(|k| k.0.trim().to_owned()).filter(|k| !k.is_empty());
    match (secrets("VBRIDGE_VERIFF_SHARED_SECRETS", &s.veriff_shared_secrets)?, veriff_key) {
        (Some(secrets), Some(api_key)) => adapters.push(Box::new(Veriff { secrets, api_key })),
        (None, None) => {}
        (Some(_), None) => {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_VERIFF_API_KEY",
                problem: "VBRIDGE_VERIFF_SHARED_SECRETS is set: Veriff's X-AUTH-CLIENT is checked against the API key"
                    .into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_VERIFF_SHARED_SECRETS",
                problem: "VBRIDGE_VERIFF_API_KEY is set, but no shared secret to check Veriff's signatures".into(),
            });
        }
    }
    if let Some(secrets) = secrets("VBRIDGE_SUMSUB_WEBHOOK_SECRETS", &s.sumsub_webhook_secrets)? {
        adapters.push(Box::new(Sumsub { secrets }));
    }
    let reasons = match &s.provider_reason_map {
        Some(path) => reason_map(path, policy)?,
        None => ReasonMap::default(),
    };
    let declared = match &s.custom_providers {
        Some(path) => super::custom::declared(path, super::custom::env_secret)?,
        None => vec![],
    };
    Ok(Providers::new(adapters, reasons).with_declared(declared))
}

const REASON_MAP: &str = "VBRIDGE_PROVIDER_REASON_MAP";

/// Read the reason table: one TOML table per provider, each label a key and
/// its policy reason code the value:
///
/// ```toml
/// [sumsub]
/// FORGERY = "document-fraud"
/// [veriff]
/// "102" = "document-fraud"
/// ```
///
/// Every code must be one of the policy's `requiredReasonCodes`; errors name
/// the file and the key.
pub fn reason_map(path: &Path, policy: &Policy) -> Result<ReasonMap, ConfigError> {
    let problem = |p: String| ConfigError::Invalid { name: REASON_MAP, problem: format!("{}: {p}", path.display()) };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    parse_reason_map(&text, policy).map_err(problem)
}

fn parse_reason_map(text: &str, policy: &Policy) -> Result<ReasonMap, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_owned())?;
    let allowed = policy.review_reason_codes();
    let mut map = ReasonMap::default();
    for (provider, labels) in table {
        let kind = ProviderKind::parse(&provider)
            .ok_or_else(|| format!("{provider}: not a provider (persona, onfido, veriff, sumsub)"))?;
        let labels = labels.as_table().ok_or_else(|| format!("{provider}: must be a table of label = \"code\""))?;
        for (label, code) in labels {
            let code = code.as_str().ok_or_else(|| format!("{provider}.{label}: must be a string (a reason code)"))?;
            if !allowed.iter().any(|c| c == code) {
                return Err(format!(
                    "{provider}.{label}: \"{code}\" is not one of the policy's requiredReasonCodes ({})",
                    allowed.join(", ")
                ));
            }
            map.0.insert((kind, label.clone()), code.to_owned());
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_map_names_the_bad_key() {
        let policy = Policy::parse(vbridge_core::DEFAULT_POLICY_YAML).unwrap();
        let code = policy.review_reason_codes()[0].clone();
        let ok =
            parse_reason_map(&format!("[sumsub]\nFORGERY = \"{code}\"\n[veriff]\n\"102\" = \"{code}\"\n"), &policy)
                .unwrap();
        assert_eq!(ok.code(ProviderKind::Sumsub, "FORGERY"), Some(code.as_str()));
        assert_eq!(ok.code(ProviderKind::Veriff, "102"), Some(code.as_str()));
        assert_eq!(ok.code(ProviderKind::Persona, "FORGERY"), None);
        let cases = [
            ("[acme]\nX = \"a\"\n", "acme: not a provider"),
            ("[sumsub]\nFORGERY = \"made-up\"\n", "sumsub.FORGERY: \"made-up\" is not one of"),
            ("[sumsub]\nFORGERY = 3\n", "sumsub.FORGERY: must be a string"),
            ("sumsub = 1\n", "sumsub: must be a table"),
        ];
        for (text, want) in cases {
            let e = parse_reason_map(text, &policy).unwrap_err();
            assert!(e.starts_with(want), "{text}: {e}");
        }
    }
}
