//! The `CandidateVerification` workflow, which orchestrates the pure core
//! (`vbridge-core`: policy, domain types, state machine, templates). The
//! core's modules are re-exported here, where the workflow's users look.

pub mod reconcile;
pub mod verification;

// transitional: the lead moves worker imports to vbridge_core and deletes these
pub use vbridge_core::{DEFAULT_POLICY_YAML, Policy, PolicyError, canary, domain, machine, policy, review, template};
pub use verification::CandidateVerification;
// transitional: the lead moves worker imports to `verification` and deletes this
pub use verification as workflow;
