//! The pure core (policy, domain types, state machine, templates) and the
//! `CandidateVerification` workflow that orchestrates it.

pub mod domain;
pub mod machine;
pub mod policy;
pub mod template;
pub mod workflow;

pub use policy::{DEFAULT_POLICY_YAML, Policy, PolicyError};
pub use workflow::CandidateVerification;
