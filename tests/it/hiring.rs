//! The hiring loop end to end (docs/contract.md §8, docs/hiring.md): an
//! ATS's signed stage change, the real bridge and Temporal, the sandbox's
//! strict impersonations of Veriff's and Persona's start APIs, and its SMTP
//! sink as the mail server.

use crate::harness::{AUDITOR_TOKEN, OPS_TOKEN, Options, TestApp, at};
use crate::replay::{CURRENT, check_and_save, history_json};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;
use vbridge::devtools::ats_hooks::{Move, send, stage_change};
use vbridge::devtools::providers::{Outcome, Signer, body};
use vbridge::devtools::sandbox::impersonate::API_KEY;
use vbridge_core::domain::workflow_id;
use vbridge_core::intake::ats::AtsKind;
use vbridge_core::intake::providers::ProviderKind;

const WAIT: Duration = Duration::from_secs(60);
const ASHBY_SECRET: &str = "it-ashby-webhook-secret";
const GREENHOUSE_SECRET: &str = "it-greenhouse-webhook-secret";
const VERIFF_SHARED: &str = "it-veriff-shared";
const PERSONA_SECRET: &str = "wbhsec_it-persona";

/// The seed's policy with the hiring loop's extension (docs/contract.md §8).
pub(crate) const EXTENSION: &str = vbridge_core::hiring::EXAMPLE_EXTENSION;

/// A bridge with the hiring loop on, starting verifications at `provider`.
async fn spawn(name: &str, provider: &str) -> TestApp {
    spawn_env(name, provider, &[]).await
}

/// [`spawn`], with more settings.
async fn spawn_env(name: &str, provider: &str, more: &[(&str, &str)]) -> TestApp {
    let dir = std::env::temp_dir().join(format!("vbridge-hiring-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, format!("{}{EXTENSION}", vbridge_core::DEFAULT_POLICY_YAML)).unwrap();
    let env = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let extra_env = vec![
        env("VBRIDGE_POLICY", &policy.display().to_string()),
        env("VBRIDGE_ASHBY_WEBHOOK_SECRET", ASHBY_SECRET),
        env("VBRIDGE_GREENHOUSE_WEBHOOK_SECRET", GREENHOUSE_SECRET),
        env("VBRIDGE_START_PROVIDER", provider),
        env("VBRIDGE_VERIFF_API_URL", "{sandbox}"),
        env("VBRIDGE_VERIFF_API_KEY", API_KEY),
        env("VBRIDGE_VERIFF_SHARED_SECRETS", VERIFF_SHARED),
        env("VBRIDGE_PERSONA_API_URL", "{sandbox}"),
        env("VBRIDGE_PERSONA_API_KEY", API_KEY),
    ];
    let extra_env = extra_env.into_iter().chain(more.iter().map(|(k, v)| env(k, v))).collect();
    TestApp::spawn_with(name, Options { extra_env, ..Default::default() }).await
}

fn candidate_move<'a>(
    c: &'a str,
    a: &'a str,
    stage: &'a str,
    role: &'a str,
    region: &'a str,
    email: &'a str,
) -> Move<'a> {
    Move { candidate_id: c, application_id: a, stage, role, region, email, key: "", at: "" }
}

async fn deliver(app: &TestApp, kind: AtsKind, m: &Move<'_>) -> (u16, Value) {
    let secret = if kind == AtsKind::Ashby { ASHBY_SECRET } else { GREENHOUSE_SECRET };
    let reply = send(&app.http, &app.bridge_url, kind, secret, m.key, &stage_change(kind, m)).await.unwrap();
    (reply.status, reply.body)
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The timeline entries of `kind`.
async fn entries(app: &TestApp, c: &str, a: &str, kind: &str) -> Vec<vbridge_proto::TimelineEntry> {
    app.timeline(c, a).await.map(|t| t.into_iter().filter(|e| e.kind == kind).collect()).unwrap_or_default()
}

/// Wait until the workflow runs an attempt of `activity`.
async fn wait_running(app: &TestApp, c: &str, a: &str, activity: &str) {
    use vbridge_workflows::verification::CandidateVerification;
    let h = app.temporal_client.get_workflow_handle::<CandidateVerification>(workflow_id(c, a));
    app.wait_for(&format!("{activity} to be running"), WAIT, || async {
        let d = h.describe(Default::default()).await.ok()?;
        d.raw_description
            .pending_activities
            .iter()
            .any(|p| p.activity_type.as_ref().is_some_and(|t| t.name == activity) && p.state == 2)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_ashby_trigger_sent_three_times_starts_one_veriff_session_and_one_invite_across_a_worker_killed_mid_start() {
    let mut app = spawn("hiring-ashby-veriff", "veriff").await;
    let (c, a, email) = ("cand-ash-1", "app-ash-1", "sam.candidate@example.org");
    // The first session create hangs at Veriff until the worker is killed:
    // a create whose caller dies is never made (the sandbox creates only
    // when it answers), and the retry must make exactly one.
    app.ats_fault(serde_json::json!({"mode": "slow", "delay_ms": 60_000, "count": 1, "path_suffix": "/v1/sessions"}))
        .await;
    let when = at(-1);
    let m = Move { key: "wha-1", at: &when, ..candidate_move(c, a, "Identity Check", "Designer", "Berlin", email) };
    let mut answers = vec![];
    for _ in 0..3 {
        answers.push(deliver(&app, AtsKind::Ashby, &m).await);
    }
    assert!(answers.iter().all(|(s, _)| *s == 200), "every delivery is answered exactly 200: {answers:?}");
    assert_eq!(answers[0].1["status"], "accepted", "{answers:?}");
    assert!(answers[1..].iter().all(|(_, b)| b["status"] == "duplicate"), "{answers:?}");

    wait_running(&app, c, a, "HiringActivities::start_verification").await;
    app.kill_bridge();
    app.start_bridge(&[]).await;

    let mails = app
        .wait_for("the invite in the mailbox", WAIT, || async {
            let m: Vec<Value> =
                app.mailbox().await.into_iter().filter(|m| m["to"].as_str().unwrap_or("").contains(email)).collect();
            (!m.is_empty()).then_some(m)
        })
        .await;
    let sessions = app.provider_sessions().await;
    assert_eq!(sessions.len(), 1, "exactly one Veriff session: {sessions:#?}");
    let session = &sessions[0];
    assert_eq!(
        (session["provider"].as_str(), session["reference"].as_str()),
        (Some("veriff"), Some("cand-ash-1:app-ash-1"))
    );
    let (session_id, link) = (session["id"].as_str().unwrap(), session["url"].as_str().unwrap());
    assert_eq!(mails.len(), 1, "exactly one invite: {mails:#?}");
    let invite = &mails[0];
    assert_eq!(invite["subject"], "Please verify your identity");
    assert!(invite["text"].as_str().unwrap().contains(link), "the invite carries the session's link: {invite:#?}");
    assert!(invite["html"].as_str().is_some_and(|h| h.contains(link)), "and an HTML part with it");
    let message_id = invite["message_id"].as_str().unwrap().to_owned();
    assert!(message_id.starts_with("<vb-") && message_id.ends_with("@vbridge.test>"), "{message_id}");

    // The workflow's account: one request, one start, one mail; the check
    // is the provider's session; no address, no link.
    let recorded = app
        .wait_for("mail_sent recorded", WAIT, || async {
            let e = entries(&app, c, a, "mail_sent").await;
            (!e.is_empty()).then_some(e)
        })
        .await;
    assert_eq!(recorded.len(), 1);
    let detail: Value = serde_json::from_str(&recorded[0].detail).unwrap();
    assert_eq!(detail["recipient_sha256"], sha256(email));
    assert_eq!(detail["message_id"], message_id);
    assert_eq!(entries(&app, c, a, "verification_requested").await.len(), 1);
    let started = entries(&app, c, a, "verification_started").await;
    assert_eq!(started.len(), 1, "{started:#?}");
    assert!(started[0].reason.contains(session_id), "{}", started[0].reason);
    let state = app.state(c, a).await.unwrap();
    assert_eq!(state.verification_check_id, session_id);
    assert_eq!((state.starts.len(), state.starts[0].tier.as_str(), state.starts[0].invited), (1, "standard", true));
    assert_eq!(state.state, "unverified", "a request is not a move");
    let timeline = serde_json::to_string(&app.timeline(c, a).await.unwrap()).unwrap();
    assert!(!timeline.contains(email) && !timeline.contains(link), "no address or link in the timeline");

    assert_eq!(contacts(&app, c).await, 1, "the address is kept while the verification needs it");
    // The candidate completes it: Veriff's decision on that session opens the gate.
    let signer = Signer::new(ProviderKind::Veriff, VERIFF_SHARED, API_KEY);
    let decided = body(ProviderKind::Veriff, Outcome::Verified, &format!("{c}:{a}"), session_id, 1, &at(0));
    let reply = signer.send(&app.http, &app.bridge_url, &decided).await.unwrap();
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    app.wait_synced(c, a, "verified").await;
    app.wait_for("the interview gate to open", WAIT, || async {
        let gate: Value = app.get_as(&format!("/v1/applications/{a}/gate"), Some(OPS_TOKEN)).await.json().await.ok()?;
        (gate["allow_interview_scheduling"] == true).then_some(())
    })
    .await;

    assert_eq!(contacts(&app, c).await, 0, "decided: the address is forgotten");
    // The funnel's clock starts at the ATS application's own time (the
    // body's createdAt, 2026-01-05), not at the first webhook.
    let metrics = app.get_as("/metrics", Some(OPS_TOKEN)).await.text().await.unwrap();
    let sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("time_apply_to_verified_sum "))
        .and_then(|v| v.trim().parse().ok())
        .expect("time_apply_to_verified is exported");
    let since_applied = (chrono::Utc::now() - "2026-01-05T09:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap())
        .num_seconds() as f64;
    assert!(sum >= since_applied - 600.0, "from the application's time: {sum} s, applied {since_applied} s ago");
    let log = app.bridge_log();
    assert!(!log.contains(email) && !log.contains(link), "neither the address nor the link is logged");
    // The audit log keeps what the workflow recorded, and neither.
    let audit_text = app
        .wait_for("the mail in the audit log", WAIT, || async {
            let audit: Value =
                app.get_as(&format!("/v1/candidates/{c}/timeline"), Some(AUDITOR_TOKEN)).await.json().await.ok()?;
            let text = audit.to_string();
            (text.contains("mail_sent") && text.contains("verification_started")).then_some(text)
        })
        .await;
    assert!(audit_text.contains(&sha256(email)) && audit_text.contains(&message_id), "its recipient's hash and id");
    assert!(!audit_text.contains(email) && !audit_text.contains(link), "and neither the address nor the link");
    save(&app, c, a, "trigger").await;
}

/// How many addresses the store keeps for candidate `c` (the hiring rows).
async fn contacts(app: &TestApp, c: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url()).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM hiring_contacts WHERE candidate_id = ?")
        .bind(c)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Keep the workflow's history as a saved shape (`VBRIDGE_WRITE_HISTORY=1`).
async fn save(app: &TestApp, c: &str, a: &str, shape: &str) {
    let json = history_json(app, &workflow_id(c, a), None).await;
    check_and_save(&json, &format!("candidate_verification_{CURRENT}_{shape}.json")).await;
}

#[tokio::test]
async fn a_role_in_the_none_tier_or_a_stage_that_is_no_trigger_starts_nothing() {
    let app = spawn("hiring-none", "veriff").await;
    let email = "pat@example.org";
    let rows = [
        ("cand-none-1", "app-none-1", "Identity Check", "Internal Transfer", "tier_requires_no_verification"),
        ("cand-none-2", "app-none-2", "Onsite", "Designer", "stage_not_a_trigger"),
    ];
    for (i, (c, a, stage, role, reason)) in rows.iter().enumerate() {
        let when = at(-1);
        let key = format!("wha-none-{i}");
        let m = Move { key: &key, at: &when, ..candidate_move(c, a, stage, role, "Berlin", email) };
        let (status, body) = deliver(&app, AtsKind::Ashby, &m).await;
        assert_eq!(
            (status, body["status"].as_str(), body["reason"].as_str()),
            (200, Some("ignored"), Some(*reason)),
            "{body}"
        );
        let (status, body) = deliver(&app, AtsKind::Ashby, &m).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    }
    // A bad signature is refused and starts nothing either.
    let when = at(-1);
    let m = Move {
        key: "wha-forged",
        at: &when,
        ..candidate_move("cand-x", "app-x", "Identity Check", "Designer", "", email)
    };
    let forged =
        send(&app.http, &app.bridge_url, AtsKind::Ashby, "not-the-secret", m.key, &stage_change(AtsKind::Ashby, &m))
            .await
            .unwrap();
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    // The one trigger that does start, so that "nothing" above is not just slowness.
    let when = at(-1);
    let m = Move {
        key: "wha-go",
        at: &when,
        ..candidate_move("cand-go", "app-go", "identity check", "Designer", "", email)
    };
    assert_eq!(deliver(&app, AtsKind::Ashby, &m).await.1["status"], "accepted", "stage names match without case");
    app.wait_for("the one invite", WAIT, || async { (app.mailbox().await.len() == 1).then_some(()) }).await;
    for (c, a, ..) in rows {
        assert!(!app.workflow_exists(c, a).await, "{c}: no workflow was started");
    }
    assert!(!app.workflow_exists("cand-x", "app-x").await);
    let sessions = app.provider_sessions().await;
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_eq!(sessions[0]["reference"], "cand-go:app-go");
    let stored = app.deliveries(Some("cand-none-1")).await;
    // Bodies are sealed under the candidate's key (docs/privacy.md): opened here.
    let store = vbridge::config::open_store(&app.database_url()).await.unwrap();
    let key = store.existing_field_key("cand-none-1").await.unwrap();
    let opened = |p: &str| vbridge_core::seal::reveal(key.as_ref(), "cand-none-1", p);
    assert!(
        stored.iter().any(|d| d.processing_result == "ignored"
            && d.payload.as_deref().is_some_and(|p| opened(p).contains("\"tier\":\"none\""))),
        "the ignored trigger is recorded with its tier"
    );
    assert!(
        stored.iter().all(|d| d.payload.as_deref().is_none_or(|p| !opened(p).contains(email))),
        "never the address"
    );
}

#[tokio::test]
async fn a_greenhouse_trigger_starts_a_persona_inquiry_at_the_tiers_template_and_mails_its_one_time_link() {
    let app = spawn("hiring-greenhouse-persona", "persona").await;
    let (c, a, email) = ("4400123", "5500456", "remote.sre@example.org");
    let m = Move {
        key: "gh-evt-1",
        at: "",
        ..candidate_move(c, a, "Identity Check", "Site Reliability Engineer", "Remote", email)
    };
    let (status, body) = deliver(&app, AtsKind::Greenhouse, &m).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let (status, body) = deliver(&app, AtsKind::Greenhouse, &m).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "Greenhouse's retry: {body}");
    let mail = app.wait_for("the invite", WAIT, || async { app.mailbox().await.into_iter().next() }).await;
    let sessions = app.provider_sessions().await;
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let inquiry = &sessions[0];
    assert_eq!(inquiry["provider"], "persona");
    assert_eq!(inquiry["template"], "itmpl_enhanced", "remote SRE: the enhanced tier's template");
    assert_eq!(inquiry["reference"], format!("{c}:{a}"));
    assert_eq!(inquiry["links_generated"], 1);
    let link = inquiry["url"].as_str().unwrap();
    assert!(link.contains("/_sandbox/verify/persona/"), "{link}");
    assert!(mail["text"].as_str().unwrap().contains(link), "{mail:#?}");
    assert!(mail["to"].as_str().unwrap().contains(email));
    let state = app
        .wait_for("the invite recorded", WAIT, || async {
            app.state(c, a).await.ok().filter(|s| s.starts.first().is_some_and(|s| s.invited))
        })
        .await;
    assert_eq!((state.starts[0].tier.as_str(), state.starts[0].provider.as_str()), ("enhanced", "persona"));
    assert_eq!(state.verification_check_id, inquiry["id"].as_str().unwrap());
}

/// Trigger a verification for (c, a) and wait for its invite; the session.
async fn invited(app: &TestApp, c: &str, a: &str, email: &str, key: &str) -> Value {
    invited_by(app, AtsKind::Ashby, c, a, email, key).await
}

/// [`invited`], triggered by `kind`'s stage change.
async fn invited_by(app: &TestApp, kind: AtsKind, c: &str, a: &str, email: &str, key: &str) -> Value {
    let when = at(-2);
    let m = Move { key, at: &when, ..candidate_move(c, a, "Identity Check", "Designer", "Berlin", email) };
    assert_eq!(deliver(app, kind, &m).await.1["status"], "accepted");
    app.wait_for("the invite", WAIT, || async {
        let mails = app.mailbox().await;
        mails.iter().any(|m| m["to"].as_str().unwrap_or("").contains(email)).then_some(())
    })
    .await;
    let reference = format!("{c}:{a}");
    app.provider_sessions().await.into_iter().find(|s| s["reference"] == reference.as_str()).unwrap()
}

async fn veriff_says(app: &TestApp, c: &str, a: &str, check: &str, outcome: Outcome, n: u32) -> Value {
    let signer = Signer::new(ProviderKind::Veriff, VERIFF_SHARED, API_KEY);
    let b = body(ProviderKind::Veriff, outcome, &format!("{c}:{a}"), check, n, &at(-1));
    let reply = signer.send(&app.http, &app.bridge_url, &b).await.unwrap();
    // 202 taken, 200 a duplicate (docs/contract.md §2).
    assert!(matches!(reply.status, 200 | 202), "{}: {:?}", reply.status, reply.body);
    reply.body
}

#[tokio::test]
async fn an_expired_session_is_replaced_and_its_new_link_mailed_once() {
    let app = spawn("hiring-expiry", "veriff").await;
    let (c, a, email) = ("cand-exp-1", "app-exp-1", "late.candidate@example.org");
    let first = invited(&app, c, a, email, "wha-exp-1").await;
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(veriff_says(&app, c, a, first_id, Outcome::Expired, 1).await["status"], "accepted");
    assert_eq!(veriff_says(&app, c, a, first_id, Outcome::Expired, 1).await["status"], "duplicate");
    let mails = app
        .wait_for("the re-invite", WAIT, || async {
            let mails = app.mailbox().await;
            (mails.len() >= 2).then_some(mails)
        })
        .await;
    let sessions = app.provider_sessions().await;
    assert_eq!(sessions.len(), 2, "one new session: {sessions:#?}");
    let second = sessions.iter().find(|s| s["id"] != first["id"]).unwrap();
    let reinvite = &mails[1];
    assert_eq!(reinvite["subject"], "A new link to verify your identity");
    let text = reinvite["text"].as_str().unwrap();
    assert!(text.contains(second["url"].as_str().unwrap()) && !text.contains(first["url"].as_str().unwrap()));
    // Another expiry of the same session (a new event) starts nothing more.
    veriff_says(&app, c, a, first_id, Outcome::Expired, 2).await;
    app.wait_for("the second expiry recorded", WAIT, || async {
        let t = app.timeline(c, a).await.ok()?;
        (t.iter().filter(|e| e.kind == "verification_expired").count() == 2).then_some(())
    })
    .await;
    let state = app.state(c, a).await.unwrap();
    assert_eq!(state.starts.len(), 2, "{:#?}", state.starts);
    assert!(state.starts[0].expired && state.starts[1].replaces == first_id && state.starts[1].invited);
    assert_eq!(state.verification_check_id, second["id"].as_str().unwrap(), "the new session is the check now");
    assert_eq!(app.mailbox().await.len(), 2, "the new link was mailed once");
    assert_eq!(app.provider_sessions().await.len(), 2);
    save(&app, c, a, "reinvite").await;
}

#[tokio::test]
async fn a_needs_review_with_liveness_low_steps_up_to_the_enhanced_tier_once_instead_of_queueing() {
    let dir = std::env::temp_dir().join(format!("vbridge-hiring-stepup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let reasons = dir.join("reasons.toml");
    std::fs::write(&reasons, "[veriff]\n\"102\" = \"liveness-low\"\n").unwrap();
    let mut app = spawn("hiring-step-up", "veriff").await;
    app.kill_bridge();
    app.start_bridge(&[("VBRIDGE_PROVIDER_REASON_MAP", &reasons.display().to_string())]).await;
    let (c, a, email) = ("cand-step-1", "app-step-1", "step.up@example.org");
    let first = invited(&app, c, a, email, "wha-step-1").await;
    let first_id = first["id"].as_str().unwrap();
    veriff_says(&app, c, a, first_id, Outcome::NeedsReview, 1).await;
    let mails = app
        .wait_for("the step-up's invite", WAIT, || async {
            let mails = app.mailbox().await;
            (mails.len() >= 2).then_some(mails)
        })
        .await;
    let state = app.wait_synced(c, a, "needs_review").await;
    assert!(state.review.is_none(), "not queued for a reviewer: {:?}", state.review);
    assert_eq!(state.starts.len(), 2);
    let step = &state.starts[1];
    assert_eq!((step.tier.as_str(), step.step_up_of.as_str()), ("enhanced", first_id));
    let sessions = app.provider_sessions().await;
    let second = sessions.iter().find(|s| s["id"].as_str() == Some(step.session_id.as_str())).unwrap();
    assert!(mails[1]["text"].as_str().unwrap().contains(second["url"].as_str().unwrap()));
    // The step-up's own needs_review goes to the queue: once per check.
    veriff_says(&app, c, a, &step.session_id, Outcome::NeedsReview, 2).await;
    app.wait_for("the review item", WAIT, || async {
        app.state(c, a).await.ok().filter(|s| s.review.is_some()).map(|_| ())
    })
    .await;
    // Still needs_review (the state did not move), but the item is queued now;
    // the first check stepped up once.
    let state = app.state(c, a).await.unwrap();
    assert_eq!(state.starts.len(), 2, "no third start");
    assert_eq!(app.provider_sessions().await.len(), 2);
    assert_eq!(app.mailbox().await.len(), 2);
    save(&app, c, a, "step_up").await;
}

async fn interview(app: &TestApp, key: &str, a: &str, c: Option<&str>, at: &str, cancelled: bool) -> Value {
    let b = vbridge::devtools::ats_hooks::ashby_interview(key, "sched-1", a, c, at, cancelled, cancelled);
    let reply = send(&app.http, &app.bridge_url, AtsKind::Ashby, ASHBY_SECRET, key, &b).await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn bypass_count(app: &TestApp) -> u64 {
    let text = app.get_as("/metrics", Some(OPS_TOKEN)).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("interview_scheduled_unverified_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the bypass counter is exported:\n{text}"))
}

#[tokio::test]
async fn an_interview_booked_for_a_pending_candidate_is_a_flagged_mailed_bypass_and_sets_the_reminders() {
    let app = spawn("hiring-interview", "veriff").await;
    let (c, a, email) = ("cand-int-1", "app-int-1", "booked.early@example.org");
    let session = invited(&app, c, a, email, "wha-int-1").await;
    let check = session["id"].as_str().unwrap().to_owned();
    assert_eq!(bypass_count(&app).await, 0);

    // Booked 48 h and 10 s out: the deadline is 24 h before, so the 24 h
    // reminder is due in 10 s and the 4 h one in a day.
    let booked = std::time::Instant::now();
    let starts = (chrono::Utc::now() + chrono::Duration::hours(48) + chrono::Duration::seconds(10)).to_rfc3339();
    assert_eq!(interview(&app, "wha-int-2", a, None, &starts, false).await["status"], "accepted");
    assert_eq!(interview(&app, "wha-int-2", a, None, &starts, false).await["status"], "duplicate");
    let notice = app
        .wait_for("the recruiter's notice", WAIT, || async {
            app.mailbox().await.into_iter().find(|m| m["to"].as_str().unwrap_or("").contains("recruiter@example.org"))
        })
        .await;
    assert!(notice["subject"].as_str().unwrap().contains(a), "{notice:#?}");
    assert!(notice["text"].as_str().unwrap().contains("unverified"), "it says the state: {notice:#?}");
    let bypass = entries(&app, c, a, "gate_bypass").await;
    assert_eq!(bypass.len(), 1);
    assert!(
        bypass[0].reason.contains("unknown-application") || bypass[0].reason.contains("unverified"),
        "{}",
        bypass[0].reason
    );
    app.wait_for("the ATS flag", WAIT, || async {
        let held = app.ats_check(a, &check).await?;
        (held["fields"]["verification_gate_bypass"] == "true").then_some(())
    })
    .await;
    assert_eq!(bypass_count(&app).await, 1, "counted once, the duplicate not");

    let reminder = app
        .wait_for("the reminder", WAIT, || async {
            app.mailbox().await.into_iter().find(|m| m["subject"].as_str().unwrap_or("").starts_with("Reminder"))
        })
        .await;
    assert!(booked.elapsed() >= Duration::from_secs(9), "timed from the interview, not sent at once");
    assert!(reminder["text"].as_str().unwrap().contains(session["url"].as_str().unwrap()));
    let state = app.state(c, a).await.unwrap();
    assert_eq!(state.starts[0].reminded, vec![24], "the 4 h reminder waits");

    // Cancelled: the waiting reminder's timer is cancelled.
    assert_eq!(interview(&app, "wha-int-3", a, Some(c), &starts, true).await["status"], "accepted");
    app.wait_for("the reminder timer cancelled", WAIT, || async {
        let history = String::from_utf8(history_json(&app, &workflow_id(c, a), None).await).ok()?;
        history.contains("TimerCanceledEventAttributes").then_some(())
    })
    .await;
    assert_eq!(entries(&app, c, a, "interview_cancelled").await.len(), 1);
    assert!(app.state(c, a).await.unwrap().interview.is_none());

    // Verified, then booked: not a bypass.
    veriff_says(&app, c, a, &check, Outcome::Verified, 1).await;
    app.wait_synced(c, a, "verified").await;
    app.wait_for("the gate to open", WAIT, || async {
        let gate: Value = app.get_as(&format!("/v1/applications/{a}/gate"), Some(OPS_TOKEN)).await.json().await.ok()?;
        (gate["allow_interview_scheduling"] == true).then_some(())
    })
    .await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    assert_eq!(interview(&app, "wha-int-4", a, Some(c), &soon, false).await["status"], "accepted");
    app.wait_for("interview_scheduled", WAIT, || async {
        (entries(&app, c, a, "interview_scheduled").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(bypass_count(&app).await, 1);
    // Its time comes with the candidate verified: the funnel counts it.
    let reached = app
        .wait_for("interview_reached", WAIT, || async {
            entries(&app, c, a, "interview_reached").await.into_iter().next()
        })
        .await;
    assert_eq!(reached.state_after, "verified", "{}", reached.reason);
    let funnel = app
        .wait_for("the funnel's counters", WAIT, || async {
            let text = app.get_as("/metrics", Some(OPS_TOKEN)).await.text().await.ok()?;
            let value = |name: &str| -> Option<u64> {
                text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.trim().parse().ok())
            };
            let pair = (value("interviews_reached_count")?, value("interviews_reached_verified_count")?);
            (pair.0 > 0).then_some(pair)
        })
        .await;
    assert_eq!(funnel, (1, 1), "one interview reached, verified by then");
    // An interview for an application the bridge does not verify is recorded, not applied.
    let body = interview(&app, "wha-int-5", "app-nobody", None, &starts, false).await;
    assert_eq!((body["status"].as_str(), body["reason"].as_str()), (Some("ignored"), Some("unknown_application")));
    save(&app, c, a, "bypass").await;
}

#[tokio::test]
async fn a_late_booking_sends_one_reminder_at_once_and_tells_the_recruiter_at_the_deadline() {
    let app = spawn("hiring-late", "veriff").await;
    let (c, a, email) = ("cand-late-1", "app-late-1", "late.booking@example.org");
    invited(&app, c, a, email, "wha-late-1").await;
    // 24 h and 10 s out: both reminders (24 h and 4 h before a deadline 10 s
    // away) are due already; the latest goes, once. At the deadline the
    // verification is still open: the recruiter hears.
    let booked = std::time::Instant::now();
    let starts = (chrono::Utc::now() + chrono::Duration::hours(24) + chrono::Duration::seconds(10)).to_rfc3339();
    assert_eq!(interview(&app, "wha-late-2", a, None, &starts, false).await["status"], "accepted");
    let pending = app
        .wait_for("the recruiter's deadline notice", WAIT, || async {
            app.mailbox().await.into_iter().find(|m| m["subject"].as_str().unwrap_or("").contains("still open"))
        })
        .await;
    assert!(booked.elapsed() >= Duration::from_secs(9), "at the deadline, not before");
    assert!(pending["to"].as_str().unwrap().contains("recruiter@example.org"));
    let mails = app.mailbox().await;
    let to_candidate: Vec<&str> = mails
        .iter()
        .filter(|m| m["to"].as_str().unwrap_or("").contains(email))
        .map(|m| m["subject"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(to_candidate, ["Please verify your identity", "Reminder: please verify your identity"], "one reminder");
    let state = app.state(c, a).await.unwrap();
    let mut reminded = state.starts[0].reminded.clone();
    reminded.sort();
    assert_eq!(reminded, vec![0, 4, 24], "the 24 h one passed over, the 4 h one sent, the deadline's notice sent");
}

#[tokio::test]
async fn a_step_up_that_cannot_start_leaves_the_needs_review_to_a_reviewer() {
    let dir = std::env::temp_dir().join(format!("vbridge-hiring-stepfail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let reasons = dir.join("reasons.toml");
    std::fs::write(&reasons, "[veriff]\n\"102\" = \"liveness-low\"\n").unwrap();
    let mut app = spawn("hiring-step-fail", "veriff").await;
    app.kill_bridge();
    // No provider to start at: the step-up fails for good.
    app.start_bridge(&[
        ("VBRIDGE_PROVIDER_REASON_MAP", &reasons.display().to_string()),
        ("VBRIDGE_START_PROVIDER", ""),
    ])
    .await;
    let (c, a) = ("cand-stepfail-1", "app-stepfail-1");
    veriff_says(&app, c, a, "chk-own-1", Outcome::NeedsReview, 2).await;
    let state = app
        .wait_for("the review item", WAIT, || async { app.state(c, a).await.ok().filter(|s| s.review.is_some()) })
        .await;
    assert_eq!(state.state, "needs_review");
    assert_eq!(state.starts.len(), 1, "{:?}", state.starts);
    assert!(!state.starts[0].failed.is_empty() && state.starts[0].step_up_of == "chk-own-1");
    assert_eq!(entries(&app, c, a, "verification_start_failed").await.len(), 1);
    assert!(app.provider_sessions().await.is_empty() && app.mailbox().await.is_empty());
}

/// Book (or move, or skip) an interview in the sandbox's Greenhouse.
async fn greenhouse_books(app: &TestApp, id: u64, a: &str, starts_at: &str, status: &str) {
    let r = app
        .http
        .post(format!("{}/_sandbox/ats/greenhouse/interviews", app.sandbox_url))
        .json(&serde_json::json!({"id": id, "application_id": a.parse::<u64>().unwrap(),
            "starts_at": starts_at, "status": status}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// The interview listings the bridge read from the sandbox's Greenhouse.
async fn interview_polls(app: &TestApp) -> Vec<Value> {
    let all: Vec<Value> = app.sandbox_get("/_sandbox/requests").await.as_array().cloned().unwrap_or_default();
    all.into_iter().filter(|r| r["path"].as_str().unwrap_or("").starts_with("/v3/interviews")).collect()
}

#[tokio::test]
async fn greenhouses_polled_interviews_find_the_same_bypass() {
    let env: Vec<(&str, &str)> =
        crate::greenhouse::V3_ENV.into_iter().chain([("VBRIDGE_INTERVIEW_POLL_SECONDS", "2")]).collect();
    let app = spawn_env("hiring-gh-poll", "veriff", &env).await;
    let (c, a, email) = ("4400777", "5500777", "polled.early@example.org");
    // An interview of an application the bridge verifies no one for, listed
    // on every poll: never recorded.
    let starts = (chrono::Utc::now() + chrono::Duration::hours(48)).to_rfc3339();
    greenhouse_books(&app, 9_000_001, "5500999", &starts, "scheduled").await;
    let session = invited_by(&app, AtsKind::Greenhouse, c, a, email, "gh-poll-1").await;
    let check = session["id"].as_str().unwrap().to_owned();
    assert_eq!(bypass_count(&app).await, 0);

    // Booked in Greenhouse while the verification is pending: Greenhouse
    // sends nothing; the next poll finds it.
    greenhouse_books(&app, 9_128_481, a, &starts, "scheduled").await;
    let notice = app
        .wait_for("the recruiter's notice", WAIT, || async {
            app.mailbox().await.into_iter().find(|m| m["to"].as_str().unwrap_or("").contains("recruiter@example.org"))
        })
        .await;
    assert!(notice["subject"].as_str().unwrap().contains(a), "{notice:#?}");
    let bypass = entries(&app, c, a, "gate_bypass").await;
    assert_eq!(bypass.len(), 1, "{bypass:#?}");
    assert!(bypass[0].reason.contains("interview 9128481"), "{}", bypass[0].reason);
    app.wait_for("the Greenhouse flag", WAIT, || async {
        let record = app.sandbox_get(&format!("/_sandbox/ats/greenhouse/{a}")).await;
        (record["fields"]["verification_gate_bypass"] == "true").then_some(())
    })
    .await;
    let state = app.state(c, a).await.unwrap();
    let held = state.interview.expect("the interview sets the deadline");
    assert_eq!(held.id, "9128481");
    assert_eq!(state.verification_check_id, check);

    // Polled again and again (every 2 s, each reading 5 minutes back): the
    // same booking is a duplicate, counted once, recorded once.
    let before = interview_polls(&app).await.len();
    app.wait_for("three more polls", WAIT, || async {
        (interview_polls(&app).await.len() >= before + 3).then_some(())
    })
    .await;
    assert_eq!(bypass_count(&app).await, 1, "counted once across polls");
    let metrics = app.get_as("/metrics", Some(OPS_TOKEN)).await.text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l == "webhook_duplicate_event_count 0"),
        "a listing read again is no webhook duplicate:\n{metrics}"
    );
    let text = app.get_as("/metrics", Some(OPS_TOKEN)).await.text().await.unwrap();
    assert!(
        text.lines().any(|l| l == r#"interview_scheduled_unverified_by_job_count{region="Berlin",role="Designer"} 1"#),
        "by the trigger's role and region:\n{text}"
    );
    assert_eq!(entries(&app, c, a, "gate_bypass").await.len(), 1, "recorded once across polls");
    let polls = interview_polls(&app).await;
    for p in &polls {
        let path = p["path"].as_str().unwrap();
        assert!(
            path.contains("updated_at%5Bgte%5D=") || path.contains("updated_at[gte]=") || path.contains("cursor="),
            "v3's own filter: {path}"
        );
        assert!(p["authorization"].as_str().unwrap_or("").starts_with("Bearer "), "{p}");
        assert_eq!(p["status"], 200, "{p}");
    }

    // Skipped in Greenhouse: its reminders are cancelled.
    greenhouse_books(&app, 9_128_481, a, &starts, "skipped").await;
    app.wait_for("interview_cancelled", WAIT, || async {
        (entries(&app, c, a, "interview_cancelled").await.len() == 1).then_some(())
    })
    .await;
    assert!(app.state(c, a).await.unwrap().interview.is_none());
    let all = app.deliveries(None).await;
    let unknown: Vec<_> = all.iter().filter(|d| d.content.application_id.as_deref() == Some("5500999")).collect();
    assert!(unknown.is_empty(), "the listing's other applications are not recorded: {unknown:#?}");

    // A finished poll's history replays against today's workflow code (and
    // is kept, with VBRIDGE_WRITE_HISTORY=1, as interview_poll_ran.json).
    let query = "WorkflowType='InterviewPoll' AND ExecutionStatus='Completed'";
    let listed = app.temporal_cli(&["workflow", "list", "--query", query, "-o", "json"]);
    let runs: Value = serde_json::from_str(&listed).unwrap();
    let id = runs[0]["execution"]["workflowId"].as_str().or(runs[0]["execution"]["workflow_id"].as_str());
    let id = id.unwrap_or_else(|| panic!("no finished InterviewPoll run listed: {listed}")).to_owned();
    let json = history_json(&app, &id, None).await;
    crate::replay::check_and_save(&json, "interview_poll_ran.json").await;
}

#[tokio::test]
async fn a_retake_mails_a_fresh_persona_one_time_link_once_per_notice() {
    let app = spawn_env("hiring-retake", "persona", &[("VBRIDGE_PERSONA_WEBHOOK_SECRETS", PERSONA_SECRET)]).await;
    let (c, a, email) = ("cand-retake-1", "app-retake-1", "retake.me@example.org");
    let inquiry = invited(&app, c, a, email, "wha-retake-1").await;
    let (id, first_link) = (inquiry["id"].as_str().unwrap().to_owned(), inquiry["url"].as_str().unwrap().to_owned());
    let signer = Signer::new(ProviderKind::Persona, PERSONA_SECRET, "");
    let persona_says = |outcome: Outcome, n: u32| {
        let b = body(ProviderKind::Persona, outcome, &format!("{c}:{a}"), &id, n, &at(-1));
        let (signer, app) = (&signer, &app);
        async move {
            let reply = signer.send(&app.http, &app.bridge_url, &b).await.unwrap();
            assert!(matches!(reply.status, 200 | 202), "{}: {:?}", reply.status, reply.body);
        }
    };
    persona_says(Outcome::Started, 1).await;
    persona_says(Outcome::Retake, 2).await;
    persona_says(Outcome::Retake, 2).await;
    let retake = app
        .wait_for("the retake's mail", WAIT, || async {
            app.mailbox().await.into_iter().find(|m| m["subject"].as_str().unwrap_or("").contains("again"))
        })
        .await;
    let text = retake["text"].as_str().unwrap();
    let sessions = app.provider_sessions().await;
    assert_eq!(sessions.len(), 1, "the same inquiry: {sessions:#?}");
    assert_eq!(sessions[0]["links_generated"], 2, "a second one-time link was generated");
    let fresh = sessions[0]["url"].as_str().unwrap();
    assert_ne!(fresh, first_link, "Persona's one-time links are good for one visit");
    assert!(text.contains(fresh) && !text.contains(&first_link), "{text}");
    assert!(retake["to"].as_str().unwrap().contains(email));
    let sent = app
        .wait_for("mail_sent retake", WAIT, || async {
            let t = app.timeline(c, a).await.ok()?;
            t.into_iter().find(|e| e.kind == "mail_sent" && e.detail.contains("\"retake\""))
        })
        .await;
    assert!(!sent.detail.contains(email) && !sent.detail.contains(fresh), "never the address or link: {}", sent.detail);
    // The duplicate notice mailed nothing more; the state is kept.
    let state = app.state(c, a).await.unwrap();
    assert_eq!((state.state.as_str(), state.action_required.as_str()), ("pending", "retake"));
    assert_eq!(state.starts[0].retakes, 1);
    assert_eq!(app.mailbox().await.len(), 2, "the invite and one retake");
    save(&app, c, a, "retake").await;
}
