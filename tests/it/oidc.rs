//! OIDC JWTs on the operator API, verified against a real JWKS endpoint
//! (a local HTTP server serving the test issuer's public key).

use crate::harness::{Options, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/oidc");
const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "vbridge-it";

/// A JWKS endpoint over real HTTP; its URL and how often it was read.
async fn jwks_server() -> (String, Arc<AtomicUsize>) {
    let jwks = std::fs::read_to_string(format!("{FIXTURES}/jwks.json")).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            let body = jwks.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

fn token(key_file: &str, kid: &str, claims: serde_json::Value) -> String {
    let pem = std::fs::read(format!("{FIXTURES}/{key_file}")).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

/// `claims` that become valid `in_s` seconds from now (`nbf`).
fn not_before(mut claims: serde_json::Value, in_s: i64) -> serde_json::Value {
    claims["nbf"] = json!(claims["iat"].as_i64().unwrap() + in_s);
    claims
}

fn claims(sub: &str, roles: serde_json::Value, aud: &str, exp_in: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": aud, "sub": sub, "roles": roles, "iat": now, "exp": now + exp_in})
}

#[tokio::test]
async fn oidc_tokens_of_the_issuer_carry_their_roles_and_others_are_refused() {
    let (jwks_url, hits) = jwks_server().await;
    let app = TestApp::spawn_with(
        "oidc",
        Options {
            extra_env: vec![
                ("VBRIDGE_OIDC_ISSUER".into(), ISSUER.into()),
                ("VBRIDGE_OIDC_AUDIENCE".into(), AUDIENCE.into()),
                ("VBRIDGE_OIDC_JWKS_URL".into(), jwks_url),
            ],
            ..Default::default()
        },
    )
    .await;
    let reviewer = token("test-issuer-key.pem", "it-key-1", claims("rita@idp", json!(["reviewer"]), AUDIENCE, 300));
    assert_eq!(app.get_as("/v1/reviews", Some(&reviewer)).await.status(), 200);
    // The role comes from the claim: a reviewer cannot override.
    let r = app
        .post_as("/v1/verifications/c/a/override", Some(&reviewer), None, &json!({"to": "failed", "reason_code": "x"}))
        .await;
    assert_eq!(r.status(), 403);
    let auditor = token("test-issuer-key.pem", "it-key-1", claims("al@idp", json!("auditor"), AUDIENCE, 300));
    assert_eq!(app.get_as("/v1/reviews", Some(&auditor)).await.status(), 200, "one role as a string");
    assert_eq!(app.get_as("/metrics", Some(&auditor)).await.status(), 403);

    // Refused: another audience, expired, signed by a key not in the set, unsigned.
    for (what, bad) in [
        ("audience", token("test-issuer-key.pem", "it-key-1", claims("x", json!(["reviewer"]), "other", 300))),
        ("expired", token("test-issuer-key.pem", "it-key-1", claims("x", json!(["reviewer"]), AUDIENCE, -3600))),
        ("foreign key", token("other-key.pem", "it-key-1", claims("x", json!(["reviewer"]), AUDIENCE, 300))),
        ("unknown kid", token("other-key.pem", "rogue", claims("x", json!(["reviewer"]), AUDIENCE, 300))),
        (
            "not yet valid",
            token(
                "test-issuer-key.pem",
                "it-key-1",
                not_before(claims("x", json!(["reviewer"]), AUDIENCE, 7200), 3600),
            ),
        ),
    ] {
        let r = app.get_as("/v1/reviews", Some(&bad)).await;
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "unauthenticated");
    }
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("x", json!(["admin"]), AUDIENCE, 300),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(app.get_as("/v1/reviews", Some(&hs)).await.status(), 401, "no symmetric algorithm");
    // Within the minute of leeway for clock skew, a token is good already.
    let skewed =
        token("test-issuer-key.pem", "it-key-1", not_before(claims("sk", json!("auditor"), AUDIENCE, 300), 30));
    assert_eq!(app.get_as("/v1/reviews", Some(&skewed)).await.status(), 200, "nbf within the leeway");
    // Configured tokens still work beside OIDC.
    assert_eq!(app.get_as("/v1/reviews", Some(crate::harness::REVIEWER_TOKEN)).await.status(), 200);
    // One fetch, then at most one more for the unknown kid.
    assert!(hits.load(Ordering::Relaxed) <= 2, "the key set was fetched {} times", hits.load(Ordering::Relaxed));
}
