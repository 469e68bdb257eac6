//! Any bytes as a provider's body, mapped by each of the four adapters
//! (Persona, Onfido, Veriff, Sumsub) and a declared one (Checkr's table,
//! docs/providers.md): an event or an ignored delivery, never
//! a panic. An event's canonical body is one the IL route's parser accepts
//! (the one pipeline after the adapter), with the keys bounded and printable
//! and the labels bounded; an ignored delivery's record is plain JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vbridge_core::intake::parse;
use vbridge_core::intake::providers::{
    Adapter, MAX_LABEL_CHARS, MAX_LABELS, Mapping, ReasonMap, custom, onfido::Onfido, persona::Persona, sumsub::Sumsub,
    veriff::Veriff,
};
use vbridge_core::{DEFAULT_POLICY_YAML, Policy};

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy::parse(DEFAULT_POLICY_YAML).expect("the seed policy"))
}

fn checkr() -> custom::Custom {
    let raw: custom::RawSpec = serde_json::from_value(serde_json::json!({
        "signature_header": "X-Checkr-Signature", "encoding": "hex", "algorithm": "sha256",
        "reference": "/data/object/tags/0", "check_id": "/data/object/id", "event_key": "/id",
        "time": "/created_at", "status": "/data/object/result", "event_name": "/type",
        "statuses": {"clear": "verified", "consider": "needs_review"}
    }))
    .expect("the Checkr declaration");
    custom::Custom { spec: custom::Spec::parse("checkr", &raw).expect("a valid declaration"), secrets: vec![] }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let adapters: [Box<dyn Adapter>; 5] = [
        Box::new(Persona { secrets: vec![] }),
        Box::new(Onfido { tokens: vec![] }),
        Box::new(Veriff { secrets: vec![], api_key: String::new() }),
        Box::new(Sumsub { secrets: vec![] }),
        Box::new(checkr()),
    ];
    let p = policy();
    for a in &adapters {
        match a.map(&value) {
            Mapping::Event(e) => {
                assert!(e.event_key.len() <= 1024 && e.event_key.bytes().all(|b| b.is_ascii_graphic()), "{e:?}");
                assert!(e.labels.len() <= MAX_LABELS);
                assert!(
                    e.labels.iter().all(|l| l.chars().count() <= MAX_LABEL_CHARS && !l.chars().any(char::is_control))
                );
                let body = e.to_body(p.key_field(), "2026-01-01T00:00:00+00:00", &ReasonMap::default());
                if let Err(err) = parse::parse(&body, p) {
                    panic!("{:?}: the canonical body {body} does not parse: {err:?}", a.kind());
                }
            }
            Mapping::Redacted(r) => {
                assert_eq!(r.provider, a.kind());
                assert!(r.event_key.len() <= 1024 && r.event_key.bytes().all(|b| b.is_ascii_graphic()), "{r:?}");
            }
            Mapping::Ignored(i) => {
                let record = i.to_record(a.kind()).to_string();
                assert!(!record.contains('\0'));
            }
        }
    }
});
