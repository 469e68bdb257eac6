//! Operations controls: the kill switch (`controls.killSwitch`), and the
//! interview-scheduling gate that reads it with a projection of the audit log
//! ([`gate`]). A change of a control is stored (`controls` table) and
//! recorded in the audit log's `controls` chain with its actor and reason.

pub mod dead_letters;
pub mod gate;
pub mod reconcile;

pub use crate::store::projection::controls::Control;
use crate::store::{EventStore, StoreError};
use crate::temporal::SharedBanner;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// The kill switch's name (the policy's `controls.killSwitch.flag`).
pub fn gating_flag(policy: &vbridge_core::Policy) -> &str {
    &policy.raw().controls.kill_switch.flag
}

/// The banner gating calls for: the policy's text while off, else none.
pub fn banner_for(policy: &vbridge_core::Policy, enabled: bool) -> String {
    if enabled { String::new() } else { policy.raw().controls.kill_switch.when_off.require_banner_in_ats.clone() }
}

/// Read the kill switch into `banner`.
pub async fn refresh_banner(
    store: &dyn EventStore,
    policy: &vbridge_core::Policy,
    banner: &SharedBanner,
) -> Result<(), StoreError> {
    let text = banner_for(policy, gating_enabled(store, policy).await?);
    if let Ok(mut b) = banner.write() {
        *b = text;
    }
    Ok(())
}

/// The kill switch now: stored, else the policy's default.
pub async fn gating_enabled(store: &dyn EventStore, policy: &vbridge_core::Policy) -> Result<bool, StoreError> {
    Ok(match store.control(gating_flag(policy)).await? {
        Some(c) => c.value == "true",
        None => policy.raw().controls.kill_switch.default,
    })
}

/// The gate's answer for an application, now.
pub async fn gate_answer(
    store: &dyn EventStore,
    policy: &vbridge_core::Policy,
    application_id: &str,
) -> Result<gate::Answer, StoreError> {
    let enabled = gating_enabled(store, policy).await?;
    let row = store.gate_row(application_id).await?;
    let canary = policy.raw().controls.canary.as_ref();
    let in_canary = match canary {
        None => true,
        Some(_) => vbridge_core::canary::in_canary(canary, &store.job(application_id).await?),
    };
    Ok(gate::answer(enabled, &banner_for(policy, false), row.as_ref(), in_canary))
}

/// Turn gating on or off: stored, and recorded with the actor and reason.
pub async fn set_gating(
    store: &dyn EventStore,
    policy: &vbridge_core::Policy,
    enabled: bool,
    actor: &str,
    reason: &str,
    trace_id: &str,
) -> Result<Control, StoreError> {
    let now = crate::now_rfc3339();
    let control = Control {
        name: gating_flag(policy).to_owned(),
        value: enabled.to_string(),
        actor: actor.to_owned(),
        reason: reason.to_owned(),
        changed_at: now.clone(),
    };
    let record = DecisionRecord {
        record_id: format!("ctl-{}", uuid::Uuid::new_v4().simple()),
        recorded_at: now.clone(),
        kind: RecordKind::ControlChanged.into(),
        state_after: format!("{}={}", control.name, control.value),
        reason: reason.to_owned(),
        processing_result: RecordKind::ControlChanged.into(),
        override_actor: actor.to_owned(),
        override_timestamp: now,
        trace_id: trace_id.to_owned(),
        ..Default::default()
    };
    // The `controls` table follows the record in the same transaction.
    store.append_decisions(vec![record]).await?;
    tracing::warn!(flag = %control.name, enabled, %actor, %reason, "verification gating changed");
    Ok(control)
}
