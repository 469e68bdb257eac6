//! Configuration: the defaults, then an optional TOML file (`--config`), then
//! environment variables (the environment wins); names follow
//! docs/contract.md §1. `sources` layers them into one serde struct,
//! [`Settings`]; [`Config::settle`] checks it and builds what the roles use.

mod connector;
mod custom;

pub use custom::{EXAMPLE_CHECKR, secrets_var as declared_secrets_var};
mod hiring;
mod providers;
mod show;
mod sources;

pub use connector::{field_map, written_fields};
pub use hiring::Hiring;
pub use show::redacted;
pub use sources::Settings;

use crate::http::auth::{Grants, Role};
use crate::intake::signature::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vbridge_activities::Redacted;
use vbridge_core::Policy;
use vbridge_proto::Tuning;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0}: {1}")]
    File(PathBuf, String),
    /// A variable's value (or its `_FILE`) that cannot be used.
    #[error("{var}: {problem}")]
    Env { var: String, problem: String },
    #[error("configuration: {0}")]
    Settings(String),
    #[error("{0}")]
    Policy(#[from] vbridge_core::PolicyError),
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
    #[error("the event store: {0}")]
    Store(String),
}

/// The settled configuration. Its `Debug` is `config show`'s redacted form,
/// so a stray `{cfg:?}` never prints a secret.
#[derive(Clone)]
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
    pub ats_bearer_token: Option<Redacted>,
    /// Who may call the operator API (docs/contract.md §5), by token hash.
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
    /// The most events of one verification the relay sends in one signal
    /// (`VBRIDGE_RELAY_BATCH_MAX`, 1 to [`BATCH_EVENTS_MAX`](crate::temporal::forward::BATCH_EVENTS_MAX)).
    pub relay_batch_max: usize,
    /// `VBRIDGE_RELAY_BACKLOG_AFTER_MS`: see `EventBatch.backlog`.
    pub relay_backlog_after: Duration,
    pub request_timeout: Duration,
    /// The operator API's and the console's request timeout.
    pub api_request_timeout: Duration,
    /// A commit not done within this is answered 503 + Retry-After.
    pub commit_timeout: Duration,
    /// `/readyz` fails `relay_lag` past this age of the oldest unforwarded event.
    pub ready_max_relay_lag: Duration,
    /// One audit record per kind of refusal per window (`VBRIDGE_REFUSAL_WINDOW_MS`).
    pub refusal_window: Duration,
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
    /// What signs the escalations (`VBRIDGE_ESCALATION_SECRET`): a secret of
    /// their own, never a provider's inbound one, or the escalation receiver
    /// could forge provider webhooks. Required with an escalation URL.
    pub escalation_secret: Option<Secret>,
    /// OIDC JWTs accepted on the operator API (all three variables, or none).
    pub oidc: Option<crate::http::oidc::OidcConfig>,
    /// Which ATS connector (`VBRIDGE_ATS_KIND`): `generic` (docs/contract.md
    /// §4) or `webhook` (a signed push to `VBRIDGE_ATS_URL`, secret
    /// `VBRIDGE_ATS_WEBHOOK_SECRET`). See docs/connectors.md.
    pub ats_kind: vbridge_activities::AtsKind,
    /// Policy field → ATS key (`VBRIDGE_ATS_FIELD_MAP`, a TOML or JSON file).
    pub ats_field_map: vbridge_activities::connector::FieldMap,
    /// Signs console sessions (`VBRIDGE_SESSION_KEY`, 64 hex); random per
    /// process when unset (sessions then end with the process).
    pub session_key: crate::http::console::session::SessionKey,
    /// Link the audit chains as HMACs (`VBRIDGE_AUDIT_KEY` or `_FILE`: hex
    /// keys, the signing one first); none: plain SHA-256 links.
    pub audit_keys: vbridge_core::chain::Keyring,
    /// Signs evidence packs (`VBRIDGE_EVIDENCE_KEY` or `_FILE`); none: packs
    /// are refused with a reason.
    pub evidence_key: Option<std::sync::Arc<vbridge_core::evidence::EvidenceKey>>,
    /// Console cookies carry `Secure` unless this says plain http
    /// (`VBRIDGE_CONSOLE_INSECURE_COOKIES=true`, or dev mode).
    pub secure_cookies: bool,
    /// The real providers' routes and the reason table (docs/providers.md).
    pub providers: std::sync::Arc<crate::intake::providers::Providers>,
    /// The ATSs' webhook routes (docs/contract.md §8).
    pub ats_hooks: std::sync::Arc<crate::intake::ats::AtsHooks>,
    /// The hiring loop: where verifications start, the mail server.
    pub hiring: hiring::Hiring,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Config {}", show::redacted(self))
    }
}

/// Development-only secret used by `vbridge dev` when none is configured.
pub const DEV_SECRET: &str = "dev-secret-change-me";

/// An http(s) URL, or the setting's name and why not.
fn http_url(name: &'static str, url: String) -> Result<String, ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid { name, problem: format!("\"{url}\" is not an http(s) URL") });
    }
    Ok(url)
}

impl Config {
    /// Load from `file` (if any) and the environment. `dev` relaxes what dev
    /// mode may default (secrets, ATS URL).
    pub fn load(file: Option<&Path>, dev: bool) -> Result<Config, ConfigError> {
        Config::settle(Settings::load(file)?, dev)
    }

    /// Check the settings and build the configuration: the policy, the
    /// secrets, the connector; what outside dev mode must be set.
    pub fn settle(s: Settings, dev: bool) -> Result<Config, ConfigError> {
        let policy = match &s.policy {
            Some(p) => Policy::load(p)?,
            None => Policy::parse(vbridge_core::DEFAULT_POLICY_YAML)?,
        };
        let secrets = match &s.webhook_secrets {
            Some(list) => list.iter().enumerate().map(|(i, r)| Secret::parse(&r.0, i + 1)).collect::<Result<_, _>>()?,
            None => vec![],
        };
        let secrets = match (secrets.is_empty(), dev) {
            (false, _) => secrets,
            (true, true) => vec![Secret::parse(DEV_SECRET, 1)?],
            (true, false) => return Err(ConfigError::NoSecrets),
        };
        let database_url = match &s.database_url {
            Some(url) => url.0.clone(),
            None => format!("sqlite://{}", s.data_dir.join("vbridge.db").display()),
        };
        let tuning = Tuning {
            ats_retry_initial_ms: s.ats_retry_initial_ms,
            ats_retry_max_ms: s.ats_retry_max_ms,
            deferral_ms: s.ats_deferral_ms,
            continue_as_new_after: s.continue_as_new_after,
            audit_hold_ms: s.audit_hold_ms.max(1),
            quiet_close_ms: s.quiet_close_ms,
        };
        if tuning.continue_as_new_after < 50 {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_CONTINUE_AS_NEW_AFTER",
                problem: "must be at least 50".into(),
            });
        }
        let mut grants = match &s.api_tokens {
            Some(csv) => Grants::parse(&csv.0)?,
            None => Grants::default(),
        };
        if let Some(token) = &s.api_token {
            grants.add_plain(&token.0, "api-token", &[Role::Auditor]);
        }
        let ms = |v: u64| Duration::from_millis(v.max(1));
        let public_url =
            http_url("VBRIDGE_PUBLIC_URL", s.public_url.clone().unwrap_or_else(|| format!("http://{}", s.listen)))?;
        let escalation_url = s.escalation_url.clone().map(|u| http_url("VBRIDGE_ESCALATION_URL", u)).transpose()?;
        let escalation_secret = s.escalation_secret.as_ref().map(|r| Secret::parse(&r.0, 1)).transpose()?;
        if escalation_url.is_some() && escalation_secret.is_none() {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_ESCALATION_SECRET",
                problem: "VBRIDGE_ESCALATION_URL is set: escalations need a signing secret of their own \
                          (never a provider's webhook secret)"
                    .into(),
            });
        }
        if let Some(e) = &s.escalation_secret
            && s.webhook_secrets.iter().flatten().any(|w| w.0.trim() == e.0.trim())
        {
            return Err(ConfigError::Invalid {
                name: "VBRIDGE_ESCALATION_SECRET",
                problem: "must differ from every VBRIDGE_WEBHOOK_SECRETS entry".into(),
            });
        }
        let client = match s.oidc_client_id.clone() {
            Some(id) => Some(crate::http::oidc::OidcClient {
                id,
                secret: s.oidc_client_secret.clone(),
                redirect_url: format!("{}/console/login/oidc/callback", public_url.trim_end_matches('/')),
            }),
            None if s.oidc_client_secret.is_some() => {
                return Err(ConfigError::Invalid {
                    name: "VBRIDGE_OIDC_CLIENT_SECRET",
                    problem: "set without VBRIDGE_OIDC_CLIENT_ID".into(),
                });
            }
            None => None,
        };
        let oidc = match (s.oidc_issuer.clone(), s.oidc_audience.clone(), s.oidc_jwks_url.clone()) {
            (Some(issuer), Some(audience), Some(jwks_url)) => {
                Some(crate::http::oidc::OidcConfig { issuer, audience, jwks_url, client })
            }
            (None, None, None) if client.is_some() => {
                return Err(ConfigError::Invalid {
                    name: "VBRIDGE_OIDC_CLIENT_ID",
                    problem: "the console's OIDC sign-in needs VBRIDGE_OIDC_ISSUER (with VBRIDGE_OIDC_AUDIENCE and \
                              VBRIDGE_OIDC_JWKS_URL)"
                        .into(),
                });
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
        let session_key = crate::http::console::session::SessionKey::from_config(s.session_key.as_ref().map(|k| &*k.0))
            .map_err(|problem| ConfigError::Invalid { name: "VBRIDGE_SESSION_KEY", problem })?;
        let audit_keys = audit_keys(s.audit_key.as_ref().map(|k| k.0.as_str()))?;
        let evidence_key = evidence_key(s.evidence_key.as_ref().map(|k| k.0.as_str()))?.map(std::sync::Arc::new);
        let mut ats_kind = connector::ats_kind(&s)?;
        let ats_field_map = match &s.ats_field_map {
            Some(path) => field_map(path, &policy)?,
            None => Default::default(),
        };
        // Only the generic and webhook connectors are addressed by
        // VBRIDGE_ATS_URL; the others have their API's host by default.
        let needs_url =
            matches!(ats_kind, vbridge_activities::AtsKind::Generic | vbridge_activities::AtsKind::Webhook { .. });
        if s.ats_url.is_none() && needs_url && !dev {
            return Err(ConfigError::NoAts);
        }
        connector::map_tag_fields(&mut ats_kind, &policy, &ats_field_map)?;
        let providers = std::sync::Arc::new(providers::providers(&s, &policy)?);
        let ats_hooks = std::sync::Arc::new(hiring::ats_hooks(&s)?);
        let hiring = hiring::hiring(&s)?;
        Ok(Config {
            providers,
            ats_hooks,
            hiring,
            ats_field_map,
            ats_kind,
            session_key,
            audit_keys,
            evidence_key,
            secure_cookies: !(s.console_insecure_cookies || dev),
            oidc,
            public_url,
            escalation_url,
            escalation_secret,
            policy,
            policy_path: s.policy,
            secrets,
            database_url,
            data_dir: s.data_dir,
            temporal_address: s.temporal_address,
            temporal_namespace: match crate::temporal::envconfig_namespace()
                .map_err(|problem| ConfigError::Invalid { name: "TEMPORAL_CONFIG_FILE", problem })?
            {
                // With a temporal.toml profile, its namespace is the one.
                Some(ns) => ns,
                None => s.temporal_namespace,
            },
            task_queue: s.task_queue,
            ats_url: s.ats_url,
            ats_bearer_token: s.ats_bearer_token,
            grants,
            dev,
            metrics_listen: s.metrics_listen,
            temporal_metrics_listen: s.temporal_metrics_listen.parse().map_err(|e| ConfigError::Invalid {
                name: "VBRIDGE_TEMPORAL_METRICS_LISTEN",
                problem: format!("not a socket address: {e}"),
            })?,
            max_body_bytes: s.max_body_bytes,
            max_in_flight: s.max_in_flight.max(1),
            relay_batch_max: s.relay_batch_max.clamp(1, crate::temporal::forward::BATCH_EVENTS_MAX),
            relay_backlog_after: ms(s.relay_backlog_after_ms),
            worker_cached_workflows: s.worker_cached_workflows.max(1),
            request_timeout: ms(s.request_timeout_ms),
            api_request_timeout: ms(s.api_request_timeout_ms),
            commit_timeout: ms(s.commit_timeout_ms),
            ready_max_relay_lag: ms(s.ready_max_relay_lag_ms),
            refusal_window: ms(s.refusal_window_ms.max(100)),
            tuning,
            listen: s.listen,
        })
    }

    /// How the connector reaches the ATS.
    pub fn ats_config(&self) -> vbridge_activities::AtsConfig {
        vbridge_activities::AtsConfig {
            base_url: self.ats_url.clone().unwrap_or_default(),
            bearer_token: self.ats_bearer_token.as_ref().map(|t| t.0.clone()),
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

fn audit_keys(text: Option<&str>) -> Result<vbridge_core::chain::Keyring, ConfigError> {
    vbridge_core::chain::Keyring::parse(text.unwrap_or(""))
        .map_err(|e| ConfigError::Invalid { name: "VBRIDGE_AUDIT_KEY", problem: e.to_string() })
}

fn evidence_key(text: Option<&str>) -> Result<Option<vbridge_core::evidence::EvidenceKey>, ConfigError> {
    text.map(|k| {
        vbridge_core::evidence::EvidenceKey::parse(k)
            .map_err(|problem| ConfigError::Invalid { name: "VBRIDGE_EVIDENCE_KEY", problem })
    })
    .transpose()
}

/// The evidence key as `serve` would find it (`VBRIDGE_EVIDENCE_KEY` or
/// `_FILE`), for the CLI; none when unset.
pub fn evidence_key_from_env() -> Result<Option<vbridge_core::evidence::EvidenceKey>, ConfigError> {
    evidence_key(sources::secret_var("evidence_key")?.as_deref())
}

/// The audit keys as `serve` would find them, for the offline tools.
pub fn audit_keys_from_env() -> Result<vbridge_core::chain::Keyring, ConfigError> {
    audit_keys(sources::secret_var("audit_key")?.as_deref())
}

/// Open the event store at `url` with the configured audit keys: every tool
/// that writes or verifies records opens it this way, so none links without
/// the key while the bridge links with it.
pub async fn open_store(url: &str) -> Result<std::sync::Arc<dyn crate::store::EventStore>, ConfigError> {
    let keys = audit_keys_from_env()?;
    crate::store::open(url, keys).await.map_err(|e| ConfigError::Store(e.to_string()))
}

/// The event store URL as `serve` would find it, for the offline tools
/// (`audit verify`, `timeline`), which need nothing else.
pub fn database_url_from_env() -> String {
    // A URL with a password is a secret: `VBRIDGE_DATABASE_URL_FILE` works too.
    sources::secret_var("database_url").ok().flatten().unwrap_or_else(|| {
        let dir = sources::var("data_dir").unwrap_or_else(|| "./data".into());
        format!("sqlite://{}", Path::new(&dir).join("vbridge.db").display())
    })
}
