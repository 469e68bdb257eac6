//! Where the settings come from, layered: the defaults, then the `--config`
//! TOML file, then the environment (`VBRIDGE_{KEY}`, and `VBRIDGE_{KEY}_FILE`
//! for a secret); a later layer wins.
//!
//! Why figment rather than one `env()` read per setting: each source is a
//! provider and the precedence is the order they are merged in, once, for
//! every key alike (no per-setting `env(..).or(file.x).unwrap_or(..)` chain
//! to get wrong); `VBRIDGE_{KEY}` maps to the key of the same name in the
//! file, so the environment and the file cannot drift apart; and the result
//! is one serde struct whose type errors name the key and its source (which
//! variable, or which file), as [`ConfigError`] reports them.

use super::ConfigError;
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use vbridge_activities::Redacted;
use vbridge_activities::connector::{ashby, greenhouse, lever};

pub const PREFIX: &str = "VBRIDGE_";

/// The settings as written: one key per variable (`VBRIDGE_LISTEN` is
/// `listen` in the file), each optional in every source; a key no source
/// sets takes its default here.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub policy: Option<PathBuf>,
    /// A comma-separated list (rotation), or an array in the file.
    #[serde(deserialize_with = "secret_list")]
    pub webhook_secrets: Option<Vec<Redacted>>,
    /// Default: `sqlite://{data_dir}/vbridge.db`.
    pub database_url: Option<Redacted>,
    pub data_dir: PathBuf,
    pub temporal_address: String,
    pub temporal_namespace: String,
    pub task_queue: String,
    pub ats_url: Option<String>,
    pub ats_bearer_token: Option<Redacted>,
    pub api_token: Option<Redacted>,
    pub api_tokens: Option<Redacted>,
    pub metrics_listen: Option<String>,
    pub temporal_metrics_listen: String,
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
    /// The most events the relay sends in one signal (1: each alone).
    pub relay_batch_max: usize,
    /// How long a verification's first owed event waits before its batch is
    /// a backlog (whose ATS writes coalesce into one).
    pub relay_backlog_after_ms: u64,
    pub worker_cached_workflows: usize,
    pub audit_hold_ms: u32,
    pub quiet_close_ms: u32,
    pub request_timeout_ms: u64,
    /// The operator API's and the console's request timeout.
    pub api_request_timeout_ms: u64,
    pub commit_timeout_ms: u64,
    pub ready_max_relay_lag_ms: u64,
    /// Refused requests are aggregated per window this long (`crate::audit::refusals`).
    pub refusal_window_ms: u64,
    pub ats_retry_initial_ms: u32,
    pub ats_retry_max_ms: u32,
    pub ats_deferral_ms: u32,
    pub continue_as_new_after: u32,
    /// Default: `http://{listen}`.
    pub public_url: Option<String>,
    pub escalation_url: Option<String>,
    /// Signs escalations; never a provider's inbound secret.
    pub escalation_secret: Option<Redacted>,
    pub oidc_issuer: Option<String>,
    pub oidc_audience: Option<String>,
    pub oidc_jwks_url: Option<String>,
    /// The console's "Sign in with the issuer" (authorization code + PKCE).
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<Redacted>,
    pub session_key: Option<Redacted>,
    /// Links the audit chains (hex keys, the signing one first); see
    /// `vbridge_core::chain::key`.
    pub audit_key: Option<Redacted>,
    /// Signs evidence packs: an Ed25519 seed (64 hex digits or base64 of 32
    /// bytes); see `vbridge_core::evidence`.
    pub evidence_key: Option<Redacted>,
    /// Console cookies without `Secure`: plain-http local development only.
    pub console_insecure_cookies: bool,
    pub ats_kind: String,
    pub ats_webhook_secret: Option<Redacted>,
    pub ats_field_map: Option<PathBuf>,
    pub greenhouse_user_id: Option<String>,
    pub greenhouse_client_id: Option<String>,
    pub greenhouse_client_secret: Option<Redacted>,
    pub greenhouse_api_key: Option<Redacted>,
    pub greenhouse_api_url: String,
    pub greenhouse_auth_url: String,
    /// Unset: each version's own window (v3: 30 s, v1: 10 s).
    pub greenhouse_rate_window_ms: Option<u64>,
    pub greenhouse_token_quiet_ms: u64,
    pub ashby_api_url: String,
    pub ashby_api_key: Option<Redacted>,
    pub lever_api_url: String,
    pub lever_api_key: Option<Redacted>,
    pub lever_user_id: Option<String>,
    /// A comma-separated list, or an array in the file.
    #[serde(deserialize_with = "comma_list")]
    pub lever_tag_fields: Vec<String>,
    /// The real providers (docs/providers.md): each a comma-separated list
    /// (rotation), or an array in the file.
    #[serde(deserialize_with = "secret_list")]
    pub persona_webhook_secrets: Option<Vec<Redacted>>,
    #[serde(deserialize_with = "secret_list")]
    pub onfido_webhook_tokens: Option<Vec<Redacted>>,
    #[serde(deserialize_with = "secret_list")]
    pub veriff_shared_secrets: Option<Vec<Redacted>>,
    pub veriff_api_key: Option<Redacted>,
    #[serde(deserialize_with = "secret_list")]
    pub sumsub_webhook_secrets: Option<Vec<Redacted>>,
    /// Provider reason labels → the policy's reason codes (a TOML file).
    pub provider_reason_map: Option<PathBuf>,
    /// The declared providers (a TOML file; docs/providers.md).
    pub custom_providers: Option<PathBuf>,
    /// The hiring loop (docs/hiring.md): the ATSs' webhook secrets (each a
    /// comma-separated list, for rotation) ...
    #[serde(deserialize_with = "secret_list")]
    pub greenhouse_webhook_secret: Option<Vec<Redacted>>,
    #[serde(deserialize_with = "secret_list")]
    pub ashby_webhook_secret: Option<Vec<Redacted>>,
    /// ... where verifications are started (`persona` | `veriff`) ...
    pub start_provider: Option<String>,
    pub persona_api_url: String,
    pub persona_api_key: Option<Redacted>,
    pub veriff_api_url: String,
    /// ... and how the candidate is mailed (the URL may hold a password).
    pub smtp_url: Option<Redacted>,
    pub mail_from: String,
    pub recruiter_email: Option<String>,
    /// How often Greenhouse's interviews are polled (seconds; 0: never).
    pub interview_poll_seconds: u64,
}

/// Greenhouse's interviews are read every five minutes: an interview is
/// booked days ahead, and each run costs one Harvest request when nothing
/// changed.
pub const DEFAULT_INTERVIEW_POLL_SECONDS: u64 = 300;

/// The keys that are secrets: each can also come from the file that
/// `VBRIDGE_{KEY}_FILE` names, as container secrets are mounted.
pub const SECRET_KEYS: &[&str] = &[
    "webhook_secrets",
    "escalation_secret",
    "database_url",
    "ats_bearer_token",
    "api_token",
    "api_tokens",
    "session_key",
    "audit_key",
    "evidence_key",
    "oidc_client_secret",
    "ats_webhook_secret",
    "greenhouse_client_secret",
    "greenhouse_api_key",
    "ashby_api_key",
    "lever_api_key",
    "persona_webhook_secrets",
    "onfido_webhook_tokens",
    "veriff_shared_secrets",
    "veriff_api_key",
    "sumsub_webhook_secrets",
    "greenhouse_webhook_secret",
    "ashby_webhook_secret",
    "persona_api_key",
    "smtp_url",
];

impl Default for Settings {
    fn default() -> Self {
        let t = vbridge_workflows::verification::default_tuning();
        Settings {
            listen: "127.0.0.1:8080".into(),
            policy: None,
            webhook_secrets: None,
            database_url: None,
            data_dir: PathBuf::from("./data"),
            temporal_address: "127.0.0.1:7233".into(),
            temporal_namespace: "default".into(),
            task_queue: "verification-bridge".into(),
            ats_url: None,
            ats_bearer_token: None,
            api_token: None,
            api_tokens: None,
            metrics_listen: None,
            // A free loopback port.
            temporal_metrics_listen: "127.0.0.1:0".into(),
            max_body_bytes: 256 * 1024,
            max_in_flight: 1024,
            relay_batch_max: crate::temporal::forward::BATCH_EVENTS_MAX,
            relay_backlog_after_ms: 5_000,
            worker_cached_workflows: crate::temporal::worker::DEFAULT_CACHED_WORKFLOWS,
            audit_hold_ms: t.audit_hold_ms,
            quiet_close_ms: t.quiet_close_ms,
            request_timeout_ms: 10_000,
            // Above the identity provider's key fetch (5 s) and the console's
            // wait for its own decision to show (5 s).
            api_request_timeout_ms: 15_000,
            commit_timeout_ms: 5_000,
            ready_max_relay_lag_ms: 60_000,
            refusal_window_ms: 60_000,
            ats_retry_initial_ms: t.ats_retry_initial_ms,
            ats_retry_max_ms: t.ats_retry_max_ms,
            ats_deferral_ms: t.deferral_ms,
            continue_as_new_after: t.continue_as_new_after,
            public_url: None,
            escalation_url: None,
            escalation_secret: None,
            oidc_issuer: None,
            oidc_audience: None,
            oidc_jwks_url: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            session_key: None,
            audit_key: None,
            evidence_key: None,
            console_insecure_cookies: false,
            ats_kind: "generic".into(),
            ats_webhook_secret: None,
            ats_field_map: None,
            greenhouse_user_id: None,
            greenhouse_client_id: None,
            greenhouse_client_secret: None,
            greenhouse_api_key: None,
            greenhouse_api_url: greenhouse::DEFAULT_API_URL.into(),
            greenhouse_auth_url: greenhouse::DEFAULT_AUTH_URL.into(),
            greenhouse_rate_window_ms: None,
            greenhouse_token_quiet_ms: greenhouse::TOKEN_QUIET.as_millis() as u64,
            ashby_api_url: ashby::DEFAULT_API_URL.into(),
            ashby_api_key: None,
            lever_api_url: lever::DEFAULT_API_URL.into(),
            lever_api_key: None,
            lever_user_id: None,
            lever_tag_fields: vec!["verification_state".into()],
            persona_webhook_secrets: None,
            onfido_webhook_tokens: None,
            veriff_shared_secrets: None,
            veriff_api_key: None,
            sumsub_webhook_secrets: None,
            provider_reason_map: None,
            custom_providers: None,
            greenhouse_webhook_secret: None,
            ashby_webhook_secret: None,
            start_provider: None,
            persona_api_url: vbridge_activities::hiring::start::PERSONA_API_URL.into(),
            persona_api_key: None,
            veriff_api_url: vbridge_activities::hiring::start::VERIFF_API_URL.into(),
            smtp_url: None,
            mail_from: "vbridge <no-reply@localhost>".into(),
            recruiter_email: None,
            interview_poll_seconds: DEFAULT_INTERVIEW_POLL_SECONDS,
        }
    }
}

impl Settings {
    /// Defaults < `file` < the process's environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::layered(file, EnvLayer::read()?)
    }

    /// The defaults are `Settings::default()` (serde fills a key no layer
    /// sets), so only the file and the environment are providers. Values
    /// from the environment are text; `extract_lossy` reads a number from
    /// text where a number is wanted.
    fn layered(file: Option<&Path>, env: EnvLayer) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(FileLayer::read(path)?);
        }
        figment.merge(env).extract_lossy().map_err(ConfigError::from_figment)
    }
}

/// The `--config` file: read here, so that an unreadable one is reported
/// as such, and named as the source of its keys.
struct FileLayer {
    path: PathBuf,
    text: String,
}

impl FileLayer {
    fn read(path: &Path) -> Result<FileLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        Ok(FileLayer { path: path.to_owned(), text })
    }
}

impl Provider for FileLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("config file").source(self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

/// Names this layer in errors (the variable is named from the key).
pub const ENV_SOURCE: &str = "environment variable";

/// The environment's layer: `VBRIDGE_{KEY}` for each key of [`Settings`]
/// (exactly that case), a blank value counting as unset, values kept as
/// text. A secret whose variable is unset may come from the file that
/// `VBRIDGE_{KEY}_FILE` names (its content trimmed). Figment's own
/// `Env::data` would parse each value (`1` a number, `[x]` an array, `""`
/// set), so only its key mapping is used.
pub struct EnvLayer(Dict);

impl EnvLayer {
    pub fn read() -> Result<EnvLayer, ConfigError> {
        let vars = Env::raw().filter_map(|name| {
            let key = name.as_str().strip_prefix(PREFIX)?;
            (key == key.to_ascii_uppercase()).then(|| key.to_ascii_lowercase().into())
        });
        EnvLayer::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v)))
    }

    /// From `(key, value)` pairs, the key lower case without the prefix
    /// (`webhook_secrets`, `webhook_secrets_file`); a key that is not a
    /// setting (`VBRIDGE_LOG`, ...) is not this layer's.
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<EnvLayer, ConfigError> {
        let keys = keys();
        let mut dict = Dict::new();
        let mut files = std::collections::BTreeMap::new();
        for (key, value) in vars.into_iter().filter(|(_, v)| !v.trim().is_empty()) {
            if keys.contains(&key.as_str()) {
                dict.insert(key, Value::from(value));
            } else if let Some(secret) = key.strip_suffix("_file").filter(|k| SECRET_KEYS.contains(k)) {
                files.insert(secret.to_owned(), value);
            }
        }
        // The variable itself wins over its `_FILE` (which is then not read).
        files.retain(|k, _| !dict.contains_key(k));
        for (key, path) in files {
            let var = var_name(&key);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::Env { var: var.clone(), problem: format!("{var}_FILE ({path}): {e}") })?;
            if !text.trim().is_empty() {
                dict.insert(key, Value::from(text.trim().to_owned()));
            }
        }
        Ok(EnvLayer(dict))
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE).interpolater(|_profile, keys| var_name(&keys.join("_")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// `listen` → `VBRIDGE_LISTEN`.
pub fn var_name(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase())
}

/// One variable, a blank value counting as unset.
pub fn var(key: &str) -> Option<String> {
    std::env::var(var_name(key)).ok().filter(|v| !v.trim().is_empty())
}

/// One secret from the environment alone (the offline tools read only the
/// event store's URL): the variable, else its `_FILE`.
pub fn secret_var(key: &str) -> Result<Option<String>, ConfigError> {
    let names = [key.to_owned(), format!("{key}_file")];
    let layer = EnvLayer::from_vars(names.into_iter().filter_map(|k| var(&k).map(|v| (k, v))))?;
    Ok(layer.0.get(key).and_then(Value::as_str).map(str::to_owned))
}

/// The field names of [`Settings`], as serde sees them (so the list of
/// variables read cannot drift from the struct).
fn keys() -> &'static [&'static str] {
    struct Fields(std::cell::Cell<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &Fields {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("only the field names are read"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            self.deserialize_any(v)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let fields = Fields(std::cell::Cell::new(&[]));
    let _ = Settings::deserialize(&fields);
    fields.0.get()
}

/// A list given as one comma-separated string (blank entries dropped,
/// each trimmed) or as an array.
fn comma_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct List;
    impl<'de> serde::de::Visitor<'de> for List {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a comma-separated list or an array of strings")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(List)
}

fn secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Redacted>>, D::Error> {
    Ok(Some(comma_list(d)?.into_iter().map(Redacted).collect()))
}

impl ConfigError {
    /// Name the offending key by its source: the variable, or the file and
    /// the key in it.
    fn from_figment(e: figment::Error) -> ConfigError {
        let key = e.path.join(".");
        let problem = match &e.kind {
            // Text where a number is wanted (every other setting is text
            // or a list, which takes text).
            figment::error::Kind::InvalidType(figment::error::Actual::Str(v), _) => {
                format!("\"{v}\" is not a number")
            }
            kind => kind.to_string(),
        };
        let Some(md) = &e.metadata else { return ConfigError::Settings(e.to_string()) };
        if md.name == ENV_SOURCE && !key.is_empty() {
            return ConfigError::Env { var: var_name(&e.path.join("_")), problem };
        }
        match md.source.as_ref().and_then(|s| s.file_path()) {
            Some(path) if key.is_empty() => ConfigError::File(path.to_owned(), problem),
            Some(path) => ConfigError::File(path.to_owned(), format!("{key}: {problem}")),
            None => ConfigError::Settings(e.to_string()),
        }
    }
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
