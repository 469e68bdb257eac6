//! OAuth2 client credentials with a token cache, through the `oauth2` crate
//! (maintained, RFC 6749 and its error responses done right: HTTP Basic with
//! the form-encoded client id and secret, `grant_type=client_credentials`).
//!
//! The token is fetched on first use, kept, refreshed shortly before it
//! expires, and refreshed once when the API answers 401 (a revoked or
//! rotated token). One refresh at a time: callers that find the token they
//! hold already replaced take the new one.

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, RequestTokenError, TokenResponse, TokenUrl};
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
}

pub struct TokenSource {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    token_url: String,
    /// Extra form parameters (Greenhouse: `sub` = the user id).
    extra: Vec<(String, String)>,
    cache: tokio::sync::Mutex<Option<(String, Instant)>>,
}

/// Lifetime assumed when the endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        client_id: String,
        client_secret: String,
        token_url: String,
        extra: Vec<(String, String)>,
    ) -> TokenSource {
        TokenSource { http, client_id, client_secret, token_url, extra, cache: Default::default() }
    }

    /// A token good for a while yet.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, refresh_at)) = cache.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let fresh = self.fetch().await?;
        *cache = Some(fresh.clone());
        Ok(fresh.0)
    }

    /// The API refused `stale`: a new token, unless another caller already
    /// replaced it.
    pub async fn refresh(&self, stale: &str) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, _)) = cache.as_ref()
            && token != stale
        {
            return Ok(token.clone());
        }
        let fresh = self.fetch().await?;
        *cache = Some(fresh.clone());
        Ok(fresh.0)
    }

    async fn fetch(&self) -> Result<(String, Instant), TokenError> {
        let url = TokenUrl::new(self.token_url.clone()).map_err(|e| TokenError::Refused(format!("token URL: {e}")))?;
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_token_uri(url);
        let mut req = client.exchange_client_credentials();
        for (k, v) in &self.extra {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        match req.request_async(&self.http).await {
            Ok(resp) => {
                let lifetime = resp.expires_in().unwrap_or(DEFAULT_LIFETIME);
                // Refresh a tenth of the lifetime early (at most a minute).
                let early = (lifetime / 10).min(Duration::from_secs(60));
                tracing::info!(lifetime_s = lifetime.as_secs(), "OAuth2 token issued");
                Ok((resp.access_token().secret().clone(), Instant::now() + lifetime - early))
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
