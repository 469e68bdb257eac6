//! Domain newtypes. Each is built only by parsing, so a value of the type is
//! valid by construction (parse, don't validate).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Fields a delivery or decision record can carry; `eventLog.requiredFields`
/// must name only these.
pub const RECORD_FIELDS: &[&str] = &[
    "event_id",
    "event_type",
    "occurred_at",
    "received_at",
    "candidate_id",
    "application_id",
    "idempotency_key",
    "signature_valid",
    "processing_result",
    "trace_id",
    "external_ats_ids",
    "delivery_attempt",
    "state_before",
    "state_after",
    "write_targets",
    "override_actor",
    "override_reason_code",
    "override_timestamp",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ParseError {
    pub field: &'static str,
    pub problem: String,
}

fn ident_like(field: &'static str, s: &str, max: usize, allow: impl Fn(char) -> bool) -> Result<String, ParseError> {
    if s.is_empty() {
        return Err(ParseError { field, problem: "must not be empty".into() });
    }
    if s == "." || s == ".." {
        // These would walk the ATS path (`url` normalises dot segments, even
        // percent-encoded ones), so no id may be one.
        return Err(ParseError { field, problem: format!("must not be \"{s}\"") });
    }
    if s.len() > max {
        return Err(ParseError { field, problem: format!("longer than {max} characters") });
    }
    if let Some(c) = s.chars().find(|c| !allow(*c)) {
        return Err(ParseError { field, problem: format!("contains the character {c:?}") });
    }
    Ok(s.to_owned())
}

/// Characters of a business key that also becomes part of a workflow id
/// (`verification:{candidate}:{application}`): no ':' so the id stays unambiguous.
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+')
}

/// Opaque provider identifiers: any printable ASCII except whitespace.
fn opaque_char(c: char) -> bool {
    c.is_ascii_graphic()
}

macro_rules! id_newtype {
    ($(#[$m:meta])* $name:ident, $field:literal, $max:literal, $allow:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                ident_like($field, s, $max, $allow).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_newtype!(
    /// The canonical candidate key (never the email).
    CandidateId, "candidate_id", 128, key_char
);
id_newtype!(
    /// The ATS application the verification belongs to.
    ApplicationId, "application_id", 128, key_char
);
id_newtype!(EventId, "event_id", 256, opaque_char);
id_newtype!(
    /// The provider's idempotency key (the policy's `idempotency.keyField`).
    IdempotencyKey, "idempotency_key", 256, opaque_char
);
id_newtype!(VerificationCheckId, "verification_check_id", 256, key_char);
id_newtype!(
    /// A trace id, taken from the request's trace header or made anew.
    TraceId, "trace_id", 128, |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
);

impl TraceId {
    /// A new random trace id (32 hex characters).
    pub fn new_random() -> TraceId {
        TraceId(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// The workflow id of one verification, from its business key, candidate
/// plus application (docs/contract.md §3). The only place it is formatted.
pub fn workflow_id(candidate_id: &str, application_id: &str) -> String {
    format!("verification:{candidate_id}:{application_id}")
}

/// A verification state. The five the product knows; the policy chooses which
/// are allowed and how they connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    Unverified,
    Pending,
    Verified,
    NeedsReview,
    Failed,
}

impl VerificationState {
    pub const ALL: [VerificationState; 5] = [
        VerificationState::Unverified,
        VerificationState::Pending,
        VerificationState::Verified,
        VerificationState::NeedsReview,
        VerificationState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationState::Unverified => "unverified",
            VerificationState::Pending => "pending",
            VerificationState::Verified => "verified",
            VerificationState::NeedsReview => "needs_review",
            VerificationState::Failed => "failed",
        }
    }
}

impl FromStr for VerificationState {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        VerificationState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| ParseError { field: "state", problem: format!("unknown state \"{s}\"") })
    }
}

impl fmt::Display for VerificationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Event types the bridge acts on. Others are recorded and answered `ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Started,
    Decision,
    /// A provider asked the candidate to retake the check (docs/contract.md
    /// §7): recorded, the state kept. Only a provider's route makes one; on
    /// the IL route the name is an unknown type (recorded, `ignored`).
    RetakeRequested,
    /// A provider's session expired or was abandoned: recorded, the state kept.
    Expired,
    /// An ATS moved the application into a trigger stage (docs/contract.md
    /// §8): start a verification at the tier the intake picked. Only an
    /// ATS's route makes one; on the IL route the name is an unknown type.
    Requested,
    /// An ATS booked, moved or cancelled an interview (docs/contract.md
    /// §8): its time sets the deadline; booked while the gate is closed, it
    /// is a bypass. Only an ATS's route makes one.
    Interview,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Started => "verification.started",
            EventType::Decision => "verification.decision",
            EventType::RetakeRequested => "verification.retake_requested",
            EventType::Expired => "verification.expired",
            EventType::Requested => "verification.requested",
            EventType::Interview => "interview.scheduled",
        }
    }

    /// Made only by a route's own adapter (a provider's notices, an ATS's
    /// request): on the IL route the name is an unknown type (`ignored`).
    pub fn is_route_only(self) -> bool {
        self.is_notice() || matches!(self, EventType::Requested | EventType::Interview)
    }

    /// A provider's notice: recorded and shown in the ATS, never a move of
    /// the state machine.
    pub fn is_notice(self) -> bool {
        matches!(self, EventType::RetakeRequested | EventType::Expired)
    }
}

impl FromStr for EventType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "verification.started" => Ok(EventType::Started),
            "verification.decision" => Ok(EventType::Decision),
            "verification.retake_requested" => Ok(EventType::RetakeRequested),
            "verification.expired" => Ok(EventType::Expired),
            "verification.requested" => Ok(EventType::Requested),
            "interview.scheduled" => Ok(EventType::Interview),
            other => Err(ParseError { field: "event_type", problem: format!("unknown event type \"{other}\"") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_bad_input() {
        assert!(CandidateId::parse("cand_1").is_ok());
        assert_eq!(CandidateId::parse("").unwrap_err().problem, "must not be empty");
        assert!(CandidateId::parse("a:b").is_err(), "':' would make the workflow id ambiguous");
        assert!(CandidateId::parse(&"x".repeat(129)).is_err());
        assert!(EventId::parse("evt 1").is_err());
        assert!(ApplicationId::parse("..").is_err() && VerificationCheckId::parse(".").is_err());
        assert!(ApplicationId::parse("a.b").is_ok());
    }

    #[test]
    fn workflow_id_comes_from_the_business_key() {
        let (c, a) = (CandidateId::parse("c1").unwrap(), ApplicationId::parse("a9").unwrap());
        assert_eq!(workflow_id(c.as_str(), a.as_str()), "verification:c1:a9");
    }

    #[test]
    fn trace_ids_are_distinct() {
        assert_ne!(TraceId::new_random(), TraceId::new_random());
    }

    #[test]
    fn states_round_trip() {
        for s in VerificationState::ALL {
            assert_eq!(s.as_str().parse::<VerificationState>().unwrap(), s);
        }
        assert!("done".parse::<VerificationState>().is_err());
    }
}
