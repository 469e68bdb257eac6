//! Each provider's signature header parsing (Persona's `t=…,v1=…` groups,
//! Onfido's and Veriff's bare hex, Sumsub's digest and its algorithm header),
//! with any header values and body: a verdict, never a panic. And the
//! oracle: the same body signed as the vendor signs it always verifies, and
//! a header past the length bound never does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vbridge_core::intake::providers::{
    Adapter, Alg, Clock, MAX_SIGNATURE_HEADER_BYTES, onfido, persona, sumsub, veriff,
};
use vbridge_core::intake::signature::{Secret, SignatureError};

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xFF: selector, signature header, second header
    // (Sumsub's algorithm, Veriff's client), body.
    let mut parts = data.split(|b| *b == 0xFF);
    let selector = parts.next().and_then(|p| p.first().copied()).unwrap_or(0);
    let text = |p: Option<&[u8]>| p.and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("").to_owned();
    let (sig, second) = (text(parts.next()), text(parts.next()));
    let body: Vec<u8> = parts.flatten().copied().collect();
    let secrets = vec![Secret::raw("fuzz-secret", 1).unwrap(), Secret::raw("wbhsec_other", 2).unwrap()];
    let clock = Clock { now_unix: NOW, max_skew_seconds: 300, replay_protection: selector & 4 == 0 };
    let (adapter, names, second_name): (Box<dyn Adapter>, &[&str], &str) = match selector % 4 {
        0 => (Box::new(persona::Persona { secrets: secrets.clone() }), &[persona::SIGNATURE_HEADER], ""),
        1 => (Box::new(onfido::Onfido { tokens: secrets.clone() }), &[onfido::SIGNATURE_HEADER], ""),
        2 => (
            Box::new(veriff::Veriff { secrets: secrets.clone(), api_key: "key".into() }),
            &veriff::SIGNATURE_HEADERS,
            veriff::AUTH_CLIENT_HEADERS[0],
        ),
        _ => (Box::new(sumsub::Sumsub { secrets: secrets.clone() }), &[sumsub::DIGEST_HEADER], sumsub::ALG_HEADER),
    };
    let verdict = |sig: &str, second: &str| {
        let header = |name: &str| -> Option<&str> {
            let n = name.to_ascii_lowercase();
            if names.iter().any(|x| x.to_ascii_lowercase() == n) {
                Some(sig)
            } else if !second_name.is_empty() && n == second_name.to_ascii_lowercase() {
                Some(second)
            } else {
                None
            }
        };
        adapter.verify(&header, &body, &clock)
    };
    let fuzzed = verdict(&sig, &second);
    if sig.len() > MAX_SIGNATURE_HEADER_BYTES {
        assert_eq!(fuzzed, Err(SignatureError::TooManyEntries));
    }
    // The oracle: signed as the vendor signs, with the fuzzed body.
    let secret = &secrets[usize::from(selector & 8 != 0)];
    let (good, good_second) = match selector % 4 {
        0 => (persona::sign(std::slice::from_ref(secret), NOW, &body), String::new()),
        1 => (onfido::sign(secret, &body), String::new()),
        2 => (veriff::sign(secret, &body), "key".to_owned()),
        _ => {
            let (alg, name) =
                [(Alg::Sha1, "HMAC_SHA1_HEX"), (Alg::Sha256, "HMAC_SHA256_HEX"), (Alg::Sha512, "HMAC_SHA512_HEX")]
                    [usize::from(selector >> 4) % 3];
            (sumsub::sign(alg, secret, &body), name.to_owned())
        }
    };
    assert_eq!(verdict(&good, &good_second), Ok(()), "selector {selector}");
});
