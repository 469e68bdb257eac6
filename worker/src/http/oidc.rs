//! OIDC bearer tokens (docs/contract.md §5): a JWT signed by the configured issuer,
//! verified with `jsonwebtoken` against the issuer's JWKS
//! (`VBRIDGE_OIDC_JWKS_URL`): signature, `iss`, `aud`, `exp`/`nbf` (60 s
//! leeway). The subject is `sub`; roles come from the `roles` claim (a list,
//! or one string); names the bridge does not know are ignored.
//!
//! The key set is held by [`Jwks`](super::jwks::Jwks): fetched in a single
//! flight, never under a lock held across the network, its failures and
//! the key ids it lacked remembered (see there), so that a slow issuer or a
//! flood of made-up key ids cannot stall or hammer anything.

use super::auth::{Principal, Role};
use super::jwks::{FETCH_TIMEOUT, Jwks, Missing};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    /// The console's login by authorization code (`VBRIDGE_OIDC_CLIENT_ID`).
    pub client: Option<OidcClient>,
}

/// The bridge as an OIDC client of the issuer (the console's "Sign in").
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub id: String,
    /// None: a public client (PKCE alone).
    pub secret: Option<vbridge_activities::Redacted>,
    /// `{VBRIDGE_PUBLIC_URL}/console/login/oidc/callback`.
    pub redirect_url: String,
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
    keys: Jwks,
}

/// A verified token: who, and until when (its `exp`, Unix seconds).
#[derive(Debug, Clone)]
pub struct Verified {
    pub principal: Principal,
    pub exp: i64,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    roles: serde_json::Value,
}

/// Whether a bearer token has a JWT's shape (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.split('.').all(|p| !p.is_empty())
}

/// The roles a `roles` claim names (a list, or one string); names the bridge
/// does not know are ignored. Bearer JWTs and the console's ID tokens alike.
pub fn roles_claim(claim: &serde_json::Value) -> BTreeSet<Role> {
    let names: Vec<&str> = match claim {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => vec![],
    };
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Oidc {
        let keys = Jwks::new(config.jwks_url.clone(), FETCH_TIMEOUT);
        Oidc { config, keys }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The key a token names, from the cached set.
    async fn key(&self, kid: Option<&str>) -> Result<(DecodingKey, Option<Algorithm>), OidcError> {
        let jwk = self.keys.key(kid).await.map_err(|m| match m {
            Missing::Unknown => {
                OidcError::Invalid(format!("no key {:?} in the issuer's key set", kid.unwrap_or("(none)")))
            }
            Missing::Unavailable(e) => OidcError::Keys(e),
        })?;
        let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::Invalid(e.to_string()))?;
        Ok((key, alg))
    }

    pub async fn verify(&self, token: &str) -> Result<Verified, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| OidcError::Invalid(e.to_string()))?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(OidcError::Invalid("symmetric algorithms are not accepted".into()));
        }
        let (key, alg) = self.key(header.kid.as_deref()).await?;
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
        if data.claims.sub.trim().is_empty() {
            return Err(OidcError::Invalid("the token has no subject".into()));
        }
        let roles = roles_claim(&data.claims.roles);
        Ok(Verified { principal: Principal { subject: data.claims.sub, roles }, exp: data.claims.exp })
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
