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

/// A server that accepts connections and never answers; how many it took.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (url, accepted)
}

/// `n` requests at once, each with a JWT naming a key id of its own; their
/// statuses and error codes, and how long the slowest took.
async fn made_up_kids(app: &TestApp, n: usize, tag: &str) -> (Vec<(u16, String)>, std::time::Duration) {
    let start = std::time::Instant::now();
    let calls = (0..n).map(|i| {
        let t = token("other-key.pem", &format!("{tag}-{i}"), claims("x", json!(["reviewer"]), AUDIENCE, 300));
        async move {
            let r = app.get_as("/v1/reviews", Some(&t)).await;
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap()["error"]["code"].as_str().unwrap().to_owned())
        }
    });
    let answers = futures::future::join_all(calls).await;
    (answers, start.elapsed())
}

#[tokio::test]
async fn an_issuer_that_never_answers_costs_one_connection_and_stalls_no_request() {
    let (jwks_url, accepted) = silent_server().await;
    let mut app = TestApp::spawn_with(
        "oidc-silent",
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
    // 40 at once: one fetch for all of them, answered 503 within about the
    // fetch's 5 s bound (before: 23 connections, some waited 30 s and more).
    let (answers, took) = made_up_kids(&app, 40, "flood").await;
    assert!(answers.iter().all(|(s, c)| *s == 503 && c == "unavailable"), "{answers:?}");
    assert!(took < std::time::Duration::from_secs(8), "the slowest took {took:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for 40 requests");
    // The failure is remembered (2 s backoff): the next ones are answered at once.
    let (answers, took) = made_up_kids(&app, 40, "again").await;
    assert!(answers.iter().all(|(s, _)| *s == 503), "{answers:?}");
    assert!(took < std::time::Duration::from_millis(1500), "answered from the remembered failure: {took:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // Configured tokens never wait on the issuer.
    assert_eq!(app.get_as("/v1/reviews", Some(crate::harness::REVIEWER_TOKEN)).await.status(), 200);

    // The request timeout of /v1 and /console: with a bound under the
    // fetch's, a request stuck on the issuer is answered at the bound.
    app.kill_bridge();
    app.start_bridge(&[("VBRIDGE_API_REQUEST_TIMEOUT_MS", "1000")]).await;
    let (answers, took) = made_up_kids(&app, 3, "bounded").await;
    assert!(answers.iter().all(|(s, c)| *s == 503 && c == "unavailable"), "{answers:?}");
    assert!(took < std::time::Duration::from_millis(3000), "answered at the 1 s bound: {took:?}");
    let jwt = token("other-key.pem", "console-kid", claims("x", json!(["reviewer"]), AUDIENCE, 300));
    let mut b = crate::console_login::Browser::default();
    let start = std::time::Instant::now();
    let r = b.login(&app.bridge_url, &jwt).await;
    assert_eq!(r.status, 503, "the console too: {}", r.body);
    assert!(start.elapsed() < std::time::Duration::from_millis(3000), "{:?}", start.elapsed());
}

#[tokio::test]
async fn a_console_session_ends_with_the_oidc_token_it_was_made_from() {
    let (jwks_url, _) = jwks_server().await;
    let app = TestApp::spawn_with(
        "oidc-session",
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
    let life = 4;
    let jwt = token("test-issuer-key.pem", "it-key-1", claims("short@idp", json!(["reviewer"]), AUDIENCE, life));
    let mut b = crate::console_login::Browser::default();
    let start = std::time::Instant::now();
    assert_eq!(b.login(&app.bridge_url, &jwt).await.status, 303);
    let cookie = b.set_cookie("vbridge_session").to_owned();
    let max_age: i64 = cookie.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!(max_age <= life, "the cookie lasts as long as the token: {cookie}");
    let reviews = format!("{}/console/reviews", app.bridge_url);
    let first = b.get(&reviews).await;
    assert!(
        first.status == 200 || start.elapsed() >= std::time::Duration::from_secs(life as u64),
        "the session works while the token does"
    );
    // The token's end is the session's: the page sends the browser to the login.
    app.wait_for("the session to end with its token", std::time::Duration::from_secs(20), || {
        let mut b = crate::console_login::Browser::with_cookies(b.cookies.clone());
        let reviews = reviews.clone();
        async move { (b.get(&reviews).await.location.as_deref() == Some("/console/login")).then_some(()) }
    })
    .await;
    assert!(start.elapsed() < std::time::Duration::from_secs(life as u64 + 10), "not 8 hours");
}

/// The query parameter `name` of a URL.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8().unwrap().into_owned())
}

/// One sign-in up to the issuer's redirect back: the browser (with its
/// flow cookie) and the callback's code and state.
async fn to_the_callback(app: &TestApp) -> (crate::console_login::Browser, String, String) {
    let mut b = crate::console_login::Browser::default();
    let out = b.get(&format!("{}/console/login/oidc", app.bridge_url)).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let authorize = out.location.unwrap();
    assert_eq!(param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    assert!(param(&authorize, "nonce").is_some() && param(&authorize, "state").is_some());
    assert!(b.set_cookie("vbridge_oidc").contains("SameSite=Lax"));
    let back = b.get(&authorize).await;
    assert_eq!(back.status, 303, "the issuer redirects back: {}", back.body);
    let back = back.location.unwrap();
    assert!(back.starts_with("http://console.example/console/login/oidc/callback?"), "{back}");
    (b, param(&back, "code").unwrap(), param(&back, "state").unwrap())
}

fn callback(app: &TestApp, code: &str, state: &str) -> String {
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!("{}/console/login/oidc/callback?code={}&state={}", app.bridge_url, enc(code), enc(state))
}

#[tokio::test]
async fn reviewers_sign_in_with_the_issuer_by_code_and_pkce_and_forged_callbacks_are_refused() {
    let idp = crate::idp::start(crate::idp::IdpConfig {
        subject: "rita@idp".into(),
        roles: vec!["reviewer".into()],
        redirect_uri: "http://console.example/console/login/oidc/callback".into(),
    })
    .await;
    let secret_file = std::env::temp_dir().join(format!("vbridge-oidc-secret-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&secret_file, crate::idp::CLIENT_SECRET).unwrap();
    let app = TestApp::spawn_with(
        "oidc-sign-in",
        Options {
            extra_env: vec![
                ("VBRIDGE_OIDC_ISSUER".into(), idp.issuer.clone()),
                ("VBRIDGE_OIDC_AUDIENCE".into(), crate::idp::CLIENT_ID.into()),
                ("VBRIDGE_OIDC_JWKS_URL".into(), format!("{}/jwks", idp.issuer)),
                ("VBRIDGE_OIDC_CLIENT_ID".into(), crate::idp::CLIENT_ID.into()),
                ("VBRIDGE_OIDC_CLIENT_SECRET_FILE".into(), secret_file.display().to_string()),
                ("VBRIDGE_PUBLIC_URL".into(), "http://console.example".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let login = crate::console_login::Browser::default().get(&format!("{}/console/login", app.bridge_url)).await;
    assert!(login.body.contains(&format!("Sign in with {}", idp.issuer)), "{}", login.body);

    // The whole way: redirect out, the issuer's redirect back, the session.
    let (mut b, code, state) = to_the_callback(&app).await;
    let flow_cookie = b.cookies.clone();
    let done = b.get(&callback(&app, &code, &state)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(b.cookies.contains_key("vbridge_session") && !b.cookies.contains_key("vbridge_oidc"));
    let session = b.set_cookie("vbridge_session").to_owned();
    let max_age: i64 = session.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!(max_age <= crate::idp::ID_TOKEN_SECS, "no longer than the ID token: {session}");
    let queue = b.get(&format!("{}/console/reviews", app.bridge_url)).await;
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains("rita@idp (reviewer)"), "the ID token's sub and roles: {}", queue.body);
    assert_eq!(idp.token_answers(), vec![200]);

    // The same callback again, with the flow cookie it had: the issuer
    // refuses the spent code, and no session comes of it.
    let mut replay = crate::console_login::Browser::with_cookies(flow_cookie);
    let r = replay.get(&callback(&app, &code, &state)).await;
    assert_eq!(r.status, 401, "a replayed code: {}", r.body);
    assert!(!replay.cookies.contains_key("vbridge_session"));

    // A state that is not the flow cookie's: refused before the code is spent.
    let (mut b, code, state) = to_the_callback(&app).await;
    let r = b.get(&callback(&app, &code, &format!("{state}x"))).await;
    assert_eq!(r.status, 400, "a wrong state: {}", r.body);
    assert!(!b.cookies.contains_key("vbridge_session"));
    // No flow cookie at all (a callback link sent to someone else).
    let r = crate::console_login::Browser::default().get(&callback(&app, &code, &state)).await;
    assert_eq!(r.status, 400, "no sign-in under way: {}", r.body);
    assert_eq!(idp.token_answers().len(), 2, "neither reached the issuer");

    // Another sign-in's code with this one's state and verifier: the PKCE
    // verifier does not match that code's challenge, and the issuer says so.
    let (_, stolen_code, _) = to_the_callback(&app).await;
    let (mut b, _, own_state) = to_the_callback(&app).await;
    let r = b.get(&callback(&app, &stolen_code, &own_state)).await;
    assert_eq!(r.status, 401, "a wrong PKCE verifier: {}", r.body);
    assert!(!b.cookies.contains_key("vbridge_session"));
    assert_eq!(idp.token_answers().last(), Some(&400));
    std::fs::remove_file(secret_file).ok();
}
