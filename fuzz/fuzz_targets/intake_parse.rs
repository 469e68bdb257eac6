//! Any bytes as a webhook body: read leniently for a refused delivery's
//! record, redacted, parsed. A clean error or a parsed delivery, never a
//! panic; and what is accepted is something the store can hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vbridge_core::domain::TraceId;
use vbridge_core::intake::{parse, redact};
use vbridge_core::{DEFAULT_POLICY_YAML, Policy};

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::parse(DEFAULT_POLICY_YAML).expect("the seed policy"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let p = policy();
    let claimed = parse::claimed(&value, p.key_field());
    for id in [&claimed.event_id, &claimed.candidate_id, &claimed.application_id, &claimed.idempotency_key] {
        assert!(id.as_ref().is_none_or(|s| !s.chars().any(char::is_control) && s.chars().count() <= 256));
    }
    redact::redact(&mut value, p.redact_fields());
    match parse::parse(&value, p) {
        Ok(intake) => {
            assert!(!intake.event_type_raw.chars().any(char::is_control));
            assert!(!matches!(intake.application_id.as_str(), "." | ".."));
            let signal = intake.to_signal("2026-01-01T00:00:00Z", &TraceId::parse("t").unwrap());
            assert!(!serde_json::to_string(&signal).unwrap().contains('\0'));
        }
        Err(e) => assert!(!e.field.is_empty()),
    }
});
