//! The bridge's Onfido signatures and bodies against Onfido's own library
//! (PyPI `onfido-python`, pinned and installed by `scripts/setup.sh`):
//! its `WebhookEventVerifier` must accept what the bridge's signer signs
//! (the code `vbridge simulate` and the adapter's known answers share), parse
//! each body into its own `WebhookEvent` model, and refuse a tampered one;
//! the bridge must accept the very same bytes and header.

use super::{ONFIDO_TOKEN, signer, spawn};
use crate::harness::at;
use std::io::Write;
use std::process::{Command, Stdio};
use vbridge::devtools::providers::{Outcome, body};
use vbridge_core::intake::providers::ProviderKind;

/// Reads `[{"body": "...", "signature": "..."}, ...]` and the token, and
/// prints one line per delivery: the library's parsed action and status, or
/// `refused` when its verifier raises.
const VERIFY: &str = r#"
import json, sys
from onfido.webhook_event_verifier import WebhookEventVerifier, OnfidoInvalidSignatureError
req = json.load(sys.stdin)
verifier = WebhookEventVerifier(req["token"])
for d in req["deliveries"]:
    try:
        event = verifier.read_payload(d["body"], d["signature"])
        p = event.payload
        print(p.action.value, p.object.status.value if p.object else None)
    except OnfidoInvalidSignatureError:
        print("refused")
"#;

fn python() -> String {
    std::env::var("VBRIDGE_TOOLS_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python").to_owned())
}

#[tokio::test]
async fn onfidos_own_library_verifies_and_parses_what_the_bridge_signs_and_the_bridge_takes_it() {
    let app = spawn("providers-vendor-libs", &[ProviderKind::Onfido]).await;
    let signer = signer(ProviderKind::Onfido);
    let (c, a) = ("cand-lib", "app-lib");
    let outcomes = [Outcome::Started, Outcome::Verified, Outcome::NeedsReview, Outcome::Failed, Outcome::Expired];
    let mut deliveries = vec![];
    let mut sent = vec![];
    for (n, outcome) in outcomes.iter().enumerate() {
        // Onfido's run ids are UUIDs, and its library's model insists.
        let run = format!("7c1f3a52-0d4e-4b8a-9f6e-{n:012}");
        let b = body(ProviderKind::Onfido, *outcome, &format!("{c}-{n}:{a}"), &run, n as u32 + 1, &at(-1));
        let bytes = serde_json::to_vec(&b).unwrap();
        let headers = signer.headers(&bytes, chrono::Utc::now().timestamp());
        let signature = headers.iter().find(|(k, _)| k == "X-SHA2-Signature").unwrap().1.clone();
        deliveries.push(serde_json::json!({"body": String::from_utf8(bytes.clone()).unwrap(), "signature": signature}));
        sent.push((bytes, headers));
    }
    // The same first body with one byte changed, under its original signature.
    let mut tampered = deliveries[1].clone();
    tampered["body"] = tampered["body"].as_str().unwrap().replacen("approved", "approveD", 1).into();
    deliveries.push(tampered);

    let mut child = Command::new(python())
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} (run scripts/setup.sh): {e}", python()));
    let input = serde_json::json!({"token": ONFIDO_TOKEN, "deliveries": deliveries});
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "onfido-python: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "workflow_task.started started",
            "workflow_run.completed approved",
            "workflow_run.completed review",
            "workflow_run.completed declined",
            "workflow_run.completed abandoned",
            "refused",
        ],
        "what Onfido's library makes of the bridge's deliveries"
    );
    // The bridge takes the same bytes with the same header.
    for (bytes, headers) in sent {
        let r = signer.send_raw(&app.http, &app.bridge_url, bytes, headers).await.unwrap();
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("accepted")), "{:?}", r.body);
    }
}
