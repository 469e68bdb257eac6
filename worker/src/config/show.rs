//! `vbridge config show`: the effective configuration, every secret
//! redacted (only whether it is set, and how many).

use super::{Config, sources};

/// The configuration as `vbridge config show` prints it: what `serve` would
/// use, every secret redacted (only whether it is set, and how many).
pub fn redacted(cfg: &Config) -> serde_json::Value {
    let set = |v: bool| if v { "(set, redacted)" } else { "(not set)" };
    let db = shown_url(&cfg.database_url);
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
            "url": cfg.ats_url.as_deref().map(shown_url),
            "bearer_token": set(cfg.ats_bearer_token.is_some()),
            "field_map": cfg.ats_field_map.0,
        },
        "api_credentials": cfg.grants.summary(),
        "oidc": cfg.oidc.as_ref().map(|o| serde_json::json!({"issuer": shown_url(&o.issuer), "audience": o.audience, "jwks_url": shown_url(&o.jwks_url),
            "console_sign_in": o.client.as_ref().map(|c| serde_json::json!({"client_id": c.id,
                "client_secret": set(c.secret.is_some()), "redirect_url": shown_url(&c.redirect_url)}))})),
        "public_url": shown_url(&cfg.public_url),
        "escalation_url": cfg.escalation_url.as_deref().map(shown_url),
        "escalation_secret": set(cfg.escalation_secret.is_some()),
        "metrics_listen": cfg.metrics_listen,
        "audit_keys": cfg.audit_keys.ids(),
        "evidence_key": cfg.evidence_key.as_ref().map(|k| k.public().id()),
        "console_cookies": if cfg.secure_cookies { "Secure" } else { "not Secure (plain http: VBRIDGE_CONSOLE_INSECURE_COOKIES or dev mode)" },
        "api_request_timeout_ms": cfg.api_request_timeout.as_millis() as u64,
        "session_key": set(sources::var("session_key").is_some() || sources::var("session_key_file").is_some()),
        "tuning": cfg.tuning,
        "providers": {
            "configured": cfg.providers.configured().iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "declared": cfg.providers.declared_names().iter().map(|n| serde_json::json!({
                "name": n,
                "route": format!("/webhooks/custom/{n}"),
            })).collect::<Vec<_>>(),
            "secrets": "(redacted)",
            "reason_map_entries": cfg.providers.reasons.0.len(),
        },
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
            serde_json::json!({"api_url": shown_url(&g.api_url), "auth_url": shown_url(&g.auth_url), "credentials": creds,
                "rate_window_ms": g.rate_window.as_millis() as u64})
        }
        AtsKind::Ashby { api_url, .. } => {
            serde_json::json!({"api_url": shown_url(api_url), "api_key": "(set, redacted)"})
        }
        AtsKind::Lever { api_url, perform_as, tag_fields, .. } => serde_json::json!({
            "api_url": shown_url(api_url), "api_key": "(set, redacted)", "perform_as": perform_as, "tag_fields": tag_fields}),
    }
}

/// A URL as `config show` prints it: a password in its userinfo and every
/// query value redacted (`?password=`, `?token=`, signed links), the
/// fragment dropped; the scheme, user, host and path kept, since they are
/// what an operator checks.
pub fn shown_url(url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    let pass = if userinfo.contains(':') { ":(redacted)" } else { "" };
                    format!("{scheme}://{user}{pass}@{host}{path}")
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| format!("{}=(redacted)", p.split_once('=').map_or(p, |(k, _)| k)))
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn urls_are_shown_without_passwords_query_secrets_or_fragments() {
        let cases = [
            ("postgres://app:s3cret@db.example/vbridge", "postgres://app:(redacted)@db.example/vbridge"),
            (
                "postgres://db.example/vbridge?user=app&password=s3cret",
                "postgres://db.example/vbridge?user=(redacted)&password=(redacted)",
            ),
            ("https://u:p@ats.example/api?token=abc#frag", "https://u:(redacted)@ats.example/api?token=(redacted)"),
            ("https://esc.example/hook/a@b", "https://esc.example/hook/a@b"),
            ("sqlite://./data/vbridge.db", "sqlite://./data/vbridge.db"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ];
        for (given, shown) in cases {
            assert_eq!(shown_url(given), shown, "{given}");
        }
    }
}
