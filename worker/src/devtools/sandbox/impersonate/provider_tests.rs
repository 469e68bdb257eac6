//! The providers' start APIs, through the sandbox's router.

use super::{API_KEY, ProviderSession};
use crate::devtools::sandbox::{Fault, Sandbox};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(s: &Sandbox, req: Request<Body>) -> (StatusCode, Value) {
    let r = s.router().oneshot(req).await.unwrap();
    let status = r.status();
    let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn veriff(key: Option<&str>, body: Value) -> Request<Body> {
    let mut b =
        Request::post("/v1/sessions").header("host", "sandbox.test:9000").header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("x-auth-client", k);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn persona(method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "sandbox.test:9000")
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("content-type", "application/json");
    b.body(body.map_or(Body::empty(), |v| Body::from(v.to_string()))).unwrap()
}

fn sessions(s: &Sandbox) -> Vec<ProviderSession> {
    s.inner.lock().unwrap().providers.clone()
}

#[tokio::test]
async fn veriff_checks_key_and_body_then_creates() {
    let s = Sandbox::default();
    let ok = json!({"verification": {"vendorData": "check-1", "callback": "https://app.test/done"}});
    let (st, v) = call(&s, veriff(None, ok.clone())).await;
    assert_eq!((st, v["status"].as_str(), v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("fail"), Some("1801")));
    let (st, v) = call(&s, veriff(Some("wrong"), ok.clone())).await;
    assert_eq!((st, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("1803")));
    for (body, code) in [
        (json!({}), "1102"),
        (json!({"verification": {"vendorData": 7}}), "1501"),
        (json!({"verification": {"vendorData": "x".repeat(1001)}}), "1500"),
        (json!({"verification": {"endUserId": "not-a-uuid"}}), "1104"),
        (json!({"verification": "x"}), "1104"),
    ] {
        let (st, v) = call(&s, veriff(Some(API_KEY), body.clone())).await;
        assert_eq!((st, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}");
    }
    assert!(sessions(&s).is_empty());

    let (st, v) = call(&s, veriff(Some(API_KEY), ok)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let ver = &v["verification"];
    assert_eq!((v["status"].as_str(), ver["status"].as_str()), (Some("success"), Some("created")));
    assert_eq!(ver["vendorData"], "check-1");
    assert_eq!(ver["host"], "http://sandbox.test:9000");
    let id = ver["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let token = ver["sessionToken"].as_str().unwrap();
    assert_eq!(ver["url"].as_str().unwrap(), format!("http://sandbox.test:9000/veriff/v/{token}"));

    let (st, list) = call(&s, Request::get("/_sandbox/providers/sessions").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list[0]["provider"], "veriff");
    assert_eq!((list[0]["id"].as_str(), list[0]["reference"].as_str()), (Some(id), Some("check-1")));
    assert!(list[0].get("secret").is_none() && list[0].get("template").is_none());

    let page =
        s.router().oneshot(Request::get(format!("/veriff/v/{token}")).body(Body::empty()).unwrap()).await.unwrap();
    let html = axum::body::to_bytes(page.into_body(), 1 << 20).await.unwrap();
    assert!(
        String::from_utf8_lossy(&html).contains(&format!("verification session <code>{id}</code> for <b>check-1</b>"))
    );
}

#[tokio::test]
async fn persona_creates_looks_up_and_links() {
    let s = Sandbox::default();
    let body = |t: &str, r: &str| json!({"data": {"attributes": {"inquiry-template-id": t, "reference-id": r}}});
    let mut unauth = persona("POST", "/api/v1/inquiries", Some(body("itmpl_abc", "app-1")));
    unauth.headers_mut().remove("authorization");
    let (st, v) = call(&s, unauth).await;
    assert_eq!((st, v["errors"][0]["title"].as_str()), (StatusCode::UNAUTHORIZED, Some("Unauthorized")));
    let (st, v) = call(&s, persona("POST", "/api/v1/inquiries", Some(body("tmpl_abc", "app-1")))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["source"]["pointer"], "/data/attributes/inquiry-template-id");
    let (st, _) = call(&s, persona("POST", "/api/v1/inquiries", Some(json!({"attributes": {}})))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(sessions(&s).is_empty());

    let (st, v) = call(&s, persona("POST", "/api/v1/inquiries", Some(body("itmpl_abc", "app-1")))).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("inq_"));
    assert_eq!(v["data"]["type"], "inquiry");
    assert_eq!(v["data"]["attributes"]["status"], "created");
    assert_eq!(v["data"]["attributes"]["reference-id"], "app-1");
    assert!(v["data"]["attributes"]["created-at"].is_string());
    assert_eq!(v["data"]["relationships"]["inquiry-template"]["data"]["id"], "itmpl_abc");
    let (_, other) = call(&s, persona("POST", "/api/v1/inquiries", Some(body("itmpl_abc", "app-2")))).await;
    assert_ne!(other["data"]["relationships"]["account"], v["data"]["relationships"]["account"]);

    let (st, found) = call(&s, persona("GET", "/api/v1/inquiries?filter%5Breference-id%5D=app-1", None)).await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&str> = found["data"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids, vec![id.as_str()]);
    let (_, none) = call(&s, persona("GET", "/api/v1/inquiries?filter[reference-id]=app-9", None)).await;
    assert_eq!(none["data"], json!([]));

    let link_uri = format!("/api/v1/inquiries/{id}/generate-one-time-link");
    let (st, v) = call(&s, persona("POST", &link_uri, None)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["id"], id.as_str());
    let link = v["meta"]["one-time-link"].as_str().unwrap();
    assert!(link.starts_with(&format!("http://sandbox.test:9000/_sandbox/verify/persona/{id}?")), "{link}");
    assert!(v["meta"]["one-time-link-short"].is_string());
    let (st, v) = call(&s, persona("POST", "/api/v1/inquiries/inq_nope/generate-one-time-link", None)).await;
    assert_eq!((st, v["errors"][0]["title"].as_str()), (StatusCode::NOT_FOUND, Some("Record not found")));
    let mine = sessions(&s).into_iter().find(|p| p.id == id).unwrap();
    assert_eq!((mine.links_generated, mine.template.as_deref(), mine.url.as_str()), (1, Some("itmpl_abc"), link));

    // Key-Inflection: snake in, snake out.
    let mut snake = persona(
        "POST",
        "/api/v1/inquiries",
        Some(json!({"data": {"attributes": {"inquiry_template_id": "itmpl_s", "reference_id": "app-3"}}})),
    );
    snake.headers_mut().insert("key-inflection", "snake".parse().unwrap());
    let (st, v) = call(&s, snake).await;
    assert_eq!((st, v["data"]["attributes"]["reference_id"].as_str()), (StatusCode::CREATED, Some("app-3")), "{v}");
}

#[tokio::test]
async fn faults_come_first_and_a_dropped_slow_request_creates_nothing() {
    let s = Sandbox::default();
    let ok = json!({"verification": {"vendorData": "c"}});
    s.inner.lock().unwrap().fault = Some((Fault::Status { status: 503 }, Some(1), Some("/sessions".into())));
    let (st, _) = call(&s, veriff(None, ok.clone())).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "the fault answers before the key is checked");
    s.inner.lock().unwrap().fault = Some((Fault::RetryAfter { seconds: 2 }, Some(1), None));
    let (st, _) = call(&s, persona("GET", "/api/v1/inquiries", None)).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);

    s.inner.lock().unwrap().fault = Some((Fault::Slow { delay_ms: 10_000 }, Some(1), None));
    let router = s.router();
    let pending = tokio::spawn(router.oneshot(veriff(Some(API_KEY), ok)));
    // Abort once the handler has taken the slow fault: it is in the wait.
    while s.inner.lock().unwrap().fault.is_some() {
        tokio::task::yield_now().await;
    }
    pending.abort();
    assert!(pending.await.unwrap_err().is_cancelled());
    assert!(sessions(&s).is_empty(), "the client went away during the wait: no session");
    let logged = s.inner.lock().unwrap().requests.iter().map(|r| r.status).collect::<Vec<_>>();
    assert_eq!(logged, vec![503, 429]);
}

#[tokio::test]
async fn persona_answers_a_repeated_idempotency_key_with_the_first_inquiry_and_keeps_its_tags() {
    let s = Sandbox::default();
    let body = json!({"data": {"attributes": {"inquiry-template-id": "itmpl_std", "reference-id": "c:a",
        "tags": ["st-key-1"]}}});
    let keyed = |b: &Value| {
        Request::post("/api/v1/inquiries")
            .header("host", "sandbox.test:9000")
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "st-key-1")
            .body(Body::from(b.to_string()))
            .unwrap()
    };
    let (st, first) = call(&s, keyed(&body)).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(first["data"]["attributes"]["tags"], json!(["st-key-1"]));
    let (st, again) = call(&s, keyed(&body)).await;
    assert_eq!((st, &again["data"]["id"]), (StatusCode::CREATED, &first["data"]["id"]), "the same inquiry");
    assert_eq!(sessions(&s).len(), 1);
    // Without the key, a second create makes a second inquiry.
    let (_, other) = call(&s, persona("POST", "/api/v1/inquiries", Some(body))).await;
    assert_ne!(other["data"]["id"], first["data"]["id"]);
    assert_eq!(sessions(&s).len(), 2);
}
