//! The real providers end to end (docs/contract.md §7, docs/providers.md):
//! each vendor's body shape, signed as the vendor signs, on its own route,
//! through the real bridge, the real Temporal and the sandbox ATS.

mod custom;
mod notices;
mod reasons;
mod tools;
mod vendor_libs;

use crate::harness::{Options, REVIEWER_TOKEN, TestApp, at};
use crate::replay::history_json;
use std::time::Duration;
use vbridge::devtools::client::Reply;
use vbridge::devtools::providers::{Outcome, PII, Signer, body};
use vbridge_core::domain::workflow_id;
use vbridge_core::intake::providers::ProviderKind;

const WAIT: Duration = Duration::from_secs(60);
const PERSONA_SECRET: &str = "wbhsec_it-persona";
const ONFIDO_TOKEN: &str = "it-onfido-token";
const VERIFF_SECRET: &str = "it-veriff-shared";
const VERIFF_API_KEY: &str = "it-veriff-api-key";
const SUMSUB_SECRET: &str = "it-sumsub-secret";

fn signer(kind: ProviderKind) -> Signer {
    let secret = match kind {
        ProviderKind::Persona => PERSONA_SECRET,
        ProviderKind::Onfido => ONFIDO_TOKEN,
        ProviderKind::Veriff => VERIFF_SECRET,
        ProviderKind::Sumsub => SUMSUB_SECRET,
        ProviderKind::Custom => unreachable!("declared providers: providers::custom"),
    };
    Signer::new(kind, secret, VERIFF_API_KEY)
}

/// A bridge with the given providers configured (old secrets first: rotation).
pub(crate) async fn spawn(name: &str, kinds: &[ProviderKind]) -> TestApp {
    let mut extra_env = vec![];
    for kind in kinds {
        let (var, secret) = match kind {
            ProviderKind::Persona => ("VBRIDGE_PERSONA_WEBHOOK_SECRETS", PERSONA_SECRET),
            ProviderKind::Onfido => ("VBRIDGE_ONFIDO_WEBHOOK_TOKENS", ONFIDO_TOKEN),
            ProviderKind::Veriff => ("VBRIDGE_VERIFF_SHARED_SECRETS", VERIFF_SECRET),
            ProviderKind::Sumsub => ("VBRIDGE_SUMSUB_WEBHOOK_SECRETS", SUMSUB_SECRET),
            ProviderKind::Custom => unreachable!("declared providers: providers::custom"),
        };
        extra_env.push((var.to_owned(), format!("old-{secret},{secret}")));
        if *kind == ProviderKind::Veriff {
            extra_env.push(("VBRIDGE_VERIFF_API_KEY".to_owned(), VERIFF_API_KEY.to_owned()));
        }
    }
    TestApp::spawn_with(name, Options { extra_env, ..Default::default() }).await
}

pub(crate) async fn send(
    app: &TestApp,
    kind: ProviderKind,
    outcome: Outcome,
    c: &str,
    a: &str,
    n: u32,
    minutes: i64,
) -> Reply {
    let b = body(kind, outcome, &format!("{c}:{a}"), &check_id(c), n, &at(minutes));
    signer(kind).send(&app.http, &app.bridge_url, &b).await.unwrap()
}

/// The provider's id of the candidate's verification.
fn check_id(c: &str) -> String {
    format!("chk-{}", c.replace(['-', '_'], ""))
}

/// Started, then verified / needs review / failed, each for its own
/// candidate; needs review lands in the review queue.
async fn started_then_each_decision(kind: ProviderKind) {
    let name = kind.as_str();
    let app = spawn(&format!("providers-{name}"), &[kind]).await;
    let a = "app-1";
    let rows = [
        ("v", Outcome::Verified, "verified"),
        ("r", Outcome::NeedsReview, "needs_review"),
        ("f", Outcome::Failed, "failed"),
    ];
    for (suffix, outcome, _) in rows {
        let c = format!("cand-{name}-{suffix}");
        let r = send(&app, kind, Outcome::Started, &c, a, 1, -10).await;
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{name} started: {:?}", r.body);
        // Veriff's event webhook carries no time (its receipt time stands
        // in), so the decision is timed after it, as it is in life.
        let r = send(&app, kind, outcome, &c, a, 2, 0).await;
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{name} {outcome:?}: {:?}", r.body);
        let key = r.body["event_id"].as_str().unwrap();
        assert!(key.starts_with(&format!("{name}:")), "the event key is the provider's: {key}");
    }
    for (suffix, _, state) in rows {
        let view = app.wait_synced(&format!("cand-{name}-{suffix}"), a, state).await;
        assert_eq!(view.state, state);
    }
    let c = format!("cand-{name}-r");
    let listing: serde_json::Value = app
        .wait_for("the needs-review candidate in the review queue", WAIT, || async {
            let r = app.get_as("/v1/reviews", Some(REVIEWER_TOKEN)).await;
            let v: serde_json::Value = r.json().await.ok()?;
            v.to_string().contains(&c).then_some(v)
        })
        .await;
    assert!(!listing.to_string().contains(&format!("cand-{name}-v")), "only the needs-review candidate is queued");
    let writes = app.writes().await;
    assert!(
        writes.iter().any(|w| w.fields["verification_state"] == "failed"),
        "the failed decision reached the ATS: {writes:?}"
    );
    let metrics = app.metrics().await;
    let line = format!("vbridge_provider_webhook_requests_total{{provider=\"{name}\",result=\"accepted\"}} 6");
    assert!(metrics.contains(&line), "metrics by provider: {line} not in\n{metrics}");
}

#[tokio::test]
async fn persona_started_verified_needs_review_failed() {
    started_then_each_decision(ProviderKind::Persona).await;
}

#[tokio::test]
async fn onfido_started_verified_needs_review_failed() {
    started_then_each_decision(ProviderKind::Onfido).await;
}

#[tokio::test]
async fn veriff_started_verified_needs_review_failed() {
    started_then_each_decision(ProviderKind::Veriff).await;
}

#[tokio::test]
async fn sumsub_started_verified_needs_review_failed() {
    started_then_each_decision(ProviderKind::Sumsub).await;
}

/// A verified delivery the bridge does not apply is recorded and answered
/// 202 `ignored` with its reason (never a 4xx the provider retries);
/// an unconfigured provider's route is 404; a bad signature is 401.
#[tokio::test]
async fn unusable_deliveries_are_ignored_with_a_reason_and_unconfigured_routes_are_404() {
    let app = spawn("providers-ignored", &[ProviderKind::Sumsub, ProviderKind::Persona]).await;
    let sumsub = signer(ProviderKind::Sumsub);
    let no_reference = body(ProviderKind::Sumsub, Outcome::Verified, "not-a-reference", "chkx", 1, &at(-1));
    let r = sumsub.send(&app.http, &app.bridge_url, &no_reference).await.unwrap();
    assert_eq!(
        (r.status, r.body["status"].as_str(), r.body["reason"].as_str()),
        (202, Some("ignored"), Some("no_reference"))
    );
    // Sumsub's applicantDeactivated has no meaning here (§7's table).
    let unmapped = body(ProviderKind::Sumsub, Outcome::Expired, "cand-ig:app-ig", "chkig", 2, &at(-1));
    let r = sumsub.send(&app.http, &app.bridge_url, &unmapped).await.unwrap();
    assert_eq!((r.status, r.body["reason"].as_str()), (202, Some("event_type_not_mapped")), "{:?}", r.body);
    let r = sumsub.send(&app.http, &app.bridge_url, &unmapped).await.unwrap();
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("duplicate")), "a retry of it: {:?}", r.body);
    let rows = app
        .wait_for("the ignored rows", WAIT, || async {
            let d = app.deliveries(None).await;
            (d.iter().filter(|d| d.processing_result == "ignored").count() == 2).then_some(d)
        })
        .await;
    assert!(rows.iter().all(|d| d.signature_valid && d.body_sha256.len() == 64));
    assert!(!app.workflow_exists("cand-ig", "app-ig").await, "an ignored delivery starts nothing");

    let veriff = signer(ProviderKind::Veriff);
    let b = body(ProviderKind::Veriff, Outcome::Verified, "c:a", "chk", 1, &at(-1));
    let r = veriff.send(&app.http, &app.bridge_url, &b).await.unwrap();
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("not_found")), "{:?}", r.body);

    let wrong = Signer::new(ProviderKind::Persona, "wbhsec_someone-else", "");
    let b = body(ProviderKind::Persona, Outcome::Verified, "cand-x:app-x", "inqx", 1, &at(-1));
    let r = wrong.send(&app.http, &app.bridge_url, &b).await.unwrap();
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("invalid_signature")), "{:?}", r.body);
    let metrics = app.metrics().await;
    for line in [
        "vbridge_provider_webhook_requests_total{provider=\"sumsub\",result=\"ignored\"} 2",
        "vbridge_provider_webhook_requests_total{provider=\"persona\",result=\"signature_invalid\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}");
    }
}

/// Onfido, Veriff and Sumsub sign no time: what protects against a captured
/// delivery sent again is the permanent event-key dedup (and, for an event
/// re-keyed by the attacker, the signature over the key's fields). Persona's
/// signed time is held to the policy's skew.
#[tokio::test]
async fn a_captured_delivery_replayed_later_changes_nothing() {
    let app = spawn("providers-replay", &[ProviderKind::Onfido, ProviderKind::Persona]).await;
    let onfido = signer(ProviderKind::Onfido);
    let (c, a) = ("cand-rp", "app-rp");
    let started = body(ProviderKind::Onfido, Outcome::Started, &format!("{c}:{a}"), "run-rp", 1, &at(-30));
    let captured = serde_json::to_vec(&started).unwrap();
    let captured_headers = onfido.headers(&captured, 0);
    let r = onfido.send_raw(&app.http, &app.bridge_url, captured.clone(), captured_headers.clone()).await.unwrap();
    assert_eq!(r.status, 202, "{:?}", r.body);
    app.wait_synced(c, a, "pending").await;
    // The provider approves; then the captured start is replayed.
    let r = send(&app, ProviderKind::Onfido, Outcome::Verified, c, a, 2, -1).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    app.wait_synced(c, a, "verified").await;
    let writes_before = app.writes().await.len();
    let r = onfido.send_raw(&app.http, &app.bridge_url, captured, captured_headers).await.unwrap();
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("duplicate")), "{:?}", r.body);
    let view = app.state(c, a).await.unwrap();
    assert_eq!(view.state, "verified", "the replay changed nothing");
    assert_eq!(app.writes().await.len(), writes_before, "and wrote nothing");

    // Persona: the same capture an hour later is refused for its time.
    let persona = signer(ProviderKind::Persona);
    let b = serde_json::to_vec(&body(ProviderKind::Persona, Outcome::Verified, "cand-p:app-p", "inqp", 1, &at(-61)))
        .unwrap();
    let hour_ago = persona.headers(&b, chrono::Utc::now().timestamp() - 3600);
    let r = persona.send_raw(&app.http, &app.bridge_url, b, hour_ago).await.unwrap();
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("timestamp_out_of_tolerance")));
}

/// Names, birthdates, addresses, document numbers and IP addresses in the
/// providers' bodies are kept nowhere: not in any store file, the log, the
/// Temporal histories or the ATS.
#[tokio::test]
async fn provider_pii_is_kept_nowhere() {
    let kinds = [ProviderKind::Persona, ProviderKind::Onfido, ProviderKind::Veriff];
    let app = spawn("providers-pii", &kinds).await;
    for kind in kinds {
        let c = format!("cand-pii-{}", kind.as_str());
        assert_eq!(send(&app, kind, Outcome::Started, &c, "app-pii", 1, -10).await.status, 202);
        assert_eq!(send(&app, kind, Outcome::Failed, &c, "app-pii", 2, 0).await.status, 202);
        // And one that is only recorded (no usable reference).
        let b = body(kind, Outcome::Verified, "no-reference", &check_id(&c), 3, &at(-1));
        let r = signer(kind).send(&app.http, &app.bridge_url, &b).await.unwrap();
        assert_eq!(r.body["status"], "ignored", "{:?}", r.body);
    }
    for kind in kinds {
        app.wait_synced(&format!("cand-pii-{}", kind.as_str()), "app-pii", "failed").await;
    }
    let mut places: Vec<(String, Vec<u8>)> = vec![];
    for file in ["vbridge.db", "vbridge.db-wal", "vbridge.db-shm"] {
        if let Ok(bytes) = std::fs::read(app.dir.join(file)) {
            places.push((file.to_owned(), bytes));
        }
    }
    assert!(places.iter().any(|(f, b)| f == "vbridge.db" && !b.is_empty()), "the store file exists");
    places.push(("bridge log".to_owned(), app.bridge_log().into_bytes()));
    for kind in kinds {
        let id = workflow_id(&format!("cand-pii-{}", kind.as_str()), "app-pii");
        places.push((format!("history of {id}"), history_json(&app, &id, None).await));
    }
    places.push(("ATS requests".to_owned(), format!("{:?}", app.ats_requests().await).into_bytes()));
    let log = app.bridge_log();
    assert!(log.contains("provider event mapped"), "the log did see the events");
    for (place, bytes) in &places {
        for pii in PII {
            let found = bytes.windows(pii.len()).any(|w| w == pii.as_bytes());
            assert!(!found, "{pii:?} was kept in {place}");
        }
    }
}
