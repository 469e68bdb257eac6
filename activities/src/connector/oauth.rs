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
//! - a token refused with a 401 is not replaced at once: from the first 401
//!   on, callers are held ([`TokenError::Contended`]) for the quiet period
//!   plus a random jitter, and the first call after it takes a new token.
//!   The worker that took the credential keeps it for a quiet period; the
//!   workers take turns instead of revoking each other on every request,
//!   and each takes at most one token per quiet period (docs/connectors.md
//!   explains why not one holder per deployment). A lone worker whose token
//!   was revoked pays one quiet period.

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
    /// Our token was refused less than the quiet period ago: another holder
    /// of the credential has taken a new one. Call again after the delay (a
    /// new token is taken then).
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

/// The token held, when to replace it, and when it was first refused.
struct Held {
    token: String,
    refresh_at: Instant,
    refused_at: Option<Instant>,
}

pub struct TokenSource {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    token_url: String,
    /// Extra form parameters (Greenhouse: `sub` = the user id).
    extra: Vec<(String, String)>,
    /// How long a refused token is waited on (see the module comment).
    quiet: Duration,
    cache: tokio::sync::Mutex<Option<Held>>,
}

/// Lifetime assumed when the endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The longest a token is kept, whatever its expiry says.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

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

    /// How long a refused token is waited on before a new one is taken.
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
    /// its place; a new one once the quiet period since the first refusal
    /// is over; until then [`TokenError::Contended`].
    pub async fn refresh(&self, stale: &str) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(held) = cache.as_mut() {
            if held.token != stale {
                return Ok(held.token.clone());
            }
            let now = Instant::now();
            let ready = *held.refused_at.get_or_insert(now) + self.quiet;
            if now < ready {
                // Taken back by the first call after the quiet period.
                held.refresh_at = held.refresh_at.min(ready);
                let wait = ready - now + jitter(self.quiet / 2);
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "OAuth2 token refused (replaced elsewhere?): holding"
                );
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
                        .unwrap_or(DEFAULT_LIFETIME)
                        .min(MAX_LIFETIME);
                // Refresh a tenth of the lifetime early (at most a minute).
                let early = (lifetime / 10).min(Duration::from_secs(60));
                tracing::info!(lifetime_s = lifetime.as_secs(), "OAuth2 token issued");
                let refresh_at = Instant::now() + lifetime - early;
                Ok(Held { token: resp.access_token().secret().clone(), refresh_at, refused_at: None })
            }
            Err(RequestTokenError::ServerResponse(e)) => Err(TokenError::Refused(e.to_string())),
            Err(RequestTokenError::Request(e)) => Err(TokenError::Unavailable(e.to_string())),
            // Neither the body nor serde's message (which quotes the value it
            // choked on) may leave: a token endpoint's answer holds the token.
            // Only where it failed and how long it was.
            Err(RequestTokenError::Parse(e, body)) => {
                Err(TokenError::Unavailable(unreadable(&e.path().to_string(), body.len())))
            }
            Err(RequestTokenError::Other(e)) => Err(TokenError::Unavailable(e)),
        }
    }
}

/// What an unreadable token answer is reported as: never its content.
fn unreadable(path: &str, len: usize) -> String {
    format!(
        "the token endpoint's answer is not a token response (at `{path}`, {len} bytes; not shown: it may hold a token)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_token_answer_is_reported_without_its_content() {
        let body = br#"{"access_token":"tok-SECRET-123","token_type":"Bearer","expires_in":"soon"}"#;
        let mut de = serde_json::Deserializer::from_slice(body);
        let e = serde_path_to_error::deserialize::<_, Answer>(&mut de).unwrap_err();
        assert!(e.to_string().contains("soon"), "serde's own message quotes the value: {e}");
        let shown = unreadable(&e.path().to_string(), body.len());
        assert!(!shown.contains("tok-SECRET") && !shown.contains("soon"), "{shown}");
        assert!(shown.contains("expires_in"), "where it failed is kept: {shown}");
    }

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

    /// A token endpoint answering `t1`, `t2`, ... (Harvest v3's shape), and
    /// how many it issued.
    async fn token_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let issued = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = issued.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                    // The request: its headers, then Content-Length bytes.
                    loop {
                        let n = conn.read(&mut buf).await.unwrap_or(0);
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_lowercase();
                        let done = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                            let len = head.lines().find_map(|l| l.strip_prefix("content-length:"));
                            body.len() >= len.and_then(|l| l.trim().parse().ok()).unwrap_or(0)
                        });
                        if n == 0 || done {
                            break;
                        }
                    }
                    let i = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let body = format!(
                        r#"{{"access_token":"t{i}","token_type":"Bearer","expires_at":"2999-01-01T00:00:00Z"}}"#
                    );
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        (url, issued)
    }

    fn source(url: String, quiet: Duration) -> TokenSource {
        TokenSource::new(reqwest::Client::new(), "id".into(), "secret".into(), url, vec![], quiet)
    }

    #[tokio::test]
    async fn a_refused_token_is_held_for_the_quiet_period_not_replaced() {
        use std::sync::atomic::Ordering;
        let (url, issued) = token_endpoint().await;
        let tokens = source(url, Duration::from_secs(3600));
        assert_eq!(tokens.token().await.unwrap(), "t1");
        // Another holder took a token: every caller holding t1 is told to
        // wait, and none takes a new one (no storm).
        let refused = futures::future::join_all((0..10).map(|_| tokens.refresh("t1"))).await;
        for r in refused {
            assert!(matches!(r, Err(TokenError::Contended(d)) if d >= Duration::from_secs(3500)), "{r:?}");
        }
        assert_eq!(issued.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn after_the_quiet_period_a_refused_token_is_replaced_once_for_every_caller() {
        use std::sync::atomic::Ordering;
        let (url, issued) = token_endpoint().await;
        let tokens = source(url, Duration::ZERO);
        assert_eq!(tokens.token().await.unwrap(), "t1");
        // Single flight: the first caller takes t2, the others find it.
        let fresh = futures::future::join_all((0..10).map(|_| tokens.refresh("t1"))).await;
        assert!(fresh.iter().all(|t| t.as_deref() == Ok("t2")), "{fresh:?}");
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        assert_eq!(tokens.token().await.unwrap(), "t2", "kept: expires_at is far");
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
