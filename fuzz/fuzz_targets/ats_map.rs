//! Any bytes through the two ATS adapters (Greenhouse, Ashby): `verify`
//! with any signature header value and body, and, when the bytes are JSON,
//! `map` with a fixed event-id header. A verdict and a mapping, never a
//! panic. The oracles: the body signed as the ATS signs it always verifies,
//! a header past the length bound never does; a stage change's key is
//! printable and bounded, its names bounded and free of control characters,
//! its addresses never shown in full by `Debug`; an ignored delivery's
//! record is plain JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vbridge_core::intake::ats::{
    Ashby, AtsAdapter, AtsKind, AtsMapping, Email, Greenhouse, MAX_EVENT_CHARS, MAX_TEXT_CHARS, ashby, greenhouse,
};
use vbridge_core::intake::providers::MAX_SIGNATURE_HEADER_BYTES;
use vbridge_core::intake::signature::{Secret, SignatureError};

fn bounded_name(s: &str) -> bool {
    s.chars().count() <= MAX_TEXT_CHARS && !s.is_empty() && !s.chars().any(char::is_control)
}

/// `Debug` shows the mask and the domain, exactly: never the local part
/// (comparing the whole form, since an address may read like its own mask).
fn redacted(e: &Email) -> bool {
    format!("{e:?}") == format!("Email(***@{})", e.domain())
}

fuzz_target!(|data: &[u8]| {
    let secrets = vec![Secret::raw("fuzz-secret", 1).unwrap(), Secret::raw("rotated-secret", 2).unwrap()];
    let adapters: [Box<dyn AtsAdapter>; 2] =
        [Box::new(Greenhouse::new(secrets.clone())), Box::new(Ashby::new(secrets.clone()))];

    // The signature header's value up to the first 0xFF, the body after it.
    let (sig, body) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => (String::from_utf8_lossy(data).into_owned(), data),
    };
    for a in &adapters {
        let (name, good) = match a.kind() {
            AtsKind::Greenhouse => (greenhouse::SIGNATURE_HEADER, greenhouse::sign(&secrets[1], body)),
            AtsKind::Ashby => (ashby::SIGNATURE_HEADER, ashby::sign(&secrets[1], body)),
        };
        let with = |value: &str| {
            let header = |n: &str| n.eq_ignore_ascii_case(name).then_some(value);
            a.verify(&header, body)
        };
        let verdict = with(&sig);
        if sig.len() > MAX_SIGNATURE_HEADER_BYTES {
            assert_eq!(verdict, Err(SignatureError::TooManyEntries));
        }
        assert_eq!(with(&good), Ok(()), "{:?}: the ATS's own signature", a.kind());
        let none = |_: &str| None::<&str>;
        assert_eq!(a.verify(&none, body), Err(SignatureError::MissingSignature));
    }

    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let header = |n: &str| n.eq_ignore_ascii_case(greenhouse::EVENT_ID_HEADER).then_some("fuzz-event-1");
    for a in &adapters {
        match a.map(&header, &value) {
            AtsMapping::StageChange(c) => {
                assert_eq!(c.ats, a.kind());
                assert!(c.event_key.len() <= 200 && c.event_key.bytes().all(|b| b.is_ascii_graphic()), "{c:?}");
                assert!(c.ats_event.chars().count() <= MAX_EVENT_CHARS);
                assert!(bounded_name(&c.stage), "{c:?}");
                for s in [&c.role, &c.region, &c.requisition].into_iter().flatten() {
                    assert!(bounded_name(s), "{c:?}");
                }
                for e in [&c.email, &c.recruiter_email].into_iter().flatten() {
                    assert!(e.as_str().len() <= 254 && redacted(e), "{e:?}");
                }
                assert!(c.stored_key().starts_with(a.kind().as_str()));
                let _ = c.job();
            }
            AtsMapping::Interview(i) => {
                assert_eq!(i.ats, a.kind());
                for k in [&i.event_key, &i.schedule_id] {
                    assert!(k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()), "{i:?}");
                }
                assert!(i.ats_event.chars().count() <= MAX_EVENT_CHARS);
                assert!(i.stored_key().starts_with(a.kind().as_str()));
            }
            AtsMapping::Anonymized(x) => {
                assert_eq!(x.ats, a.kind());
                assert!(x.event_key.len() <= 200 && x.event_key.bytes().all(|b| b.is_ascii_graphic()), "{x:?}");
                assert!(x.ats_event.chars().count() <= MAX_EVENT_CHARS);
                assert!(x.stored_key().starts_with(a.kind().as_str()));
            }
            AtsMapping::Ignored(i) => {
                assert!(i.ats_event.chars().count() <= MAX_EVENT_CHARS);
                let record = i.to_record(a.kind()).to_string();
                assert!(!record.contains('\0'));
            }
        }
    }
});
