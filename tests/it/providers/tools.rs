//! The provider dev tools (docs/providers.md, "Trying it"): `vbridge
//! simulate --provider X`, run as the binary, against a bridge configured
//! with the dev secrets `vbridge dev` configures; each verification reaches
//! its state in the sandbox ATS.

use crate::harness::{Options, TestApp};
use vbridge::devtools::providers::{DEV_VERIFF_API_KEY, dev_secret, secret_var};
use vbridge_core::intake::providers::ProviderKind;

#[tokio::test]
async fn simulate_speaks_every_provider_with_the_dev_secrets() {
    let mut extra_env: Vec<(String, String)> =
        ProviderKind::ALL.iter().map(|k| (secret_var(*k).to_owned(), dev_secret(*k).to_owned())).collect();
    extra_env.push(("VBRIDGE_VERIFF_API_KEY".into(), DEV_VERIFF_API_KEY.into()));
    let app = TestApp::spawn_with("providers-simulate", Options { extra_env, ..Default::default() }).await;
    let mut expected = vec![];
    for kind in ProviderKind::ALL {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vbridge"))
            .args(["simulate", "--provider", kind.as_str(), "--candidates", "3", "--url", &app.bridge_url])
            // No secret given: simulate must sign with what `vbridge dev` configures.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VBRIDGE_LOG", "warn")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{kind:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        // Two deliveries per candidate, and the first candidate's decision
        // retried: six accepted, one duplicate, nothing refused.
        let summary: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(summary.contains(&"accepted   6"), "{kind:?}: {text}");
        assert!(summary.contains(&"duplicate  1"), "{kind:?}: {text}");
        for line in text.lines().filter(|l| l.trim_start().starts_with("cand-")) {
            let (reference, outcome) = line.trim().split_once(' ').unwrap();
            let (c, a) = reference.split_once(':').unwrap();
            let state = match outcome {
                "Verified" => "verified",
                "NeedsReview" => "needs_review",
                "Failed" => "failed",
                other => panic!("{kind:?}: an outcome simulate does not send: {other}"),
            };
            expected.push((c.to_owned(), a.to_owned(), state));
        }
    }
    assert_eq!(expected.len(), 12, "three candidates per provider: {expected:?}");
    for (c, a, state) in &expected {
        assert_eq!(app.wait_synced(c, a, state).await.state, *state);
    }
}
