//! Configuration: an optional TOML file, then environment variables (the
//! environment wins), then defaults. Names follow CONTRACT §1.

use crate::http::auth::{Grants, Role};
use crate::intake::signature::Secret;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbridge_proto::Tuning;
use vbridge_workflows::Policy;
use vbridge_workflows::workflow::default_tuning;

/// The file form: every key optional, named like the variables without the prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub policy: Option<PathBuf>,
    pub webhook_secrets: Option<Vec<String>>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub temporal_address: Option<String>,
    pub temporal_namespace: Option<String>,
    pub task_queue: Option<String>,
    pub ats_url: Option<String>,
    pub ats_bearer_token: Option<String>,
    pub api_token: Option<String>,
    pub api_tokens: Option<String>,
    pub metrics_listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub worker_cached_workflows: Option<usize>,
    pub audit_hold_ms: Option<u32>,
    pub quiet_close_ms: Option<u32>,
    pub request_timeout_ms: Option<u64>,
    pub commit_timeout_ms: Option<u64>,
    pub ready_max_relay_lag_ms: Option<u64>,
    pub ats_retry_initial_ms: Option<u32>,
    pub ats_retry_max_ms: Option<u32>,
    pub ats_deferral_ms: Option<u32>,
    pub continue_as_new_after: Option<u32>,
    pub public_url: Option<String>,
    pub escalation_url: Option<String>,
    pub oidc_issuer: Option<String>,
    pub oidc_audience: Option<String>,
    pub oidc_jwks_url: Option<String>,
    pub session_key: Option<String>,
    pub ats_kind: Option<String>,
    pub ats_webhook_secret: Option<String>,
    pub ats_field_map: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0}")]
    Policy(#[from] vbridge_workflows::PolicyError),
    #[error("VBRIDGE_WEBHOOK_SECRETS: {0}")]
    Secret(#[from] crate::intake::signature::SecretError),
    #[error(
        "VBRIDGE_WEBHOOK_SECRETS is not set: vbridge refuses to accept unsigned-by-default webhooks outside dev mode"
    )]
    NoSecrets,
    #[error("VBRIDGE_ATS_URL is not set (the sandbox ATS is only the default in dev mode)")]
    NoAts,
    #[error("{name}: {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error("VBRIDGE_API_TOKENS: {0}")]
    Grants(#[from] crate::http::auth::GrantError),
}

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub policy: Policy,
    pub policy_path: Option<PathBuf>,
    pub secrets: Vec<Secret>,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub temporal_address: String,
    pub temporal_namespace: String,
    pub task_queue: String,
    pub ats_url: Option<String>,
    pub ats_bearer_token: Option<String>,
    /// Who may call the operator API (CONTRACT §5), by token hash.
    pub grants: Grants,
    /// Dev mode: the operator API is open to requests without a credential.
    pub dev: bool,
    /// A separate, open listener for `/metrics`; without it `/metrics` is on
    /// the main listener and needs the `ops` role.
    pub metrics_listen: Option<String>,
    /// Where the Temporal SDK's own Prometheus exporter listens (worker
    /// role; `VBRIDGE_TEMPORAL_METRICS_LISTEN`). `/metrics` includes what
    /// it exports either way; the default port is a free loopback one.
    pub temporal_metrics_listen: std::net::SocketAddr,
    pub max_body_bytes: usize,
    /// Webhook requests in flight at once; the excess is shed with 503.
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    /// A commit not done within this is answered 503 + Retry-After.
    pub commit_timeout: Duration,
    /// `/readyz` fails `relay_lag` past this age of the oldest unforwarded event.
    pub ready_max_relay_lag: Duration,
    pub tuning: Tuning,
    /// Workflows the Temporal worker keeps cached (sticky), so that their
    /// next task is not a replay of their whole history.
    pub worker_cached_workflows: usize,
    /// The base of `reviewer_queue_link` (`VBRIDGE_PUBLIC_URL`; default
    /// `http://{listen}`).
    pub public_url: String,
    /// Where SLA escalations are POSTed (`VBRIDGE_ESCALATION_URL`); none: an
    /// escalation is recorded and counted, not sent.
    pub escalation_url: Option<String>,
    /// OIDC JWTs accepted on the operator API (all three variables, or none).
    pub oidc: Option<crate::http::oidc::OidcConfig>,
    /// Which ATS connector (`VBRIDGE_ATS_KIND`): `generic` (CONTRACT §4) or
    /// `webhook` (a signed push to `VBRIDGE_ATS_URL`, secret
    /// `VBRIDGE_ATS_WEBHOOK_SECRET`). See docs/connectors.md.
    pub ats_kind: vbridge_activities::AtsKind,
    /// Policy field → ATS key (`VBRIDGE_ATS_FIELD_MAP`, a TOML or JSON file).
    pub ats_field_map: vbridge_activities::connector::FieldMap,
    /// Signs console sessions (`VBRIDGE_SESSION_KEY`, 64 hex); random per
    /// process when unset (sessions then end with the process).
    pub session_key: crate::console::session::SessionKey,
}

/// Development-only secret used by `vbridge dev` when none is configured.
pub const DEV_SECRET: &str = "dev-secret-change-me";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A secret's value: the variable itself, else the file `{NAME}_FILE`
/// names (trimmed), as container secrets are mounted. Never logged.
fn secret_env(name: &'static str) -> Result<Option<String>, ConfigError> {
    if let Some(v) = env(name) {
        return Ok(Some(v));
    }
    match env(&format!("{name}_FILE")) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
            .map_err(|e| ConfigError::Invalid { name, problem: format!("{name}_FILE ({path}): {e}") }),
        None => Ok(None),
    }
}

/// The fields the bridge writes: the policy's, and those a routing, a human
/// move or the kill switch add.
pub fn written_fields(policy: &Policy) -> std::collections::BTreeSet<String> {
    use vbridge_workflows::domain::EventType;
    use vbridge_workflows::workflow as wf;
    let mut names: std::collections::BTreeSet<String> = [EventType::Started, EventType::Decision]
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
    ] {
        names.insert(extra.to_owned());
    }
    names
}

/// Read a field map (JSON or TOML: policy field name → ATS key) and check it:
/// every name is a field the bridge writes, every key is used once.
pub fn field_map(path: &Path, policy: &Policy) -> Result<vbridge_activities::connector::FieldMap, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid { name: "VBRIDGE_ATS_FIELD_MAP", problem };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
        .or_else(|_| toml::from_str(&text))
        .map_err(|e| invalid(format!("{}: not a table of field name = \"ATS key\" ({e})", path.display())))?;
    let written = written_fields(policy);
    let mut targets = std::collections::BTreeSet::new();
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
    Ok(vbridge_activities::connector::FieldMap(map))
}

/// The configuration as `vbridge config show` prints it: what `serve` would
/// use, every secret redacted (only whether it is set, and how many).
pub fn redacted(cfg: &Config) -> serde_json::Value {
    let set = |v: bool| if v { "(set, redacted)" } else { "(not set)" };
    let mut db = cfg.database_url.clone();
    if let Some((scheme, rest)) = db.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && userinfo.contains(':')
    {
        let user = userinfo.split(':').next().unwrap_or_default();
        db = format!("{scheme}://{user}:(redacted)@{host}");
    }
    serde_json::json!({
        "listen": cfg.listen,
        "policy": {"path": cfg.policy_path, "version": cfg.policy.version(), "sha256": cfg.policy.sha256()},
        "webhook_secrets": format!("{} secret(s), redacted", cfg.secrets.len()),
        "database_url": db,
        "data_dir": cfg.data_dir,
        "temporal": {"address": cfg.temporal_address, "namespace": cfg.temporal_namespace, "task_queue": cfg.task_queue},
        "ats": {
            "kind": cfg.ats_kind.name(),
            "connector": connector_shown(&cfg.ats_kind),
            "url": cfg.ats_url,
            "bearer_token": set(cfg.ats_bearer_token.is_some()),
            "field_map": cfg.ats_field_map.0,
        },
        "api_credentials": cfg.grants.summary(),
        "oidc": cfg.oidc.as_ref().map(|o| serde_json::json!({"issuer": o.issuer, "audience": o.audience, "jwks_url": o.jwks_url})),
        "public_url": cfg.public_url,
        "escalation_url": cfg.escalation_url,
        "metrics_listen": cfg.metrics_listen,
        "session_key": set(env("VBRIDGE_SESSION_KEY").is_some() || env("VBRIDGE_SESSION_KEY_FILE").is_some()),
        "tuning": cfg.tuning,
    })
}

/// What `config show` says of a connector's own settings: URLs and users,
/// never a key or a secret.
fn connector_shown(kind: &vbridge_activities::AtsKind) -> serde_json::Value {
    use vbridge_activities::{AtsKind, GreenhouseCredentials};
    match kind {
        AtsKind::Generic => serde_json::json!({}),
        AtsKind::Webhook { .. } => serde_json::json!({"secret": "(set, redacted)"}),
        AtsKind::Greenhouse(g) => {
            let creds = match &g.credentials {
                GreenhouseCredentials::OAuth { client_id, user_id, .. } => serde_json::json!({
                    "api": "v3 (OAuth2 client credentials)", "client_id": client_id,
                    "client_secret": "(set, redacted)", "user_id": user_id}),
                GreenhouseCredentials::ApiKey { on_behalf_of, .. } => serde_json::json!({
                    "api": "v1 (Basic, API key)", "api_key": "(set, redacted)", "on_behalf_of": on_behalf_of}),
            };
            serde_json::json!({"api_url": g.api_url, "auth_url": g.auth_url, "credentials": creds,
                "rate_window_ms": g.rate_window.as_millis() as u64})
        }
        AtsKind::Ashby { api_url, .. } => serde_json::json!({"api_url": api_url, "api_key": "(set, redacted)"}),
        AtsKind::Lever { api_url, perform_as, tag_fields, .. } => serde_json::json!({
            "api_url": api_url, "api_key": "(set, redacted)", "perform_as": perform_as, "tag_fields": tag_fields}),
    }
}

/// A base URL from the environment, or the ATS's real host.
fn url_env(name: &'static str, default: &str) -> Result<String, ConfigError> {
    let url = env(name).unwrap_or_else(|| default.to_owned());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid { name, problem: format!("\"{url}\" is not an http(s) URL") });
    }
    Ok(url)
}

/// A secret the chosen connector cannot do without.
fn required_secret(name: &'static str, why: &str) -> Result<vbridge_activities::Redacted, ConfigError> {
    secret_env(name)?
        .map(vbridge_activities::Redacted)
        .ok_or_else(|| ConfigError::Invalid { name, problem: format!("{why} (or {name}_FILE)") })
}

/// Greenhouse: v3 with OAuth2 client credentials, or v1 with an API key;
/// one of the two, both acting as `VBRIDGE_GREENHOUSE_USER_ID`.
fn greenhouse_config() -> Result<vbridge_activities::AtsKind, ConfigError> {
    use vbridge_activities::GreenhouseCredentials;
    use vbridge_activities::connector::greenhouse as gh;
    let user_id = env("VBRIDGE_GREENHOUSE_USER_ID").ok_or(ConfigError::Invalid {
        name: "VBRIDGE_GREENHOUSE_USER_ID",
        problem: "the Greenhouse user the bridge acts as (v3: the token's sub; v1: On-Behalf-Of) is required".into(),
    })?;
    let credentials = match (env("VBRIDGE_GREENHOUSE_CLIENT_ID"), secret_env("VBRIDGE_GREENHOUSE_API_KEY")?) {
        (Some(client_id), None) => GreenhouseCredentials::OAuth {
            client_id,
            client_secret: required_secret(
                "VBRIDGE_GREENHOUSE_CLIENT_SECRET",
                "Harvest v3 needs the OAuth client secret with VBRIDGE_GREENHOUSE_CLIENT_ID",
            )?,
            user_id,
        },
        (None, Some(key)) => {
            GreenhouseCredentials::ApiKey { api_key: vbridge_activities::Redacted(key), on_behalf_of: user_id }
        }
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
    // Each version's own window (v1, legacy: 10 s; v3: 30 s).
    let window = match credentials {
        GreenhouseCredentials::OAuth { .. } => gh::RATE_WINDOW,
        GreenhouseCredentials::ApiKey { .. } => gh::V1_RATE_WINDOW,
    };
    Ok(vbridge_activities::AtsKind::Greenhouse(vbridge_activities::GreenhouseConfig {
        api_url: url_env("VBRIDGE_GREENHOUSE_API_URL", gh::DEFAULT_API_URL)?,
        auth_url: url_env("VBRIDGE_GREENHOUSE_AUTH_URL", gh::DEFAULT_AUTH_URL)?,
        rate_window: Duration::from_millis(
            env_num::<u64>("VBRIDGE_GREENHOUSE_RATE_WINDOW_MS")?.unwrap_or(window.as_millis() as u64).max(100),
        ),
        token_quiet: Duration::from_millis(
            env_num::<u64>("VBRIDGE_GREENHOUSE_TOKEN_QUIET_MS")?.unwrap_or(gh::TOKEN_QUIET.as_millis() as u64),
        ),
        credentials,
    }))
}

fn env_num<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid { name, problem: format!("\"{v}\" is not a number") }),
    }
}

impl Config {
    /// Load from `file` (if any) and the environment. `dev` relaxes what dev
    /// mode may default (secrets, ATS URL).
    pub fn load(file: Option<&Path>, dev: bool) -> Result<Config, ConfigError> {
        let fc: FileConfig = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_owned(), e))?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse(p.to_owned(), e))?
            }
            None => FileConfig::default(),
        };
        let data_dir =
            env("VBRIDGE_DATA_DIR").map(PathBuf::from).or(fc.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        let policy_path = env("VBRIDGE_POLICY").map(PathBuf::from).or(fc.policy);
        let policy = match &policy_path {
            Some(p) => Policy::load(p)?,
            None => Policy::parse(vbridge_workflows::DEFAULT_POLICY_YAML)?,
        };
        let secrets = match secret_env("VBRIDGE_WEBHOOK_SECRETS")? {
            Some(csv) => Secret::parse_list(&csv)?,
            None => match fc.webhook_secrets {
                Some(list) => {
                    list.iter().enumerate().map(|(i, s)| Secret::parse(s, i + 1)).collect::<Result<_, _>>()?
                }
                None => vec![],
            },
        };
        let secrets = if secrets.is_empty() {
            if dev {
                vec![Secret::parse(DEV_SECRET, 1)?]
            } else {
                return Err(ConfigError::NoSecrets);
            }
        } else {
            secrets
        };
        let database_url = secret_env("VBRIDGE_DATABASE_URL")?
            .or(fc.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("vbridge.db").display()));
        let ats_url = env("VBRIDGE_ATS_URL").or(fc.ats_url);
        let d = default_tuning();
        let tuning = Tuning {
            ats_retry_initial_ms: env_num("VBRIDGE_ATS_RETRY_INITIAL_MS")?
                .or(fc.ats_retry_initial_ms)
                .unwrap_or(d.ats_retry_initial_ms),
            ats_retry_max_ms: env_num("VBRIDGE_ATS_RETRY_MAX_MS")?
                .or(fc.ats_retry_max_ms)
                .unwrap_or(d.ats_retry_max_ms),
            deferral_ms: env_num("VBRIDGE_ATS_DEFERRAL_MS")?.or(fc.ats_deferral_ms).unwrap_or(d.deferral_ms),
            continue_as_new_after: env_num("VBRIDGE_CONTINUE_AS_NEW_AFTER")?
                .or(fc.continue_as_new_after)
                .unwrap_or(d.continue_as_new_after),
            audit_hold_ms: env_num("VBRIDGE_AUDIT_HOLD_MS")?.or(fc.audit_hold_ms).unwrap_or(d.audit_hold_ms).max(1),
            quiet_close_ms: env_num("VBRIDGE_QUIET_CLOSE_MS")?.or(fc.quiet_close_ms).unwrap_or(d.quiet_close_ms),
        };
        if tuning.continue_as_new_after < 50 {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_CONTINUE_AS_NEW_AFTER",
                problem: "must be at least 50".into(),
            });
        }
        let mut grants = match secret_env("VBRIDGE_API_TOKENS")?.or(fc.api_tokens) {
            Some(csv) => Grants::parse(&csv)?,
            None => Grants::default(),
        };
        if let Some(token) = secret_env("VBRIDGE_API_TOKEN")?.or(fc.api_token) {
            grants.add_plain(&token, "api-token", &[Role::Auditor]);
        }
        let ms = |v: u64| Duration::from_millis(v.max(1));
        let listen = env("VBRIDGE_LISTEN").or(fc.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = env("VBRIDGE_PUBLIC_URL").or(fc.public_url).unwrap_or_else(|| format!("http://{listen}"));
        let escalation_url = env("VBRIDGE_ESCALATION_URL").or(fc.escalation_url);
        for (name, url) in
            [("VBRIDGE_PUBLIC_URL", Some(&public_url)), ("VBRIDGE_ESCALATION_URL", escalation_url.as_ref())]
        {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(ConfigError::Invalid { name, problem: format!("\"{u}\" is not an http(s) URL") });
            }
        }
        let oidc = match (
            env("VBRIDGE_OIDC_ISSUER").or(fc.oidc_issuer),
            env("VBRIDGE_OIDC_AUDIENCE").or(fc.oidc_audience),
            env("VBRIDGE_OIDC_JWKS_URL").or(fc.oidc_jwks_url),
        ) {
            (Some(issuer), Some(audience), Some(jwks_url)) => {
                Some(crate::http::oidc::OidcConfig { issuer, audience, jwks_url })
            }
            (None, None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "VBRIDGE_OIDC_ISSUER",
                    problem: "OIDC needs VBRIDGE_OIDC_ISSUER, VBRIDGE_OIDC_AUDIENCE and VBRIDGE_OIDC_JWKS_URL together"
                        .into(),
                });
            }
        };
        let session_key = crate::console::session::SessionKey::from_config(
            secret_env("VBRIDGE_SESSION_KEY")?.or(fc.session_key).as_deref(),
        )
        .map_err(|problem| ConfigError::Invalid { name: "VBRIDGE_SESSION_KEY", problem })?;
        let mut ats_kind = match env("VBRIDGE_ATS_KIND").or(fc.ats_kind).as_deref().unwrap_or("generic") {
            "generic" => vbridge_activities::AtsKind::Generic,
            "webhook" => {
                let raw = secret_env("VBRIDGE_ATS_WEBHOOK_SECRET")?.or(fc.ats_webhook_secret).ok_or(
                    ConfigError::Invalid {
                        name: "VBRIDGE_ATS_WEBHOOK_SECRET",
                        problem: "the webhook connector signs its pushes: set a secret (whsec_<base64> or any text)"
                            .into(),
                    },
                )?;
                let secret = Secret::parse(&raw, 1)
                    .map_err(|e| ConfigError::Invalid { name: "VBRIDGE_ATS_WEBHOOK_SECRET", problem: e.to_string() })?;
                vbridge_activities::AtsKind::Webhook { secret }
            }
            "greenhouse" => greenhouse_config()?,
            "ashby" => vbridge_activities::AtsKind::Ashby {
                api_url: url_env("VBRIDGE_ASHBY_API_URL", vbridge_activities::connector::ashby::DEFAULT_API_URL)?,
                api_key: required_secret("VBRIDGE_ASHBY_API_KEY", "the Ashby connector needs an API key")?,
            },
            "lever" => vbridge_activities::AtsKind::Lever {
                api_url: url_env("VBRIDGE_LEVER_API_URL", vbridge_activities::connector::lever::DEFAULT_API_URL)?,
                api_key: required_secret("VBRIDGE_LEVER_API_KEY", "the Lever connector needs an API key")?,
                perform_as: env("VBRIDGE_LEVER_USER_ID").ok_or(ConfigError::Invalid {
                    name: "VBRIDGE_LEVER_USER_ID",
                    problem: "the Lever user the bridge acts as (perform_as) is required".into(),
                })?,
                tag_fields: env("VBRIDGE_LEVER_TAG_FIELDS")
                    .unwrap_or_else(|| "verification_state".into())
                    .split(',')
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect(),
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "VBRIDGE_ATS_KIND",
                    problem: format!("unknown kind \"{other}\" (generic, webhook, greenhouse, ashby, lever)"),
                });
            }
        };
        let ats_field_map = match env("VBRIDGE_ATS_FIELD_MAP").map(PathBuf::from).or(fc.ats_field_map) {
            Some(path) => field_map(&path, &policy)?,
            None => Default::default(),
        };
        // Only the generic and webhook connectors are addressed by
        // VBRIDGE_ATS_URL; the others have their API's host by default.
        let needs_url =
            matches!(ats_kind, vbridge_activities::AtsKind::Generic | vbridge_activities::AtsKind::Webhook { .. });
        if ats_url.is_none() && needs_url && !dev {
            return Err(ConfigError::NoAts);
        }
        if let vbridge_activities::AtsKind::Lever { tag_fields, .. } = &mut ats_kind {
            // Named by the policy's field names; the connector sees the ATS's keys.
            let written = written_fields(&policy);
            if let Some(bad) = tag_fields.iter().find(|f| !written.contains(*f)) {
                return Err(ConfigError::Invalid {
                    name: "VBRIDGE_LEVER_TAG_FIELDS",
                    problem: format!("\"{bad}\" is not a field the bridge writes"),
                });
            }
            let map = &ats_field_map.0;
            *tag_fields = tag_fields.iter().map(|f| map.get(f).cloned().unwrap_or_else(|| f.clone())).collect();
        }
        Ok(Config {
            ats_field_map,
            ats_kind,
            session_key,
            oidc,
            listen,
            public_url,
            escalation_url,
            policy,
            policy_path,
            secrets,
            database_url,
            data_dir,
            temporal_address: env("VBRIDGE_TEMPORAL_ADDRESS")
                .or(fc.temporal_address)
                .unwrap_or_else(|| "127.0.0.1:7233".into()),
            temporal_namespace: match crate::temporal::envconfig_namespace()
                .map_err(|problem| ConfigError::Invalid { name: "TEMPORAL_CONFIG_FILE", problem })?
            {
                // With a temporal.toml profile, its namespace is the one.
                Some(ns) => ns,
                None => env("VBRIDGE_TEMPORAL_NAMESPACE").or(fc.temporal_namespace).unwrap_or_else(|| "default".into()),
            },
            task_queue: env("VBRIDGE_TASK_QUEUE").or(fc.task_queue).unwrap_or_else(|| "verification-bridge".into()),
            ats_url,
            ats_bearer_token: secret_env("VBRIDGE_ATS_BEARER_TOKEN")?.or(fc.ats_bearer_token),
            grants,
            dev,
            metrics_listen: env("VBRIDGE_METRICS_LISTEN").or(fc.metrics_listen),
            temporal_metrics_listen: env("VBRIDGE_TEMPORAL_METRICS_LISTEN")
                .unwrap_or_else(|| "127.0.0.1:0".into())
                .parse()
                .map_err(|e| ConfigError::Invalid {
                    name: "VBRIDGE_TEMPORAL_METRICS_LISTEN",
                    problem: format!("not a socket address: {e}"),
                })?,
            max_body_bytes: env_num("VBRIDGE_MAX_BODY_BYTES")?.or(fc.max_body_bytes).unwrap_or(256 * 1024),
            max_in_flight: env_num("VBRIDGE_MAX_IN_FLIGHT")?.or(fc.max_in_flight).unwrap_or(1024).max(1),
            worker_cached_workflows: env_num("VBRIDGE_WORKER_CACHED_WORKFLOWS")?
                .or(fc.worker_cached_workflows)
                .unwrap_or(crate::temporal::worker::DEFAULT_CACHED_WORKFLOWS)
                .max(1),
            request_timeout: ms(env_num("VBRIDGE_REQUEST_TIMEOUT_MS")?.or(fc.request_timeout_ms).unwrap_or(10_000)),
            commit_timeout: ms(env_num("VBRIDGE_COMMIT_TIMEOUT_MS")?.or(fc.commit_timeout_ms).unwrap_or(5_000)),
            ready_max_relay_lag: ms(env_num("VBRIDGE_READY_MAX_RELAY_LAG_MS")?
                .or(fc.ready_max_relay_lag_ms)
                .unwrap_or(60_000)),
            tuning,
        })
    }
}

impl Config {
    /// How the connector reaches the ATS.
    pub fn ats_config(&self) -> vbridge_activities::AtsConfig {
        vbridge_activities::AtsConfig {
            base_url: self.ats_url.clone().unwrap_or_default(),
            bearer_token: self.ats_bearer_token.clone(),
            kind: self.ats_kind.clone(),
            field_map: self.ats_field_map.clone(),
        }
    }

    /// The configuration the operator CLI (`review`, `override`) reads: the
    /// same file and variables as `serve`, without requiring what only the
    /// receiver needs (webhook secrets, the ATS URL).
    pub fn load_for_tools(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg = Config::load(file, true)?;
        cfg.dev = false;
        Ok(cfg)
    }
}

/// The event store URL as `serve` would find it, for the offline tools
/// (`audit verify`, `timeline`), which need nothing else.
pub fn database_url_from_env() -> String {
    // A URL with a password is a secret: `VBRIDGE_DATABASE_URL_FILE` works too.
    secret_env("VBRIDGE_DATABASE_URL").ok().flatten().unwrap_or_else(|| {
        let dir = env("VBRIDGE_DATA_DIR").unwrap_or_else(|| "./data".into());
        format!("sqlite://{}", Path::new(&dir).join("vbridge.db").display())
    })
}
