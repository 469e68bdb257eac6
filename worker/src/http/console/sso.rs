//! "Sign in with the issuer": the console's login by OIDC authorization code
//! with PKCE (S256), state and nonce, against `VBRIDGE_OIDC_ISSUER` as the
//! client `VBRIDGE_OIDC_CLIENT_ID` (with `VBRIDGE_OIDC_CLIENT_SECRET`, sent
//! as HTTP Basic, or none for a public client), coming back to
//! `{VBRIDGE_PUBLIC_URL}/console/login/oidc/callback`.
//!
//! Why the `openidconnect` crate: it is the maintained OIDC client built on
//! the `oauth2` crate the Greenhouse connector already uses (same reqwest);
//! discovery, PKCE, and the ID token's verification (signature against the
//! issuer's JWKS, `iss`, `aud`, `nonce`, `exp`) are its tested code, not a
//! hand-rolled copy.
//!
//! Between the redirect out and the callback nothing is kept on the server:
//! the state, nonce and PKCE verifier ride in a short-lived cookie signed
//! with the session key (`vbridge_oidc`, `Path=/console/login/oidc`,
//! `SameSite=Lax` since the callback is a top-level navigation from the
//! issuer, ten minutes). The callback clears it whatever happens, so a
//! callback URL cannot be replayed with it; the issuer refuses a code twice.
//! The session takes `sub` and the `roles` claim as bearer JWTs do
//! (`oidc::roles_claim`) and ends no later than the ID token's `exp`.

use super::session::{self, SessionKey};
use crate::http::auth::Principal;
use crate::http::oidc::{OidcClient, roles_claim};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, StandardErrorResponse, StandardTokenResponse,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The login cookie of a sign-in under way.
pub const FLOW_COOKIE: &str = "vbridge_oidc";
pub const FLOW_PATH: &str = "/console/login/oidc";
/// How long a sign-in may take at the issuer.
pub const FLOW_SECS: i64 = 600;
/// How long the issuer's discovery document (and its keys) are kept.
const METADATA_FOR: Duration = Duration::from_secs(300);
/// One call to the issuer at most.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The `roles` claim of an ID token, read as bearer JWTs read it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoleClaims {
    #[serde(default)]
    roles: serde_json::Value,
}
impl AdditionalClaims for RoleClaims {}

type Fields = IdTokenFields<
    RoleClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type SsoClient = Client<
    RoleClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The issuer cannot be reached or answered nonsense (503).
    #[error("the identity provider cannot be reached: {0}")]
    Issuer(String),
    /// The sign-in under way is gone or does not match (400).
    #[error("{0}")]
    Flow(String),
    /// The issuer refused the code, or its ID token is not valid (401).
    #[error("the sign-in was refused: {0}")]
    Refused(String),
}

/// A sign-in under way, in its signed cookie.
#[derive(serde::Serialize, serde::Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    exp: i64,
}

pub struct Sso {
    issuer: String,
    client: OidcClient,
    http: reqwest::Client,
    metadata: Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

/// Where to send the browser, and the flow cookie to set.
pub struct Started {
    pub authorize_url: String,
    pub set_cookie: String,
}

impl Sso {
    pub fn new(issuer: String, client: OidcClient) -> Sso {
        let http = reqwest::Client::builder()
            // The issuer's answers are read, never followed elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .expect("building the HTTP client");
        Sso { issuer, client, http, metadata: Mutex::new(None) }
    }

    /// The issuer, as the login page names it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer's discovery document, fetched (no lock held across the
    /// call) and kept for [`METADATA_FOR`].
    async fn client(&self) -> Result<SsoClient, SsoError> {
        let held = self.metadata.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let md = match held.filter(|(_, at)| at.elapsed() < METADATA_FOR) {
            Some((md, _)) => md,
            None => {
                let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| SsoError::Issuer(e.to_string()))?;
                let md = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| SsoError::Issuer(error_chain(&e)))?;
                *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some((md.clone(), Instant::now()));
                md
            }
        };
        let redirect =
            RedirectUrl::new(self.client.redirect_url.clone()).map_err(|e| SsoError::Issuer(e.to_string()))?;
        Ok(SsoClient::from_provider_metadata(
            md,
            ClientId::new(self.client.id.clone()),
            self.client.secret.as_ref().map(|s| ClientSecret::new(s.0.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Start a sign-in: the issuer's authorization URL (PKCE S256, state,
    /// nonce) and the cookie that remembers them.
    pub async fn start(&self, key: &SessionKey, secure: bool, now: i64) -> Result<Started, SsoError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .url();
        let flow = Flow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            exp: now + FLOW_SECS,
        };
        let set_cookie = session::cookie(FLOW_COOKIE, &session::sign(&flow, key), FLOW_PATH, "Lax", FLOW_SECS, secure);
        Ok(Started { authorize_url: url.to_string(), set_cookie })
    }

    /// Finish a sign-in: check the state against the flow cookie, exchange
    /// the code with the PKCE verifier, verify the ID token (signature, iss,
    /// aud, nonce, exp); who it names, and until when (its `exp`).
    pub async fn finish(
        &self,
        flow_cookie: Option<&str>,
        key: &SessionKey,
        code: &str,
        state: &str,
        now: i64,
    ) -> Result<(Principal, i64), SsoError> {
        let flow: Flow = flow_cookie
            .and_then(|v| session::verify(v, key))
            .filter(|f: &Flow| f.exp > now)
            .ok_or_else(|| SsoError::Flow("This sign-in has expired or was not started here; start again.".into()))?;
        if !session::same(&flow.state, state) {
            return Err(SsoError::Flow("The sign-in's state does not match; start again.".into()));
        }
        let client = self.client().await?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Issuer(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier));
        let tokens = request.request_async(&self.http).await.map_err(|e| match e {
            openidconnect::RequestTokenError::ServerResponse(r) => SsoError::Refused(r.to_string()),
            e => SsoError::Issuer(error_chain(&e)),
        })?;
        let id_token = tokens
            .extra_fields()
            .id_token()
            .ok_or_else(|| SsoError::Refused("the issuer returned no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce))
            .map_err(|e| SsoError::Refused(error_chain(&e)))?;
        let subject = claims.subject().as_str().to_owned();
        if subject.trim().is_empty() {
            return Err(SsoError::Refused("the ID token has no subject".into()));
        }
        let roles = roles_claim(&claims.additional_claims().roles);
        Ok((Principal { subject, roles }, claims.expiration().timestamp()))
    }

    /// The `Set-Cookie` that ends the flow cookie.
    pub fn clear_cookie(secure: bool) -> String {
        session::cookie(FLOW_COOKIE, "", FLOW_PATH, "Lax", 0, secure)
    }
}

/// An error and its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        out.push_str(": ");
        out.push_str(&c.to_string());
        next = c.source();
    }
    out
}
