//! The pure core of vbridge: no I/O, no clock, no Temporal. The workflow
//! (`vbridge-workflows`) orchestrates it; the worker's edges call it; the fuzz
//! targets (`fuzz/`) hammer it.
//! - [`canary`]: which verifications canary gating holds;
//! - [`chain`]: the audit log's hash chains: linking and verifying;
//! - [`policy`]: the control policy, parsed strictly and validated;
//! - [`hiring`]: the policy's hiring-loop extension (triggers, risk tiers,
//!   step-up, deadlines), pure;
//! - [`domain`]: newtypes built only by parsing, and the workflow id;
//! - [`machine`]: the state machine, a pure function of (policy, state, event);
//! - [`record`]: the kinds of audit records ([`record::RecordKind`]);
//! - [`review`]: the rules of manual review and overrides;
//! - [`template`]: the `${...}` templates of the ATS fields;
//! - [`intake`]: a webhook's signature check, redaction and parsing.

pub mod canary;
pub mod chain;
pub mod domain;
pub mod evidence;
pub mod hiring;
pub mod intake;
pub mod machine;
pub mod policy;
pub mod record;
pub mod review;
pub mod seal;
pub mod template;

pub use policy::{DEFAULT_POLICY_YAML, Policy, PolicyError};
