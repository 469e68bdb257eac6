//! A webhook body's way in, pure: the signature ([`signature`]), redaction
//! ([`redact`]) and parsing ([`parse`]); the real providers' adapters
//! ([`providers`]: Persona, Onfido, Veriff, Sumsub) map their own bodies onto
//! the same parsed event.

pub mod parse;
pub mod providers;
pub mod redact;
pub mod signature;

pub use redact::sha256_hex;
