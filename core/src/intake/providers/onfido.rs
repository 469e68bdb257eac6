//! Onfido (docs/contract.md §7).
//!
//! Signature: `X-SHA2-Signature: <hex>`, HMAC-SHA256 of the raw body keyed
//! with the webhook's token; no timestamp.
//! <https://documentation.onfido.com/api/latest/#webhooks> ("Verifying webhook signatures").
//!
//! Body: `{"payload": {"resource_type", "action", "object": {"id", "status",
//! "completed_at_iso8601" | "started_at_iso8601", "workflow_run_id"?, "href"},
//! "resource": {…, "customer_user_id", "reasons"}}}`; `resource` is the
//! workflow run (Onfido Studio), whose `customer_user_id` carries the
//! bridge's reference and whose `reasons` are the run's outcome reasons.
//! <https://documentation.onfido.com/api/latest/#webhook-event-object>, the
//! `WebhookEventPayloadResource` schema of Onfido's published OpenAPI
//! specification (<https://github.com/onfido/onfido-openapi-spec>).

use super::{Adapter, Alg, Clock, Mapping, Meaning, ProviderKind, Read, any_matches, bounded, hex_digest, str_at};
use crate::intake::signature::{Secret, SignatureError};
use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "X-SHA2-Signature";

pub struct Onfido {
    pub tokens: Vec<Secret>,
}

/// (action, object status) → meaning.
fn meaning(action: &str, status: Option<&str>) -> Option<Meaning> {
    Some(match (action, status) {
        ("workflow_task.started" | "check.started", _) => Meaning::Started,
        ("workflow_run.completed", Some("approved")) => Meaning::Verified,
        ("workflow_run.completed", Some("review")) => Meaning::NeedsReview,
        ("workflow_run.completed", Some("declined")) => Meaning::Failed,
        ("workflow_run.completed", Some("abandoned")) => Meaning::Expired,
        _ => return None,
    })
}

impl Adapter for Onfido {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Onfido
    }

    fn verify<'h>(
        &self,
        header: &dyn Fn(&str) -> Option<&'h str>,
        body: &[u8],
        _clock: &Clock,
    ) -> Result<(), SignatureError> {
        let value = bounded(header, &[SIGNATURE_HEADER])?;
        let candidates: Vec<Vec<u8>> = hex_digest(value, Alg::Sha256).into_iter().collect();
        if any_matches(Alg::Sha256, &self.tokens, &[body], &candidates) {
            Ok(())
        } else {
            Err(SignatureError::InvalidSignature)
        }
    }

    fn map(&self, body: &Value) -> Mapping {
        let action = str_at(body, "/payload/action").unwrap_or("");
        let object_id = str_at(body, "/payload/object/id");
        let status = str_at(body, "/payload/object/status");
        let time = str_at(body, "/payload/object/completed_at_iso8601")
            .or_else(|| str_at(body, "/payload/object/started_at_iso8601"));
        // The run a task belongs to; a run or a check is its own.
        let check_id = if action.starts_with("workflow_task.") {
            str_at(body, "/payload/object/workflow_run_id")
        } else {
            object_id
        };
        // A task's id names its step in the workflow, the same in every run:
        // its key names the run too.
        let object_key = match (action.starts_with("workflow_task."), check_id, object_id) {
            (true, Some(run), Some(id)) => Some(format!("{run}/{id}")),
            (false, _, Some(id)) => Some(id.to_owned()),
            _ => None,
        };
        let event_key = match (object_key.as_deref().and_then(super::key_part), super::key_part(action)) {
            (Some(id), Some(action)) => {
                let mut key = format!("{action}:{id}");
                for part in [status, time].into_iter().flatten().filter_map(super::key_part) {
                    key.push(':');
                    key.push_str(part);
                }
                Some(key)
            }
            _ => None,
        };
        let reasons = body.pointer("/payload/resource/reasons").and_then(Value::as_array);
        Read {
            provider: ProviderKind::Onfido,
            provider_event: action.chars().take(128).collect(),
            provider_status: status.map(|s| s.chars().take(64).collect()),
            meaning: meaning(action, status),
            event_key,
            reference: str_at(body, "/payload/resource/customer_user_id"),
            check_id,
            occurred_at: super::rfc3339(time),
            labels: super::labels(reasons.into_iter().flatten()),
        }
        .settle()
    }
}

/// `X-SHA2-Signature` for `body`.
pub fn sign(token: &Secret, body: &[u8]) -> String {
    super::sign_hex(Alg::Sha256, token, &[body])
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{headers, lookup};
    use super::super::{IgnoreReason, MAX_STORED_KEY_BYTES, Reference, fit_key, stored_key};
    use super::*;
    use serde_json::json;

    fn clock() -> Clock {
        Clock { now_unix: 0, max_skew_seconds: 300, replay_protection: true }
    }

    fn verify(a: &Onfido, sig: &str, body: &[u8]) -> Result<(), SignatureError> {
        let h = headers(&[(SIGNATURE_HEADER, sig.to_owned())]);
        a.verify(&lookup(&h), body, &clock())
    }

    /// Onfido's published test vector (the webhook verification test of
    /// onfido-python before v3, `tests/test_webhook_verification.py`).
    #[test]
    fn onfidos_own_test_vector() {
        let body = br#"{"payload":{"resource_type":"check","action":"check.completed","object":{"id":"check-123","status":"complete","completed_at_iso8601":"2020-01-01T00:00:00Z","href":"https://api.onfido.com/v3/checks/check-123"}}}"#;
        let a = Onfido { tokens: vec![Secret::raw("_ABC123abc123ABC123abc123ABC123_", 1).unwrap()] };
        let sig = "a0082d7481f9f0a2907583dbe1f344d6d4c0d9989df2fd804f98479f60cd760e";
        assert_eq!(sign(&a.tokens[0], body), sig);
        assert_eq!(verify(&a, sig, body), Ok(()));
        assert_eq!(verify(&a, &sig.replacen('a', "b", 1), body), Err(SignatureError::InvalidSignature));
        // Rotation: the old token still verifies while both are configured.
        let rotated = Onfido { tokens: vec![Secret::raw("new-token", 1).unwrap(), a.tokens[0].clone()] };
        assert_eq!(verify(&rotated, sig, body), Ok(()));
        // check.completed has no meaning here (the run's completion has).
        let Mapping::Ignored(i) = a.map(&serde_json::from_slice(body).unwrap()) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoMeaning);
        assert_eq!(a.verify(&|_: &str| None::<&str>, body, &clock()), Err(SignatureError::MissingSignature));
        assert_eq!(verify(&a, &"a".repeat(5000), body), Err(SignatureError::TooManyEntries));
    }

    /// A `workflow_run.completed` as Onfido documents it, with planted PII in
    /// the run's output.
    pub fn run_completed(status: &str, reference: Option<&str>) -> Value {
        json!({"payload": {
            "resource_type": "workflow_run", "action": "workflow_run.completed",
            "object": {"id": "b48fdff9-66a1-405d-9912-54780799bd68", "status": status,
                "completed_at_iso8601": "2026-03-09T18:13:13Z",
                "href": "https://api.eu.onfido.com/v3.6/workflow_runs/b48fdff9-66a1-405d-9912-54780799bd68"},
            "resource": {"id": "b48fdff9-66a1-405d-9912-54780799bd68", "status": status,
                "workflow_id": "5b9a3fd2-bd29-4bd3-a4ef-e2e1ea2a0d3b", "customer_user_id": reference,
                "reasons": ["document_expired"], "tags": [],
                "output": {"first_name": "Jane", "last_name": "Doe", "date_of_birth": "1990-01-01", "document_number": "999999999"},
                "created_at": "2026-03-09T18:12:44Z", "updated_at": "2026-03-09T18:13:13Z"}}})
    }

    #[test]
    fn the_meaning_table() {
        let a = Onfido { tokens: vec![] };
        let rows: &[(&str, Result<Meaning, IgnoreReason>)] = &[
            ("approved", Ok(Meaning::Verified)),
            ("review", Ok(Meaning::NeedsReview)),
            ("declined", Ok(Meaning::Failed)),
            ("abandoned", Ok(Meaning::Expired)),
            ("error", Err(IgnoreReason::NoMeaning)),
        ];
        for (status, want) in rows {
            match (a.map(&run_completed(status, Some("cand_1:app_1"))), want) {
                (Mapping::Event(e), Ok(m)) => {
                    assert_eq!(e.meaning, *m);
                    assert_eq!(e.check_id.as_str(), "b48fdff9-66a1-405d-9912-54780799bd68");
                    assert_eq!(
                        e.event_key,
                        format!(
                            "workflow_run.completed:b48fdff9-66a1-405d-9912-54780799bd68:{status}:2026-03-09T18:13:13Z"
                        )
                    );
                    assert_eq!(e.reference, Reference::parse("cand_1:app_1").unwrap());
                    assert_eq!(e.labels, vec!["document_expired"]);
                    assert_eq!(e.occurred_at.unwrap().to_rfc3339(), "2026-03-09T18:13:13+00:00");
                }
                (Mapping::Ignored(i), Err(r)) => assert_eq!(i.reason, *r, "{status}"),
                (other, _) => panic!("{status}: {other:?}"),
            }
        }
        let Mapping::Ignored(i) = a.map(&run_completed("approved", None)) else { panic!() };
        assert_eq!(i.reason, IgnoreReason::NoReference);
    }

    /// A fuzz find (fuzz/corpus/provider_map): a task whose run id, status
    /// and time make a key past the stored bound. It still maps to one event
    /// whose canonical body the IL route accepts, its key fitted to the bound
    /// and the same on a retry; a body that differs only past the head maps
    /// to another key.
    #[test]
    fn a_key_past_the_stored_bound_is_fitted_to_one_per_event() {
        use crate::intake::parse;
        let a = Onfido { tokens: vec![] };
        let body = |time_tail: &str| {
            json!({"payload": {"resource_type": "workflow_task", "action": "workflow_task.started",
                "object": {"id": "profile_1", "workflow_run_id": format!("bc{}77", "4".repeat(120)),
                    "status": "started", "started_at_iso8601": format!("2024-07{}{time_tail}", ":".repeat(110))},
                "resource": {"customer_user_id": "cand_1:app_1"}}})
        };
        let policy = crate::Policy::parse(crate::DEFAULT_POLICY_YAML).unwrap();
        let key_of = |v: &Value| {
            let Mapping::Event(e) = a.map(v) else { panic!("{v}") };
            let stored = stored_key(ProviderKind::Onfido, &e.event_key);
            assert_eq!(stored.len(), MAX_STORED_KEY_BYTES, "{stored}");
            assert!(e.event_key.starts_with("workflow_task.started:bc444"), "{}", e.event_key);
            let canonical = e.to_body(policy.key_field(), "2026-01-01T00:00:00+00:00", &Default::default());
            let parsed = parse::parse(&canonical, &policy).expect("the canonical body parses");
            assert_eq!(parsed.idempotency_key.as_str(), stored);
            // No time in the body: the receipt time stands in.
            assert_eq!(parsed.occurred_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
            e.event_key
        };
        let first = key_of(&body("-10T12::0499Z"));
        assert_eq!(first, key_of(&body("-10T12::0499Z")));
        assert_ne!(first, key_of(&body("-10T12::0500Z")));
        // A key within the bound is kept as given.
        assert_eq!(fit_key(ProviderKind::Onfido, "a".repeat(249)), "a".repeat(249));
        assert_eq!(fit_key(ProviderKind::Onfido, "a".repeat(250)).len(), 249);
    }

    #[test]
    fn started_rows() {
        let a = Onfido { tokens: vec![] };
        // workflow_task.started (onfido-python's studio test event), with the run's reference.
        let task = json!({"payload": {"resource_type": "workflow_task", "action": "workflow_task.started",
            "object": {"id": "profile_1eb92", "task_spec_id": "profile_1eb92", "task_def_id": "profile_data",
                "workflow_run_id": "bc77c6e5-753a-4580-96a6-aaed3e5a8d19", "status": "started",
                "started_at_iso8601": "2024-07-10T12:49:09Z"},
            "resource": {"id": "profile_1eb92", "workflow_run_id": "bc77c6e5-753a-4580-96a6-aaed3e5a8d19",
                "customer_user_id": "cand_1:app_1"}}});
        let Mapping::Event(e) = a.map(&task) else { panic!() };
        assert_eq!((e.meaning, e.check_id.as_str()), (Meaning::Started, "bc77c6e5-753a-4580-96a6-aaed3e5a8d19"));
        assert_eq!(
            e.event_key,
            "workflow_task.started:bc77c6e5-753a-4580-96a6-aaed3e5a8d19/profile_1eb92:started:2024-07-10T12:49:09Z"
        );
        let check = json!({"payload": {"resource_type": "check", "action": "check.started",
            "object": {"id": "f2302f45-227d-413d-ad61-09ec077a086a", "status": "in_progress"},
            "resource": {"customer_user_id": "cand_1:app_1"}}});
        let Mapping::Event(e) = a.map(&check) else { panic!() };
        assert_eq!(e.meaning, Meaning::Started);
        assert_eq!(e.occurred_at, None, "no time in the body: the receipt time stands in");
    }
}
