//! The ATS connector's settings: which kind, its credentials (each missing
//! one named), and the field map from the policy's names to the ATS's keys.

use super::{ConfigError, Settings, http_url};
use crate::intake::signature::Secret;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use vbridge_activities::connector::{FieldMap, greenhouse};
use vbridge_activities::{AtsKind, GreenhouseConfig, GreenhouseCredentials, Redacted};
use vbridge_core::Policy;

/// The fields the bridge writes: the policy's, and those a routing, a human
/// move or the kill switch add.
pub fn written_fields(policy: &Policy) -> BTreeSet<String> {
    use vbridge_core::domain::EventType;
    use vbridge_workflows::verification as wf;
    let mut names: BTreeSet<String> = [EventType::Started, EventType::Decision]
        .into_iter()
        .filter_map(|et| policy.action(et))
        .flat_map(|a| a.fields.keys().cloned())
        .collect();
    for extra in [
        wf::QUEUE_LINK_FIELD,
        wf::OVERRIDE_ACTOR_FIELD,
        wf::OVERRIDE_REASON_FIELD,
        wf::OVERRIDE_TIMESTAMP_FIELD,
        wf::BANNER_FIELD,
        wf::ACTION_FIELD,
    ] {
        names.insert(extra.to_owned());
    }
    // The hiring loop flags an interview booked while the gate was closed.
    if policy.hiring().is_some() {
        names.insert(wf::BYPASS_FIELD.to_owned());
    }
    names
}

/// Read a field map (JSON or TOML: policy field name → ATS key) and check it:
/// every name is a field the bridge writes, every key is used once.
pub fn field_map(path: &Path, policy: &Policy) -> Result<FieldMap, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid { name: "VBRIDGE_ATS_FIELD_MAP", problem };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text)
        .or_else(|_| toml::from_str(&text))
        .map_err(|e| invalid(format!("{}: not a table of field name = \"ATS key\" ({e})", path.display())))?;
    let written = written_fields(policy);
    let mut targets = BTreeSet::new();
    for (name, key) in &map {
        if !written.contains(name) {
            let known: Vec<&str> = written.iter().map(String::as_str).collect();
            return Err(invalid(format!("\"{name}\" is not a field the bridge writes ({})", known.join(", "))));
        }
        if key.trim().is_empty() {
            return Err(invalid(format!("\"{name}\" maps to an empty key")));
        }
        if !targets.insert(key.as_str()) {
            return Err(invalid(format!("two fields map to the ATS key \"{key}\"")));
        }
    }
    Ok(FieldMap(map))
}

/// A secret the chosen connector cannot do without.
fn required(secret: &Option<Redacted>, name: &'static str, why: &str) -> Result<Redacted, ConfigError> {
    secret.clone().ok_or_else(|| ConfigError::Invalid { name, problem: format!("{why} (or {name}_FILE)") })
}

/// The connector `VBRIDGE_ATS_KIND` names, with its settings.
pub fn ats_kind(s: &Settings) -> Result<AtsKind, ConfigError> {
    Ok(match s.ats_kind.as_str() {
        "generic" => AtsKind::Generic,
        "webhook" => {
            let raw = s.ats_webhook_secret.as_ref().ok_or(ConfigError::Invalid {
                name: "VBRIDGE_ATS_WEBHOOK_SECRET",
                problem: "the webhook connector signs its pushes: set a secret (whsec_<base64> or any text)".into(),
            })?;
            let secret = Secret::parse(&raw.0, 1)
                .map_err(|e| ConfigError::Invalid { name: "VBRIDGE_ATS_WEBHOOK_SECRET", problem: e.to_string() })?;
            AtsKind::Webhook { secret }
        }
        "greenhouse" => greenhouse(s)?,
        "ashby" => AtsKind::Ashby {
            api_url: http_url("VBRIDGE_ASHBY_API_URL", s.ashby_api_url.clone())?,
            api_key: required(&s.ashby_api_key, "VBRIDGE_ASHBY_API_KEY", "the Ashby connector needs an API key")?,
        },
        "lever" => AtsKind::Lever {
            api_url: http_url("VBRIDGE_LEVER_API_URL", s.lever_api_url.clone())?,
            api_key: required(&s.lever_api_key, "VBRIDGE_LEVER_API_KEY", "the Lever connector needs an API key")?,
            perform_as: s.lever_user_id.clone().ok_or(ConfigError::Invalid {
                name: "VBRIDGE_LEVER_USER_ID",
                problem: "the Lever user the bridge acts as (perform_as) is required".into(),
            })?,
            tag_fields: s.lever_tag_fields.clone(),
        },
        other => {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_ATS_KIND",
                problem: format!("unknown kind \"{other}\" (generic, webhook, greenhouse, ashby, lever)"),
            });
        }
    })
}

/// Greenhouse: v3 with OAuth2 client credentials, or v1 with an API key;
/// one of the two, both acting as `VBRIDGE_GREENHOUSE_USER_ID`.
fn greenhouse(s: &Settings) -> Result<AtsKind, ConfigError> {
    let user_id = s.greenhouse_user_id.clone().ok_or(ConfigError::Invalid {
        name: "VBRIDGE_GREENHOUSE_USER_ID",
        problem: "the Greenhouse user the bridge acts as (v3: the token's sub; v1: On-Behalf-Of) is required".into(),
    })?;
    let credentials = match (s.greenhouse_client_id.clone(), s.greenhouse_api_key.clone()) {
        (Some(client_id), None) => GreenhouseCredentials::OAuth {
            client_id,
            client_secret: required(
                &s.greenhouse_client_secret,
                "VBRIDGE_GREENHOUSE_CLIENT_SECRET",
                "Harvest v3 needs the OAuth client secret with VBRIDGE_GREENHOUSE_CLIENT_ID",
            )?,
            user_id,
        },
        (None, Some(api_key)) => GreenhouseCredentials::ApiKey { api_key, on_behalf_of: user_id },
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_GREENHOUSE_API_KEY",
                problem:
                    "set either VBRIDGE_GREENHOUSE_CLIENT_ID (v3, OAuth) or VBRIDGE_GREENHOUSE_API_KEY (v1), not both"
                        .into(),
            });
        }
        (None, None) => {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_GREENHOUSE_CLIENT_ID",
                problem: "set VBRIDGE_GREENHOUSE_CLIENT_ID and _CLIENT_SECRET (Harvest v3, OAuth) or VBRIDGE_GREENHOUSE_API_KEY (v1)".into(),
            });
        }
    };
    Ok(AtsKind::Greenhouse(GreenhouseConfig {
        api_url: http_url("VBRIDGE_GREENHOUSE_API_URL", s.greenhouse_api_url.clone())?,
        auth_url: http_url("VBRIDGE_GREENHOUSE_AUTH_URL", s.greenhouse_auth_url.clone())?,
        // Each version's own window (v1, legacy: 10 s; v3: 30 s).
        rate_window: Duration::from_millis(
            s.greenhouse_rate_window_ms
                .unwrap_or(
                    match credentials {
                        GreenhouseCredentials::OAuth { .. } => greenhouse::RATE_WINDOW,
                        GreenhouseCredentials::ApiKey { .. } => greenhouse::V1_RATE_WINDOW,
                    }
                    .as_millis() as u64,
                )
                .max(100),
        ),
        token_quiet: Duration::from_millis(s.greenhouse_token_quiet_ms),
        credentials,
    }))
}

/// Lever's tag fields are named by the policy's field names; the connector
/// sees the ATS's keys.
pub fn map_tag_fields(kind: &mut AtsKind, policy: &Policy, map: &FieldMap) -> Result<(), ConfigError> {
    if let AtsKind::Lever { tag_fields, .. } = kind {
        let written = written_fields(policy);
        if let Some(bad) = tag_fields.iter().find(|f| !written.contains(*f)) {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_LEVER_TAG_FIELDS",
                problem: format!("\"{bad}\" is not a field the bridge writes"),
            });
        }
        *tag_fields = tag_fields.iter().map(|f| map.0.get(f).cloned().unwrap_or_else(|| f.clone())).collect();
    }
    Ok(())
}
