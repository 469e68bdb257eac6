//! The projections of the audit log the store keeps: tables that follow the
//! `decisions` log in the transaction that appends to it, so they are never
//! ahead of it. Each is a pure function of one record (its `change_of`) and
//! the rows read back; the features (`crate::review`, `crate::controls`)
//! serve them.
//!
//! - [`review`]: the manual-review queue (`review_items`);
//! - [`gate`]: the interview-scheduling gate's rows (`gate_items`);
//! - [`dead_letters`]: ATS writes refused for good (`dead_letters`);
//! - [`controls`]: operations controls' current values (`controls`);
//! - [`reconcile`]: what the bridge wrote to each ATS check (`ats_expected`)
//!   and finished reconciliation runs (`reconcile_runs`).

pub mod controls;
pub mod dead_letters;
pub mod gate;
pub mod reconcile;
pub mod review;
