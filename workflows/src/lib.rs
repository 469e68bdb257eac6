//! The Temporal workflows, which only orchestrate the pure core
//! (`vbridge-core`: policy, domain types, state machine, review rules):
//! - [`verification`]: `CandidateVerification`, one per candidate application;
//! - [`reconcile`]: `Reconciliation`, started by a Temporal Schedule;
//! - [`retention`]: `AuditRetention`, the audit log's nightly cut, likewise;
//! - [`interview_poll`]: `InterviewPoll`, Greenhouse's interviews read on a
//!   Temporal Schedule.
//!
//! They see the activities only through their declarations
//! (`vbridge-activity-defs`), never through their implementations.

pub mod interview_poll;
pub mod reconcile;
pub mod retention;
pub mod verification;

pub use verification::CandidateVerification;
