//! Redaction at any depth: after it, every value under a redacted name is
//! its hash, and redacting again changes nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vbridge_core::intake::redact::redact;

const FIELDS: [&str; 3] = ["biometric_templates", "raw_document_image", "raw_face_image"];

fn check(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, item) in m {
                if FIELDS.contains(&k.as_str()) {
                    let s = item.as_str().expect("a redacted value is a string");
                    assert!(s.len() == 71 && s.starts_with("sha256:"), "{k} was not redacted: {s}");
                } else {
                    check(item);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(check),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else { return };
    let fields: Vec<String> = FIELDS.iter().map(|f| f.to_string()).collect();
    redact(&mut value, &fields);
    check(&value);
    let once = value.clone();
    redact(&mut value, &fields);
    assert_eq!(once, value, "redaction is idempotent");
});
