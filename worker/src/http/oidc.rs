//! OIDC bearer tokens (docs/contract.md §5): a JWT signed by the configured issuer,
//! verified with `jsonwebtoken` against the issuer's JWKS
//! (`VBRIDGE_OIDC_JWKS_URL`): signature, `iss`, `aud`, `exp`/`nbf` (60 s
//! leeway). The subject is `sub`; roles come from the `roles` claim (a list,
//! or one string); names the bridge does not know are ignored.
//!
//! The key set is fetched on first use and again when a token names a key
//! it does not hold (the issuer rotated), at most once per
//! [`REFETCH_AFTER`], so a flood of made-up key ids cannot hammer the issuer.

use super::auth::{Principal, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The soonest the key set is fetched again after a fetch.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// The largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the token is not a valid JWT of the issuer: {0}")]
    Invalid(String),
    #[error("the issuer's keys cannot be fetched: {0}")]
    Keys(String),
}

pub struct Oidc {
    config: OidcConfig,
    client: reqwest::Client,
    keys: Mutex<(Option<JwkSet>, Option<Instant>)>,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: serde_json::Value,
}

/// Whether a bearer token has a JWT's shape (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.split('.').all(|p| !p.is_empty())
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Oidc {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("building the HTTP client");
        Oidc { config, client, keys: Mutex::new((None, None)) }
    }

    async fn fetch(&self) -> Result<JwkSet, OidcError> {
        let keys = |e: String| OidcError::Keys(e);
        let resp = self.client.get(&self.config.jwks_url).send().await.map_err(|e| keys(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(keys(format!("HTTP {}", resp.status())));
        }
        let bytes = resp.bytes().await.map_err(|e| keys(e.to_string()))?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(keys(format!("the key set is over {MAX_JWKS_BYTES} bytes")));
        }
        serde_json::from_slice(&bytes).map_err(|e| keys(format!("not a JWKS document: {e}")))
    }

    /// The key a token names, fetching the set when it is not held.
    async fn key(&self, kid: Option<&str>) -> Result<(DecodingKey, Option<Algorithm>), OidcError> {
        let mut held = self.keys.lock().await;
        for attempt in 0..2 {
            if let Some(set) = &held.0 {
                let jwk = match kid {
                    Some(k) => set.find(k),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                };
                if let Some(jwk) = jwk {
                    let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
                    let key = DecodingKey::from_jwk(jwk).map_err(|e| OidcError::Invalid(e.to_string()))?;
                    return Ok((key, alg));
                }
            }
            let recent = held.1.is_some_and(|t| t.elapsed() < REFETCH_AFTER);
            if attempt == 1 || (held.0.is_some() && recent) {
                break;
            }
            let set = self.fetch().await?;
            *held = (Some(set), Some(Instant::now()));
        }
        Err(OidcError::Invalid(format!("no key {:?} in the issuer's key set", kid.unwrap_or("(none)"))))
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let (key, alg) = self.key(header.kid.as_deref()).await?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(OidcError::Invalid("symmetric algorithms are not accepted".into()));
        }
        if alg.is_some_and(|a| a != header.alg) {
            return Err(OidcError::Invalid("the token's algorithm is not its key's".into()));
        }
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // `nbf` too (jsonwebtoken leaves it unchecked by default): a token
        // minted for later is not good yet. Both bounds take a minute of
        // leeway for clock skew between the issuer and the bridge.
        v.validate_nbf = true;
        v.leeway = 60;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let names: Vec<String> = match data.claims.roles {
            serde_json::Value::String(s) => vec![s],
            serde_json::Value::Array(a) => a.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => vec![],
        };
        let roles: BTreeSet<Role> = names.iter().filter_map(|n| n.parse().ok()).collect();
        if data.claims.sub.trim().is_empty() {
            return Err(OidcError::Invalid("the token has no subject".into()));
        }
        Ok(Principal { subject: data.claims.sub, roles })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_part_tokens_are_taken_for_jwts() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("it-ops-token"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
