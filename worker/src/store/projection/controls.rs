//! Operations controls' current values (the `controls` table), from their
//! `control_changed` records.

use serde::Serialize;
use vbridge_core::record::RecordKind;
use vbridge_proto::DecisionRecord;

/// A control's current value, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Control {
    pub name: String,
    pub value: String,
    pub actor: String,
    pub reason: String,
    pub changed_at: String,
}

/// The control a `control_changed` record sets: (name, value, actor,
/// reason, at), from its `state_after` (`name=value`).
pub fn control_of(r: &DecisionRecord) -> Option<Control> {
    if r.kind != RecordKind::ControlChanged {
        return None;
    }
    let (name, value) = r.state_after.split_once('=')?;
    Some(Control {
        name: name.to_owned(),
        value: value.to_owned(),
        actor: r.override_actor.clone(),
        reason: r.reason.clone(),
        changed_at: r.recorded_at.clone(),
    })
}
