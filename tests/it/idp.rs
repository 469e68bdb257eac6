//! A small, real OpenID provider for the console's sign-in tests, over real
//! HTTP on port 0: discovery (`/.well-known/openid-configuration`), the key
//! set (the test issuer's public key, `tests/fixtures/oidc`), `/authorize`
//! (signs in one configured user at once and redirects back with a code),
//! and `/token`, which is strict: client authentication by HTTP Basic, the
//! code once only, the same redirect URI, and the PKCE verifier against the
//! S256 challenge. The ID token is RS256-signed with the fixture key.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/oidc");
pub const CLIENT_ID: &str = "vbridge-console";
pub const CLIENT_SECRET: &str = "it-client-secret";
/// How long the ID tokens it issues last.
pub const ID_TOKEN_SECS: i64 = 600;

/// Who signs in, and the redirect URI registered for the client.
#[derive(Clone)]
pub struct IdpConfig {
    pub subject: String,
    pub roles: Vec<String>,
    pub redirect_uri: String,
}

struct Grant {
    challenge: String,
    nonce: String,
    redirect_uri: String,
    used: bool,
}

struct Idp {
    issuer: String,
    config: IdpConfig,
    codes: Mutex<HashMap<String, Grant>>,
    /// Every token request, as the answer's status.
    pub token_answers: Mutex<Vec<u16>>,
}

pub struct RunningIdp {
    pub issuer: String,
    state: Arc<Idp>,
}

impl RunningIdp {
    /// The statuses `/token` answered, in order.
    pub fn token_answers(&self) -> Vec<u16> {
        self.state.token_answers.lock().unwrap().clone()
    }
}

pub async fn start(config: IdpConfig) -> RunningIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let state =
        Arc::new(Idp { issuer: issuer.clone(), config, codes: Default::default(), token_answers: Default::default() });
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    RunningIdp { issuer, state }
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Response {
    let i = &idp.issuer;
    axum::Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid"],
    }))
    .into_response()
}

async fn jwks() -> Response {
    let body = std::fs::read_to_string(format!("{FIXTURES}/jwks.json")).unwrap();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn refuse(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": error}))).into_response()
}

/// The configured user signs in at once; back to the client with a code.
async fn authorize(State(idp): State<Arc<Idp>>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type != "code" || q.client_id != CLIENT_ID || q.redirect_uri != idp.config.redirect_uri {
        return refuse("invalid_request");
    }
    if !q.scope.split(' ').any(|s| s == "openid") {
        return refuse("invalid_scope");
    }
    let (Some(challenge), Some("S256"), Some(nonce)) = (q.code_challenge, q.code_challenge_method.as_deref(), q.nonce)
    else {
        return refuse("invalid_request");
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    idp.codes
        .lock()
        .unwrap()
        .insert(code.clone(), Grant { challenge, nonce, redirect_uri: q.redirect_uri.clone(), used: false });
    let state = percent_encoding::utf8_percent_encode(&q.state, percent_encoding::NON_ALPHANUMERIC);
    Redirect::to(&format!("{}?code={code}&state={state}", q.redirect_uri)).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
}

async fn token(State(idp): State<Arc<Idp>>, headers: HeaderMap, Form(f): Form<TokenForm>) -> Response {
    let resp = issue(&idp, &headers, f);
    idp.token_answers.lock().unwrap().push(resp.status().as_u16());
    resp
}

fn issue(idp: &Idp, headers: &HeaderMap, f: TokenForm) -> Response {
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    if f.grant_type != "authorization_code" {
        return refuse("unsupported_grant_type");
    }
    let mut codes = idp.codes.lock().unwrap();
    let Some(grant) = codes.get_mut(&f.code) else { return refuse("invalid_grant") };
    if grant.used {
        return refuse("invalid_grant");
    }
    // A code is spent by its first use, whatever follows.
    grant.used = true;
    if grant.redirect_uri != f.redirect_uri {
        return refuse("invalid_grant");
    }
    let Some(verifier) = f.code_verifier else { return refuse("invalid_grant") };
    if URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return refuse("invalid_grant");
    }
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": idp.issuer, "aud": CLIENT_ID, "sub": idp.config.subject, "roles": idp.config.roles,
        "nonce": grant.nonce, "iat": now, "exp": now + ID_TOKEN_SECS,
    });
    let pem = std::fs::read(format!("{FIXTURES}/test-issuer-key.pem")).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("it-key-1".into());
    let id_token = jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap();
    axum::Json(json!({
        "access_token": uuid::Uuid::new_v4().simple().to_string(),
        "token_type": "Bearer",
        "expires_in": ID_TOKEN_SECS,
        "id_token": id_token,
    }))
    .into_response()
}
