//! A webhook body's way in, pure: the signature ([`signature`]), redaction
//! ([`redact`]) and parsing ([`parse`]); the real providers' adapters
//! ([`providers`]: Persona, Onfido, Veriff, Sumsub) map their own bodies onto
//! the same parsed event; the ATSs' adapters ([`ats`]: Greenhouse, Ashby)
//! map their stage-change webhooks onto the hiring loop's [`ats::StageChange`].

pub mod ats;
pub mod parse;
pub mod providers;
pub mod redact;
pub mod signature;

pub use redact::sha256_hex;
