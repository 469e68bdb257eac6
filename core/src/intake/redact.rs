//! Redaction of the policy's `piiRedaction.redactFields`, at any depth, before
//! anything is stored, logged or sent to Temporal. Pure; no I/O.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Replace every value whose key is in `fields`, at any depth (objects inside
/// arrays too), by `sha256:<hex>` of its JSON text. Returns how many were replaced.
pub fn redact(value: &mut Value, fields: &[String]) -> usize {
    match value {
        Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map.iter_mut() {
                if fields.iter().any(|f| f == k) {
                    if !is_redacted(v) {
                        let text = match &*v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        *v = Value::String(format!("sha256:{}", sha256_hex(text.as_bytes())));
                    }
                    n += 1;
                } else {
                    n += redact(v, fields);
                }
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(|v| redact(v, fields)).sum(),
        _ => 0,
    }
}

fn is_redacted(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.len() == 71 && s.starts_with("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_POLICY_YAML, Policy};
    use serde_json::json;

    #[test]
    fn redacts_at_any_depth() {
        let fields: Vec<String> = Policy::parse(DEFAULT_POLICY_YAML).unwrap().redact_fields().to_vec();
        let mut v = json!({
            "raw_face_image": "FACE-BYTES",
            "signals": {"doc": {"raw_document_image": "DOC"}, "list": [{"biometric_templates": [1, 2, 3]}]},
            "keep": "me"
        });
        assert_eq!(redact(&mut v, &fields), 3);
        let text = v.to_string();
        for secret in ["FACE-BYTES", "DOC", "[1,2,3]"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["raw_face_image"], format!("sha256:{}", sha256_hex(b"FACE-BYTES")));
        assert_eq!(v["signals"]["list"][0]["biometric_templates"], format!("sha256:{}", sha256_hex(b"[1,2,3]")));
        assert_eq!(v["keep"], "me");
        // Idempotent: redacting again changes nothing.
        let before = v.clone();
        redact(&mut v, &fields);
        assert_eq!(v, before);
    }
}
