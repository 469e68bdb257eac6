//! A webhook body's way in, pure: the signature ([`signature`]), redaction
//! ([`redact`]) and parsing ([`parse`]).

pub mod parse;
pub mod redact;
pub mod signature;

pub use redact::sha256_hex;
