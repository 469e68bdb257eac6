//! The ATS adapters from tables: signatures, the documented sample bodies,
//! ignored deliveries and hostile strings.

use super::*;
use crate::intake::providers::MAX_SIGNATURE_HEADER_BYTES;
use crate::intake::providers::test_support::{headers, lookup};
use crate::intake::signature::Secret;

fn secret(s: &str) -> Secret {
    Secret::raw(s, 1).unwrap()
}

fn adapters() -> [(Box<dyn AtsAdapter>, &'static str); 2] {
    let secrets = || vec![secret("old-secret"), secret("new-secret")];
    [
        (Box::new(Greenhouse::new(secrets())), greenhouse::SIGNATURE_HEADER),
        (Box::new(Ashby::new(secrets())), ashby::SIGNATURE_HEADER),
    ]
}

fn sign(kind: AtsKind, s: &Secret, body: &[u8]) -> String {
    match kind {
        AtsKind::Greenhouse => greenhouse::sign(s, body),
        AtsKind::Ashby => ashby::sign(s, body),
    }
}

/// The documented `candidate_stage_change` body
/// (<https://developers.greenhouse.io/webhooks.html#candidate-stage-change>),
/// shortened, with its PII kept to prove none of it is copied.
pub fn greenhouse_body() -> Value {
    json!({"action": "candidate_stage_change", "payload": {"application": {
        "id": 265277, "rejected_at": null, "prospect": false, "status": "active",
        "applied_at": "2013-03-22T00:00:00Z", "last_activity_at": "2015-02-09T16:38:36Z",
        "url": "https://app.greenhouse.io/people/265772?application_id=265277",
        "source": {"id": 31, "name": "Agency"},
        "credited_to": {"id": 15, "email": "ada@example.com", "name": "Ada Lacey"},
        "current_stage": {"id": 71416, "name": "Assessment", "interviews": [{"id": 113101, "name": "Assessment",
            "status": "to_be_scheduled", "interviewers": [{"id": 2622, "display_name": "Carl Buddha", "status": "tentative"}]}]},
        "candidate": {
            "id": 265772, "first_name": "Giuseppe", "last_name": "Hurley", "title": "Great Person",
            "created_at": "2013-10-04T01:24:44Z", "external_id": "241b399ce4b0fd1c84e5528d",
            "phone_numbers": [{"value": "330-281-8004", "type": "home"}],
            "email_addresses": [{"value": "giuseppe.hurley@example.com", "type": "personal"}],
            "addresses": [{"value": "123 Fake St.", "type": "home"}],
            "recruiter": {"id": 3128, "email": "alicia.flopple.3128@example.com", "name": "Alicia Flopple"},
            "coordinator": {"id": 3128, "email": "alicia.flopple.3128@example.com", "name": "Alicia Flopple"},
            "attachments": [{"filename": "resume.pdf", "url": "https://prod-heroku.s3.amazonaws.com/...", "type": "resume"}],
            "tags": ["Import from Previous ATS"]},
        "jobs": [{"id": 3485, "name": "Designer", "requisition_id": "REQ-1042", "notes": "Digital and print",
            "job_post_id": 553282, "status": "open", "created_at": "2013-10-02T22:59:29Z",
            "departments": [{"id": 237, "name": "Community"}],
            "offices": [{"id": 54, "name": "New York", "location": "New York, NY"}]}]}}})
}

/// A `candidateStageChange` body in the shape of Ashby's schema
/// (<https://developers.ashbyhq.com/reference/candidatestagechangewebhook>),
/// with the contract's `webhookActionId` and a job location's name.
pub fn ashby_body() -> Value {
    json!({"action": "candidateStageChange", "webhookActionId": "0f1c5d2e-7a0b-4c1e-9b35-2f6a1d9e8c44",
        "data": {"application": {
            "id": "ba9a7f0e-3f5b-4f5e-8d43-1c2b3a4d5e6f", "createdAt": "2026-02-03T10:15:00.000Z",
            "updatedAt": "2026-03-09T11:56:26.085Z", "status": "Active", "customFields": [],
            "candidate": {"id": "5b1e6a4c-2d3f-4e5a-9b8c-7d6e5f4a3b2c", "name": "Jane Doe",
                "primaryEmailAddress": {"value": "jane.doe@example.org", "type": "Personal", "isPrimary": true},
                "primaryPhoneNumber": {"value": "222-222-3344", "type": "Work", "isPrimary": true}},
            "currentInterviewStage": {"id": "7c2d5e1f-0a9b-4c8d-b7e6-f5a4b3c2d1e0", "title": "Onsite",
                "type": "Active", "orderInInterviewPlan": 3},
            "source": {"id": "d1c2b3a4-0000-4000-8000-000000000001", "title": "LinkedIn"},
            "job": {"id": "4071538b-3cac-4fbf-ac76-f78ed250ffdd", "title": "First Designer",
                "locationId": "e5f6a7b8-0000-4000-8000-000000000002", "locationName": "Berlin",
                "departmentId": "a1b2c3d4-0000-4000-8000-000000000003", "customRequisitionId": "R-77"},
            "hiringTeam": [
                {"userId": "u-1", "email": "hm@example.org", "firstName": "Hank", "lastName": "Miles", "role": "Hiring Manager"},
                {"userId": "u-2", "email": "rita.recruiter@example.org", "firstName": "Rita", "lastName": "Reyes", "role": "Recruiter"}],
            "submitterClientIp": "79.255.55.222"}}})
}

fn greenhouse_headers() -> std::collections::HashMap<String, String> {
    headers(&[(greenhouse::EVENT_ID_HEADER, "7b1b4e5c-5a8e-4f3e-9d7a-0c1d2e3f4a5b".into())])
}

fn map(kind: AtsKind, body: &Value) -> AtsMapping {
    let h = greenhouse_headers();
    match kind {
        AtsKind::Greenhouse => Greenhouse::new(vec![]).map(&lookup(&h), body),
        AtsKind::Ashby => Ashby::new(vec![]).map(&lookup(&h), body),
    }
}

fn change(kind: AtsKind, body: &Value) -> StageChange {
    match map(kind, body) {
        AtsMapping::StageChange(c) => c,
        other => panic!("{kind:?}: {other:?}"),
    }
}

fn ignored(kind: AtsKind, body: &Value) -> AtsIgnored {
    match map(kind, body) {
        AtsMapping::Ignored(i) => i,
        other => panic!("{kind:?}: {other:?}"),
    }
}

#[test]
fn names_round_trip() {
    for k in AtsKind::ALL {
        assert_eq!(AtsKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(AtsKind::parse("lever"), None);
    assert_eq!(stored_key(AtsKind::Greenhouse, "e1"), "greenhouse:e1");
    assert_eq!(stored_key(AtsKind::Ashby, "a1"), "ashby:a1");
    let reasons = [
        (AtsIgnoreReason::NotUsed, "event_not_used"),
        (AtsIgnoreReason::NoIds, "no_ids"),
        (AtsIgnoreReason::NoEventKey, "no_event_key"),
        (AtsIgnoreReason::NoStage, "no_stage"),
    ];
    for (r, s) in reasons {
        assert_eq!(r.as_str(), s);
    }
}

#[test]
fn signatures_table() {
    let body = br#"{"action":"candidate_stage_change","payload":{}}"#;
    let long = "a".repeat(MAX_SIGNATURE_HEADER_BYTES + 1);
    for (a, name) in adapters() {
        let kind = a.kind();
        let good_old = sign(kind, &secret("old-secret"), body);
        let good_new = sign(kind, &secret("new-secret"), body);
        let other = sign(kind, &secret("someone-else"), body);
        let hex = good_new.split([' ', '=']).nth(1).unwrap().to_owned();
        let swapped = match kind {
            AtsKind::Greenhouse => format!("sha256={hex}"),
            AtsKind::Ashby => format!("sha256 {hex}"),
        };
        let rows: Vec<(Option<String>, Result<(), SignatureError>)> = vec![
            (Some(good_old.clone()), Ok(())),
            (Some(good_new.clone()), Ok(())),
            (Some(good_new.to_uppercase().replacen("SHA256", "sha256", 1)), Ok(())),
            (Some(format!("  {good_new} ")), Ok(())),
            (Some(other), Err(SignatureError::InvalidSignature)),
            (None, Err(SignatureError::MissingSignature)),
            (Some(String::new()), Err(SignatureError::InvalidSignature)),
            (Some(hex.clone()), Err(SignatureError::InvalidSignature)),
            (Some(swapped), Err(SignatureError::InvalidSignature)),
            (Some(good_new.replacen("sha256", "sha1", 1)), Err(SignatureError::InvalidSignature)),
            (Some(good_new[..good_new.len() - 2].to_owned()), Err(SignatureError::InvalidSignature)),
            (Some(good_new.replace(&hex[..2], "zz")), Err(SignatureError::InvalidSignature)),
            (Some(long.clone()), Err(SignatureError::TooManyEntries)),
        ];
        for (value, want) in rows {
            let h = headers(&value.iter().map(|v| (name, v.clone())).collect::<Vec<_>>());
            assert_eq!(a.verify(&lookup(&h), body), want, "{kind:?} {value:?}");
        }
        // Any case of the header name (the look-up is case-insensitive), and
        // a body changed after signing fails.
        let h = headers(&[(name.to_ascii_lowercase().as_str(), good_new.clone())]);
        assert_eq!(a.verify(&lookup(&h), body), Ok(()));
        assert_eq!(a.verify(&lookup(&h), b"{}"), Err(SignatureError::InvalidSignature));
    }
}

#[test]
fn no_secrets_verify_nothing() {
    let body = b"{}";
    let g = Greenhouse::new(vec![]);
    let h = headers(&[(greenhouse::SIGNATURE_HEADER, greenhouse::sign(&secret("x"), body))]);
    assert_eq!(g.verify(&lookup(&h), body), Err(SignatureError::InvalidSignature));
    let a = Ashby::new(vec![]);
    let h = headers(&[(ashby::SIGNATURE_HEADER, ashby::sign(&secret("x"), body))]);
    assert_eq!(a.verify(&lookup(&h), body), Err(SignatureError::InvalidSignature));
}

#[test]
fn the_greenhouse_sample_maps_every_field() {
    let c = change(AtsKind::Greenhouse, &greenhouse_body());
    assert_eq!(c.ats, AtsKind::Greenhouse);
    assert_eq!(c.event_key, "7b1b4e5c-5a8e-4f3e-9d7a-0c1d2e3f4a5b");
    assert_eq!(c.stored_key(), "greenhouse:7b1b4e5c-5a8e-4f3e-9d7a-0c1d2e3f4a5b");
    assert_eq!(c.ats_event, "candidate_stage_change");
    assert_eq!((c.candidate_id.as_str(), c.application_id.as_str()), ("265772", "265277"));
    assert_eq!(c.stage, "Assessment");
    assert_eq!(c.role.as_deref(), Some("Designer"));
    assert_eq!(c.region.as_deref(), Some("New York"));
    assert_eq!(c.requisition.as_deref(), Some("REQ-1042"));
    assert_eq!(c.email.as_ref().map(Email::as_str), Some("giuseppe.hurley@example.com"));
    assert_eq!(c.recruiter_email.as_ref().map(Email::as_str), Some("alicia.flopple.3128@example.com"));
    assert_eq!(c.applied_at.unwrap().to_rfc3339(), "2013-03-22T00:00:00+00:00");
    assert_eq!(c.occurred_at, None);
    let job = c.job();
    assert_eq!((job.role, job.region, job.requisition), (Some("Designer"), Some("New York"), Some("REQ-1042")));
    assert!(job.signals.is_empty());
    // Nothing else of the body, and no address in full, in the log line.
    let logged = format!("{c:?}");
    for pii in ["Giuseppe", "Hurley", "330-281-8004", "123 Fake St", "giuseppe.hurley", "alicia.flopple", "resume"] {
        assert!(!logged.contains(pii), "{pii} in {logged}");
    }
    assert!(logged.contains("Email(***@example.com)"));
}

#[test]
fn the_ashby_sample_maps_every_field() {
    let c = change(AtsKind::Ashby, &ashby_body());
    assert_eq!(c.ats, AtsKind::Ashby);
    assert_eq!(c.event_key, "0f1c5d2e-7a0b-4c1e-9b35-2f6a1d9e8c44");
    assert_eq!(c.ats_event, "candidateStageChange");
    assert_eq!(c.candidate_id.as_str(), "5b1e6a4c-2d3f-4e5a-9b8c-7d6e5f4a3b2c");
    assert_eq!(c.application_id.as_str(), "ba9a7f0e-3f5b-4f5e-8d43-1c2b3a4d5e6f");
    assert_eq!(c.stage, "Onsite");
    assert_eq!(c.role.as_deref(), Some("First Designer"));
    assert_eq!(c.region.as_deref(), Some("Berlin"));
    assert_eq!(c.requisition.as_deref(), Some("R-77"));
    assert_eq!(c.email.as_ref().map(Email::as_str), Some("jane.doe@example.org"));
    assert_eq!(c.recruiter_email.as_ref().map(Email::as_str), Some("rita.recruiter@example.org"));
    assert_eq!(c.applied_at.unwrap().to_rfc3339(), "2026-02-03T10:15:00+00:00");
    assert_eq!(c.occurred_at.unwrap().to_rfc3339(), "2026-03-09T11:56:26.085+00:00");
    let logged = format!("{c:?}");
    for pii in ["Jane", "222-222-3344", "79.255.55.222", "jane.doe", "rita.recruiter", "hm@"] {
        assert!(!logged.contains(pii), "{pii} in {logged}");
    }
    // The documented job carries no location name nor requisition: `None`.
    let mut b = ashby_body();
    let job = b.pointer_mut("/data/application/job").unwrap().as_object_mut().unwrap();
    job.remove("locationName");
    job.remove("customRequisitionId");
    job.insert("location".into(), json!({"name": "Remote - EU"}));
    let c = change(AtsKind::Ashby, &b);
    assert_eq!((c.region.as_deref(), c.requisition), (Some("Remote - EU"), None));
    b["data"]["application"]["job"].as_object_mut().unwrap().remove("location");
    assert_eq!(change(AtsKind::Ashby, &b).region, None);
}

#[test]
fn greenhouse_ids_numbers_or_strings() {
    let rows: &[(Value, Option<&str>)] = &[
        (json!(265772), Some("265772")),
        (json!("265772"), Some("265772")),
        (json!(18446744073709551615u64), Some("18446744073709551615")),
        (json!(-5), None),
        (json!(1.5), None),
        (json!(null), None),
        (json!(["1"]), None),
        (json!("a b"), None),
        (json!("a:b"), None),
        (json!(""), None),
        (json!("x".repeat(129)), None),
    ];
    for (id, want) in rows {
        let mut b = greenhouse_body();
        b["payload"]["application"]["candidate"]["id"] = id.clone();
        match (map(AtsKind::Greenhouse, &b), want) {
            (AtsMapping::StageChange(c), Some(w)) => assert_eq!(c.candidate_id.as_str(), *w),
            (AtsMapping::Ignored(i), None) => {
                assert_eq!(i.reason, AtsIgnoreReason::NoIds, "{id}");
                assert_eq!(i.application_id.as_ref().map(ApplicationId::as_str), Some("265277"));
                assert_eq!(i.candidate_id, None);
            }
            (other, _) => panic!("{id}: {other:?}"),
        }
    }
}

#[test]
fn other_actions_are_not_used() {
    let rows: &[(AtsKind, &str)] = &[
        (AtsKind::Greenhouse, "ping"),
        (AtsKind::Greenhouse, "hire_candidate"),
        (AtsKind::Greenhouse, "reject_candidate"),
        (AtsKind::Greenhouse, "Candidate_Stage_Change"),
        (AtsKind::Greenhouse, ""),
        (AtsKind::Ashby, "ping"),
        (AtsKind::Ashby, "applicationUpdate"),
        (AtsKind::Ashby, "candidateHire"),
        (AtsKind::Ashby, "candidatestagechange"),
    ];
    for (kind, action) in rows {
        let mut b = if *kind == AtsKind::Greenhouse { greenhouse_body() } else { ashby_body() };
        b["action"] = json!(action);
        let i = ignored(*kind, &b);
        assert_eq!(i.reason, AtsIgnoreReason::NotUsed, "{kind:?} {action}");
        assert_eq!(i.ats_event, *action);
        assert!(i.event_key.is_some() && i.candidate_id.is_some() && i.application_id.is_some());
    }
    // Ashby's documented ping, and a body that is not an object at all.
    let ping = json!({"action": "ping", "data": {"webhookActionType": "ping"}});
    let i = ignored(AtsKind::Ashby, &ping);
    assert_eq!(i.to_record(AtsKind::Ashby)["ignored"], "event_not_used");
    assert_eq!((i.reason, i.event_key, i.candidate_id), (AtsIgnoreReason::NotUsed, None, None));
    for kind in AtsKind::ALL {
        assert_eq!(ignored(kind, &json!([1, 2])).reason, AtsIgnoreReason::NotUsed);
        assert_eq!(ignored(kind, &json!({"action": 7})).ats_event, "");
    }
}

#[test]
fn missing_pieces_table() {
    type Edit = fn(&mut Value);
    let rows: &[(AtsKind, Edit, AtsIgnoreReason)] = &[
        (AtsKind::Greenhouse, |b| b["payload"]["application"]["id"] = Value::Null, AtsIgnoreReason::NoIds),
        (AtsKind::Greenhouse, |b| b["payload"]["application"]["candidate"] = Value::Null, AtsIgnoreReason::NoIds),
        (AtsKind::Greenhouse, |b| b["payload"]["application"]["current_stage"] = Value::Null, AtsIgnoreReason::NoStage),
        (
            AtsKind::Greenhouse,
            |b| b["payload"]["application"]["current_stage"]["name"] = json!(" \u{7} "),
            AtsIgnoreReason::NoStage,
        ),
        (AtsKind::Ashby, |b| b["data"]["application"]["id"] = json!("a/b"), AtsIgnoreReason::NoIds),
        (AtsKind::Ashby, |b| b["data"]["application"]["candidate"]["id"] = Value::Null, AtsIgnoreReason::NoIds),
        (AtsKind::Ashby, |b| b["data"]["application"]["currentInterviewStage"] = Value::Null, AtsIgnoreReason::NoStage),
        (AtsKind::Ashby, |b| drop(b.as_object_mut().unwrap().remove("webhookActionId")), AtsIgnoreReason::NoEventKey),
        (AtsKind::Ashby, |b| b["webhookActionId"] = json!("has space"), AtsIgnoreReason::NoEventKey),
        (AtsKind::Ashby, |b| b["webhookActionId"] = json!("k".repeat(201)), AtsIgnoreReason::NoEventKey),
        (AtsKind::Ashby, |b| b["webhookActionId"] = json!({"id": 1}), AtsIgnoreReason::NoEventKey),
    ];
    for (i, (kind, edit, want)) in rows.iter().enumerate() {
        let mut b = if *kind == AtsKind::Greenhouse { greenhouse_body() } else { ashby_body() };
        edit(&mut b);
        assert_eq!(ignored(*kind, &b).reason, *want, "row {i}");
    }
    // The key checked before the ids: both missing says no key.
    let mut b = ashby_body();
    b.as_object_mut().unwrap().remove("webhookActionId");
    b["data"]["application"]["id"] = Value::Null;
    assert_eq!(ignored(AtsKind::Ashby, &b).reason, AtsIgnoreReason::NoEventKey);
}

#[test]
fn greenhouse_event_key_is_the_header() {
    let g = Greenhouse::new(vec![]);
    let rows: &[(Option<&str>, Option<&str>)] = &[
        (Some("abc-123"), Some("abc-123")),
        (Some(" abc-123 "), Some("abc-123")),
        (Some(""), None),
        (Some("a b"), None),
        (Some("\u{0}x"), None),
        (None, None),
    ];
    for (value, want) in rows {
        let h = headers(&value.iter().map(|v| (greenhouse::EVENT_ID_HEADER, v.to_string())).collect::<Vec<_>>());
        match (g.map(&lookup(&h), &greenhouse_body()), want) {
            (AtsMapping::StageChange(c), Some(w)) => assert_eq!(c.event_key, *w),
            (AtsMapping::Ignored(i), None) => assert_eq!(i.reason, AtsIgnoreReason::NoEventKey, "{value:?}"),
            (other, _) => panic!("{value:?}: {other:?}"),
        }
    }
    // Ashby does not read the header: a body key only.
    let h = greenhouse_headers();
    let mut b = ashby_body();
    b.as_object_mut().unwrap().remove("webhookActionId");
    assert_eq!(ignored(AtsKind::Ashby, &b).reason, AtsIgnoreReason::NoEventKey);
    assert!(matches!(Ashby::new(vec![]).map(&lookup(&h), &ashby_body()), AtsMapping::StageChange(_)));
}

#[test]
fn emails_table() {
    let long_local = format!("{}@example.com", "a".repeat(250));
    let rows: &[(&str, Option<&str>)] = &[
        ("a@b", Some("a@b")),
        ("  jane.doe+tag@example.org ", Some("jane.doe+tag@example.org")),
        ("", None),
        ("   ", None),
        ("no-at.example.com", None),
        ("@example.com", None),
        ("jane@", None),
        ("a@b@c", None),
        ("ja ne@example.com", None),
        ("jane@exa\tmple.com", None),
        ("jane\u{0}@example.com", None),
        ("jane@example.com\u{85}", Some("jane@example.com")),
        ("jane@exam\u{85}ple.com", None),
        ("jane@example.com\u{202E}moc", None),
        (&long_local, None),
        // Dot-atoms only: no comments, quotes, literals or empty atoms (the
        // first found by the ats_map fuzz target).
        ("ail(***@example.org)", None),
        ("\"jane doe\"@example.org", None),
        ("jane@[192.0.2.1]", None),
        ("jane..doe@example.org", None),
        (".jane@example.org", None),
        ("jane@example..org", None),
        ("jane@exa_mple.org", None),
        ("***@example.org", Some("***@example.org")),
        ("o'brien+x@sub.example-1.org", Some("o'brien+x@sub.example-1.org")),
        ("jörg@bücher.example", Some("jörg@bücher.example")),
    ];
    for (s, want) in rows {
        assert_eq!(Email::parse(s).as_ref().map(Email::as_str), *want, "{s:?}");
    }
    let e = Email::parse("jane.doe@example.org").unwrap();
    assert_eq!(format!("{e:?}"), "Email(***@example.org)");
    assert_eq!(e.domain(), "example.org");
}

#[test]
fn a_bad_email_is_none_not_an_error() {
    let mut g = greenhouse_body();
    let addresses = json!([
        {"value": "not an address", "type": "personal"}, {"value": 42}, {"value": "work@corp.example", "type": "work"}
    ]);
    g["payload"]["application"]["candidate"]["email_addresses"] = addresses;
    g["payload"]["application"]["candidate"]["recruiter"] = json!({"email": "nope"});
    let c = change(AtsKind::Greenhouse, &g);
    assert_eq!(c.email.as_ref().map(Email::as_str), Some("work@corp.example"));
    assert_eq!(c.recruiter_email, None);
    g["payload"]["application"]["candidate"]["email_addresses"] = json!([{"value": "a@b@c"}]);
    assert_eq!(change(AtsKind::Greenhouse, &g).email, None);
    g["payload"]["application"]["candidate"]["email_addresses"] = json!("x@y");
    assert_eq!(change(AtsKind::Greenhouse, &g).email, None);

    let mut a = ashby_body();
    a["data"]["application"]["candidate"]["primaryEmailAddress"]["value"] = json!("jane@@example.org");
    a["data"]["application"]["hiringTeam"] =
        json!([{"role": "Recruiter", "email": null}, {"role": "Hiring Manager", "email": "hm@x.org"}]);
    let c = change(AtsKind::Ashby, &a);
    assert_eq!((c.email, c.recruiter_email), (None, None));
}

#[test]
fn hostile_strings_are_bounded() {
    let huge = "é".repeat(100_000);
    let mut g = greenhouse_body();
    let app = &mut g["payload"]["application"];
    app["current_stage"]["name"] = json!(format!("\u{1b}[31m  Tech\u{0} Screen\r\nFAKE LOG\u{202E}  "));
    app["jobs"][0]["name"] = json!(huge.clone());
    app["jobs"][0]["requisition_id"] = json!(1042);
    app["jobs"][0]["offices"] = json!([{"id": 1, "name": null, "location": {"name": "Austin, TX"}}]);
    app["applied_at"] = json!("yesterday");
    let c = change(AtsKind::Greenhouse, &g);
    assert_eq!(c.stage, "[31m  Tech ScreenFAKE LOG");
    assert_eq!(c.role.as_ref().unwrap().chars().count(), MAX_TEXT_CHARS);
    assert_eq!(c.requisition.as_deref(), Some("1042"));
    assert_eq!(c.region.as_deref(), Some("Austin, TX"));
    assert_eq!(c.applied_at, None);

    let mut a = ashby_body();
    a["action"] = json!(format!("{}\n", "x".repeat(10_000)));
    let i = ignored(AtsKind::Ashby, &a);
    assert_eq!(i.ats_event.chars().count(), MAX_EVENT_CHARS);
    assert!(!i.ats_event.contains('\n'));
    a["action"] = json!("candidateStageChange");
    a["data"]["application"]["updatedAt"] = json!(12);
    a["data"]["application"]["job"]["title"] = json!(["Designer"]);
    a["data"]["application"]["hiringTeam"] = json!({"role": "Recruiter"});
    let c = change(AtsKind::Ashby, &a);
    assert_eq!((c.occurred_at, c.role, c.recruiter_email), (None, None, None));
    for s in [&c.stage, &i.ats_event] {
        assert!(!s.chars().any(|ch| ch.is_control()));
    }
}

#[test]
fn bounded_text_table() {
    let rows: &[(&str, Option<&str>)] = &[
        ("Onsite", Some("Onsite")),
        ("  Onsite  ", Some("Onsite")),
        ("\u{0}\u{1}", None),
        ("", None),
        ("a\u{2028}b\u{2066}c", Some("abc")),
        (" \u{0} x", Some("x")),
    ];
    for (s, want) in rows {
        assert_eq!(bounded_text(s, MAX_TEXT_CHARS).as_deref(), *want, "{s:?}");
    }
    assert_eq!(bounded_text(&format!("{}   b", "a".repeat(199)), 203).as_deref().map(str::len), Some(203));
    assert_eq!(bounded_text(&format!("{} b", "a".repeat(199)), MAX_TEXT_CHARS).as_deref().map(str::len), Some(199));
}

#[test]
fn the_ignored_record_keeps_ids_only() {
    let mut b = greenhouse_body();
    b["action"] = json!("reject_candidate");
    let i = ignored(AtsKind::Greenhouse, &b);
    let r = i.to_record(AtsKind::Greenhouse);
    assert_eq!(
        r,
        json!({"ats": "greenhouse", "ats_event": "reject_candidate", "ignored": "event_not_used",
            "event_key": "greenhouse:7b1b4e5c-5a8e-4f3e-9d7a-0c1d2e3f4a5b",
            "candidate_id": "265772", "application_id": "265277"})
    );
}

fn ashby_schedule(action: &str, status: &str) -> Value {
    json!({"action": action, "webhookActionId": "wha-int-1", "data": {"interviewSchedule": {
        "id": "9a1c2b3d-0000-4000-8000-000000000010", "applicationId": "ba9a7f0e-3f5b-4f5e-8d43-1c2b3a4d5e6f",
        "candidateId": "5b1e6a4c-2d3f-4e5a-9b8c-7d6e5f4a3b2c", "interviewStageId": "st-1", "status": status,
        "updatedAt": "2026-03-09T11:56:26.085Z",
        "interviewEvents": [
            {"id": "e-2", "startTime": "2026-03-12T15:00:00.000Z", "endTime": "2026-03-12T16:00:00.000Z"},
            {"id": "e-1", "startTime": "2026-03-12T13:00:00.000Z", "endTime": "2026-03-12T14:00:00.000Z"}]}}})
}

#[test]
fn ashby_interview_schedules_map_to_their_earliest_start_or_a_cancellation() {
    for action in [ashby::SCHEDULE_CREATE, ashby::SCHEDULE_UPDATE] {
        let AtsMapping::Interview(i) = map(AtsKind::Ashby, &ashby_schedule(action, "Scheduled")) else {
            panic!("{action}: an interview")
        };
        assert_eq!(i.stored_key(), "ashby:wha-int-1");
        assert_eq!(i.application_id.as_str(), "ba9a7f0e-3f5b-4f5e-8d43-1c2b3a4d5e6f");
        assert_eq!(i.candidate_id.as_ref().map(|c| c.as_str()), Some("5b1e6a4c-2d3f-4e5a-9b8c-7d6e5f4a3b2c"));
        assert_eq!(i.starts_at.unwrap().to_rfc3339(), "2026-03-12T13:00:00+00:00", "the earliest event");
        assert!(!i.cancelled);
    }
    let AtsMapping::Interview(c) = map(AtsKind::Ashby, &ashby_schedule(ashby::SCHEDULE_UPDATE, "Cancelled")) else {
        panic!("a cancellation")
    };
    assert!(c.cancelled);
    // No candidate id: the bridge finds it by the application.
    let mut b = ashby_schedule(ashby::SCHEDULE_CREATE, "Scheduled");
    b["data"]["interviewSchedule"].as_object_mut().unwrap().remove("candidateId");
    b["data"]["interviewSchedule"]["interviewEvents"] = json!([]);
    let AtsMapping::Interview(n) = map(AtsKind::Ashby, &b) else { panic!("still an interview") };
    assert_eq!((n.candidate_id, n.starts_at), (None, None));
    // No application, or no key: ignored with the reason.
    let mut b = ashby_schedule(ashby::SCHEDULE_CREATE, "Scheduled");
    b["data"]["interviewSchedule"]["applicationId"] = json!("a b");
    assert_eq!(ignored(AtsKind::Ashby, &b).reason, AtsIgnoreReason::NoIds);
    let mut b = ashby_schedule(ashby::SCHEDULE_CREATE, "Scheduled");
    b.as_object_mut().unwrap().remove("webhookActionId");
    assert_eq!(ignored(AtsKind::Ashby, &b).reason, AtsIgnoreReason::NoEventKey);
}

#[test]
fn harvest_interviews_v3_and_v1_read_as_bookings_keyed_by_their_start() {
    use super::greenhouse::{polled_interview, polled_updated_at};
    let v3 = json!({"id": 9128481, "application_id": 265277, "job_id": 1, "job_interview_id": 2,
        "starts_at": "2026-12-10T15:00:00.000Z", "ends_at": "2026-12-10T16:00:00.000Z", "status": "scheduled",
        "created_at": "2026-12-03T10:00:00Z", "updated_at": "2026-12-03T10:05:00Z"});
    let i = polled_interview(&v3).expect("a booking");
    assert_eq!(
        (i.ats, i.schedule_id.as_str(), i.application_id.as_str(), i.candidate_id.is_none(), i.cancelled),
        (AtsKind::Greenhouse, "9128481", "265277", true, false)
    );
    assert_eq!(i.stored_key(), format!("greenhouse:interview-9128481-{}", 1_796_914_800));
    assert_eq!(i.starts_at.unwrap().to_rfc3339(), "2026-12-10T15:00:00+00:00");
    assert_eq!(polled_updated_at(&v3).unwrap().to_rfc3339(), "2026-12-03T10:05:00+00:00");
    // Feedback in, not moved: the same key (a duplicate); moved: a new one.
    let mut feedback = v3.clone();
    feedback["status"] = json!("awaiting_feedback");
    feedback["updated_at"] = json!("2026-12-11T09:00:00Z");
    assert_eq!(polled_interview(&feedback).unwrap().stored_key(), i.stored_key());
    let mut moved = v3.clone();
    moved["starts_at"] = json!("2026-12-11T15:00:00Z");
    assert_ne!(polled_interview(&moved).unwrap().stored_key(), i.stored_key());
    let mut skipped = v3.clone();
    skipped["status"] = json!("skipped");
    assert!(polled_interview(&skipped).unwrap().cancelled);
    // Not bookings: no time yet, no ids, odd bytes in the id.
    for (k, v) in [("starts_at", json!(null)), ("application_id", json!(null)), ("id", json!("9\u{0}1"))] {
        let mut item = v3.clone();
        item[k] = v;
        assert!(polled_interview(&item).is_none(), "{k}");
    }
    // v1 (legacy): the start is `start.date_time`.
    let v1 = json!({"id": 1, "application_id": 2, "start": {"date_time": "2026-12-10T15:00:00.000Z"},
        "end": {"date_time": "2026-12-10T16:00:00.000Z"}, "status": "scheduled", "updated_at": "2026-12-03T10:05:00Z"});
    assert_eq!(polled_interview(&v1).unwrap().starts_at, i.starts_at);
}

/// Greenhouse's "Candidate anonymized" web hook
/// (<https://developers.greenhouse.io/webhooks.html#candidate-anonymized>).
#[test]
fn a_greenhouse_anonymization_names_the_candidate_to_erase() {
    let body = serde_json::json!({"action": "candidate_anonymized",
        "payload": {"candidate_id": 37031511, "anonymized_fields": ["full_name", "email_addresses"]}});
    let AtsMapping::Anonymized(a) = map(AtsKind::Greenhouse, &body) else {
        panic!("{:?}", map(AtsKind::Greenhouse, &body))
    };
    assert_eq!(a.candidate_id.as_str(), "37031511");
    assert_eq!(a.stored_key(), "greenhouse:7b1b4e5c-5a8e-4f3e-9d7a-0c1d2e3f4a5b");
    let mut none = body.clone();
    none["payload"]["candidate_id"] = serde_json::Value::Null;
    assert_eq!(ignored(AtsKind::Greenhouse, &none).reason, AtsIgnoreReason::NoIds);
    let no_key = Greenhouse::new(vec![secret("s")]).map(&|_: &str| None::<&str>, &body);
    let AtsMapping::Ignored(i) = no_key else { panic!() };
    assert_eq!(i.reason, AtsIgnoreReason::NoEventKey);
}
