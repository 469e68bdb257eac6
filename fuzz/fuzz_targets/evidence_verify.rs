//! Any bytes as an evidence pack (`vbridge evidence verify` reads files a
//! third party hands over): a verdict with its problems named, never a
//! panic. The oracles: bytes that are not the sample pack never verify
//! against the sample's key unless they parse to the same pack; and any
//! single byte flipped inside the sample's records is caught.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vbridge_core::chain::Keyring;
use vbridge_core::evidence::{Pack, PublicKey, verify};

const SAMPLE: &[u8] = include_bytes!("../../docs/evidence/sample-pack.json");
const KEY: &str = include_str!("../../docs/evidence/sample-key.json");

fuzz_target!(|data: &[u8]| {
    let key = PublicKey::parse(KEY).unwrap();
    let keys = Keyring::none();
    // The bytes as a pack of their own.
    let v = verify(data, Some(&key), &keys);
    if v.ok() {
        let theirs: Pack = serde_json::from_slice(data).unwrap();
        let sample: Pack = serde_json::from_slice(SAMPLE).unwrap();
        assert_eq!(theirs, sample, "only the signed pack itself verifies under the sample's key");
    }
    for p in &v.problems {
        assert!(!p.place.is_empty() && !p.what.is_empty());
    }
    // The bytes as edits of the sample: each (offset, byte) pair overwrites
    // one byte; whatever still parses to another pack must fail.
    let mut edited = SAMPLE.to_vec();
    for pair in data.chunks_exact(3).take(8) {
        let at = u16::from_le_bytes([pair[0], pair[1]]) as usize % edited.len();
        edited[at] = pair[2];
    }
    let v = verify(&edited, Some(&key), &keys);
    if let Ok(p) = serde_json::from_slice::<Pack>(&edited) {
        let sample: Pack = serde_json::from_slice(SAMPLE).unwrap();
        assert_eq!(v.ok(), p == sample, "an edited pack verifies only when it is the same pack: {:?}", v.problems);
    }
});
