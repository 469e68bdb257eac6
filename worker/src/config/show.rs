//! `vbridge config show`: the effective configuration, every secret
//! redacted (only whether it is set, and how many).

use super::{Config, sources};

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
        "escalation_secret": set(cfg.escalation_secret.is_some()),
        "metrics_listen": cfg.metrics_listen,
        "session_key": set(sources::var("session_key").is_some() || sources::var("session_key_file").is_some()),
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
