//! Both signature schemes' header parsing, with any header values and body:
//! a verdict, never a panic, and never more than one MAC per (secret, scheme).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vbridge_core::intake::signature::{Check, Secret, verify_counting};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xFF: scheme selector, signature, timestamp, id, body.
    let mut parts = data.split(|b| *b == 0xFF);
    let selector = parts.next().and_then(|p| p.first().copied()).unwrap_or(0);
    let text = |p: Option<&[u8]>| p.and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("").to_owned();
    let (sig, ts, id) = (text(parts.next()), text(parts.next()), text(parts.next()));
    let body: Vec<u8> = parts.flatten().copied().collect();
    let secrets = [Secret::parse("fuzz-secret", 1).unwrap(), Secret::parse("whsec_Zm9vYmFy", 2).unwrap()];
    let check = Check {
        signature_header: "X-IL-Signature",
        timestamp_header: "X-IL-Timestamp",
        max_skew_seconds: 300,
        replay_protection: selector & 2 == 0,
        now_unix: 1_800_000_000,
    };
    let standard = selector & 1 == 1;
    let header = |name: &str| -> Option<&str> {
        match (standard, name.to_ascii_lowercase().as_str()) {
            (true, "webhook-signature") => Some(&sig),
            (true, "webhook-timestamp") => Some(&ts),
            (true, "webhook-id") => Some(&id),
            (false, "x-il-signature") => Some(&sig),
            (false, "x-il-timestamp") => Some(&ts),
            _ => None,
        }
    };
    let mut macs = 0;
    let _ = verify_counting(&check, header, &body, &secrets, &mut macs);
    assert!(macs <= secrets.len(), "{macs} MACs for one delivery");
});
