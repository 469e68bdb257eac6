//! OAuth2 client credentials with a token cache, through the `oauth2` crate
//! (maintained, RFC 6749 and its error responses done right: HTTP Basic with
//! the form-encoded client id and secret, `grant_type=client_credentials`).
//!
//! The token is fetched on first use, kept, and refreshed shortly before it
//! expires. Its expiry is the answer's `expires_at` (RFC 3339, what Harvest
//! v3 sends), else RFC 6749's `expires_in`, else an hour.
//!
//! Several processes sharing one credential. Greenhouse keeps one active
//! token per credential (integrators report it): taking a new token revokes
//! the one another worker holds. A 401 is therefore usually not "our token
//! is bad" but "another worker just took a new one", and replacing ours at
//! once revokes theirs, which replaces theirs at once: a storm of token
//! requests with every write failing. So a refresh tolerates revocation:
//! - one refresh at a time per process (single flight): callers that find
//!   the token they hold already replaced take the new one;
//! - a token younger than the quiet period is not replaced on a 401: the
//!   call is held ([`TokenError::Contended`]) for the rest of the quiet
//!   period plus a random jitter, after which the next call takes a new
//!   token. Each worker thus takes at most one token per quiet period, and
//!   the workers take turns instead of revoking each other on every request
//!   (docs/connectors.md explains why not one holder per deployment).

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    ClientId, ClientSecret, ExtraTokenFields, RequestTokenError, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint refused the credentials (`invalid_client`, ...):
    /// retrying does not help until the configuration changes.
    #[error("the token endpoint refused the client credentials: {0}")]
    Refused(String),
    /// The endpoint did not answer usefully (network, 5xx, 429): retry.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// Our token, younger than the quiet period, was refused: another
    /// holder of the credential has just taken a new one. Call again after
    /// the delay (a new token is taken then).
    #[error("the token was replaced by another holder of the credential; waiting {0:?} before taking it back")]
    Contended(Duration),
}

/// Harvest v3's token answer: `expires_at` besides the standard fields.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExpiresAt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl ExtraTokenFields for ExpiresAt {}

type Answer = StandardTokenResponse<ExpiresAt, BasicTokenType>;
type Client = oauth2::Client<
    BasicErrorResponse,
    Answer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

/// The token held, when it was issued, and when to replace it.
struct Held {
    token: String,
    issued: Instant,
    refresh_at: Instant,
}

pub struct TokenSource {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    token_url: String,
    /// Extra form parameters (Greenhouse: `sub` = the user id).
    extra: Vec<(String, String)>,
    /// How long a token is kept against 401s (see the module comment).
    quiet: Duration,
    cache: tokio::sync::Mutex<Option<Held>>,
}

/// Lifetime assumed when the endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The lifetime an answer gives: `expires_at` (RFC 3339) counted from `now`,
/// else `expires_in`, else none.
pub fn lifetime_of(
    expires_at: Option<&str>,
    expires_in: Option<Duration>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let at = expires_at.and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok());
    match at {
        Some(at) => Some((at.with_timezone(&chrono::Utc) - now).to_std().unwrap_or_default()),
        None => expires_in,
    }
}

/// A random share of `of` (at most all of it): spreads the workers' retries.
fn jitter(of: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    of.mul_f64((r % 1000) as f64 / 1000.0)
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        client_id: String,
        client_secret: String,
        token_url: String,
        extra: Vec<(String, String)>,
        quiet: Duration,
    ) -> TokenSource {
        TokenSource { http, client_id, client_secret, token_url, extra, quiet, cache: Default::default() }
    }

    /// How long a token is kept against 401s.
    pub fn quiet(&self) -> Duration {
        self.quiet
    }

    /// A token good for a while yet.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(held) = cache.as_ref()
            && Instant::now() < held.refresh_at
        {
            return Ok(held.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// The API refused `stale`: the token another caller has already put in
    /// its place; a new one when ours is older than the quiet period; else
    /// [`TokenError::Contended`].
    pub async fn refresh(&self, stale: &str) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(held) = cache.as_mut() {
            if held.token != stale {
                return Ok(held.token.clone());
            }
            let age = held.issued.elapsed();
            if age < self.quiet {
                // Taken back by the first call after the quiet period.
                held.refresh_at = held.refresh_at.min(held.issued + self.quiet);
                let wait = self.quiet - age + jitter(self.quiet / 2);
                tracing::info!(wait_ms = wait.as_millis() as u64, "OAuth2 token replaced elsewhere: holding");
                return Err(TokenError::Contended(wait));
            }
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn fetch(&self) -> Result<Held, TokenError> {
        let url = TokenUrl::new(self.token_url.clone()).map_err(|e| TokenError::Refused(format!("token URL: {e}")))?;
        let client = Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_token_uri(url);
        let mut req = client.exchange_client_credentials();
        for (k, v) in &self.extra {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        match req.request_async(&self.http).await {
            Ok(resp) => {
                let lifetime =
                    lifetime_of(resp.extra_fields().expires_at.as_deref(), resp.expires_in(), chrono::Utc::now())
                        .unwrap_or(DEFAULT_LIFETIME);
                // Refresh a tenth of the lifetime early (at most a minute).
                let early = (lifetime / 10).min(Duration::from_secs(60));
                tracing::info!(lifetime_s = lifetime.as_secs(), "OAuth2 token issued");
                let issued = Instant::now();
                Ok(Held { token: resp.access_token().secret().clone(), issued, refresh_at: issued + lifetime - early })
            }
            Err(RequestTokenError::ServerResponse(e)) => Err(TokenError::Refused(e.to_string())),
            Err(RequestTokenError::Request(e)) => Err(TokenError::Unavailable(e.to_string())),
            Err(RequestTokenError::Parse(e, body)) => Err(TokenError::Unavailable(format!(
                "unreadable answer ({e}): {}",
                String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
            ))),
            Err(RequestTokenError::Other(e)) => Err(TokenError::Unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifetime_comes_from_expires_at_before_expires_in() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T06:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let in_10 = Some(Duration::from_secs(10));
        assert_eq!(lifetime_of(Some("2026-12-03T07:00:00Z"), in_10, now), Some(Duration::from_secs(3600)));
        assert_eq!(lifetime_of(Some("2026-12-03T07:30:00+01:00"), None, now), Some(Duration::from_secs(1800)));
        assert_eq!(lifetime_of(Some("2026-12-03T05:00:00Z"), None, now), Some(Duration::ZERO), "already expired");
        assert_eq!(lifetime_of(Some("not a date"), in_10, now), in_10);
        assert_eq!(lifetime_of(None, None, now), None);
    }

    #[test]
    fn the_token_answer_reads_expires_at() {
        let answer: Answer = serde_json::from_value(serde_json::json!({
            "access_token": "t", "token_type": "Bearer", "expires_at": "2026-12-03T07:00:00Z"}))
        .unwrap();
        assert_eq!(answer.extra_fields().expires_at.as_deref(), Some("2026-12-03T07:00:00Z"));
        assert_eq!(answer.expires_in(), None);
    }
}
