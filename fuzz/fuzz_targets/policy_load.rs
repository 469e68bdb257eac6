//! The policy loader with any text: a policy or a list of problems with key
//! paths, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vbridge_core::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Policy::parse(text) {
        Ok(p) => assert!(!p.states().is_empty()),
        Err(e) => assert!(!e.problems().is_empty()),
    }
});
