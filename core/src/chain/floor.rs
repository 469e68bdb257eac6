//! The retention floor: no record younger than the policy's
//! `eventLog.retentionDays` is ever cut. Retention refuses a cut-off younger
//! than the floor ([`cutoff`]), and each retention record states the cut-off
//! and the floor it was made under ([`Cut`], in its `detail`), so `audit
//! verify` can check every cut afterwards ([`breaks`]). The record is linked
//! (and keyed, with an audit key) like any other: the claim cannot be edited.

use super::{Broken, checkpoint_stream};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// What a retention record says about its cut (its `detail`, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// Records recorded before this instant were removed.
    pub cutoff: String,
    /// The floor in force when the cut was made.
    pub retention_days: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FloorError {
    #[error(
        "--days {asked} is below the policy's eventLog.retentionDays ({floor}): retention never removes records \
         younger than the policy keeps them"
    )]
    BelowFloor { asked: u32, floor: u32 },
}

/// The cut-off of a retention run at `now`: `days` back (the policy's floor
/// unless more is asked), refused below the floor.
pub fn cutoff(now: DateTime<Utc>, asked: Option<u32>, floor: u32) -> Result<Cut, FloorError> {
    let days = asked.unwrap_or(floor);
    if days < floor {
        return Err(FloorError::BelowFloor { asked: days, floor });
    }
    let at = now - Duration::days(days as i64);
    Ok(Cut { cutoff: at.to_rfc3339_opts(SecondsFormat::Millis, true), retention_days: floor })
}

/// Whether a cut made at `made_at` with `cut` stayed behind a floor of
/// `floor_days`; the problem when it did not.
pub fn check(made_at: &str, cut: &Cut, floor_days: u32) -> Result<(), String> {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
    let (Ok(made), Ok(cutoff)) = (parse(made_at), parse(&cut.cutoff)) else {
        return Err(format!("the retention record's times do not parse ({made_at}, {})", cut.cutoff));
    };
    let days = floor_days.min(cut.retention_days.max(1));
    if cutoff > made - Duration::days(days as i64) {
        return Err(format!(
            "retention at {made_at} cut records up to {}, younger than the floor of {days} day(s) \
             (eventLog.retentionDays)",
            cut.cutoff
        ));
    }
    Ok(())
}

/// One retention record, as verify reads it.
pub struct Made<'a> {
    pub stream: &'a str,
    pub chain_pos: i64,
    pub recorded_at: &'a str,
    /// The record's `write_targets` (its checkpoint) and `detail`.
    pub write_targets: &'a str,
    pub detail: &'a str,
    pub label: String,
}

/// Every retention record that cut below the floor. A record is judged by
/// the smaller of the policy's floor now and the floor it was made under
/// (a floor raised later does not condemn earlier cuts). Records made
/// before the floor existed carry no [`Cut`] and are not judged.
pub fn breaks<'a>(made: impl IntoIterator<Item = Made<'a>>, policy_days: u32) -> Vec<Broken> {
    made.into_iter()
        .filter_map(|m| {
            let cut: Cut = serde_json::from_str(m.detail).ok()?;
            let problem = check(m.recorded_at, &cut, policy_days).err()?;
            let stream = checkpoint_stream(m.write_targets).unwrap_or(m.stream).to_owned();
            Some(Broken { stream, record: m.label, chain_pos: m.chain_pos, problem })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_cut_below_the_floor_is_refused_and_one_above_it_taken() {
        let now = at("2026-12-03T10:00:00Z");
        assert_eq!(cutoff(now, Some(0), 1), Err(FloorError::BelowFloor { asked: 0, floor: 1 }));
        assert_eq!(cutoff(now, Some(364), 365).unwrap_err(), FloorError::BelowFloor { asked: 364, floor: 365 });
        let c = cutoff(now, None, 1).unwrap();
        assert_eq!((c.cutoff.as_str(), c.retention_days), ("2026-12-02T10:00:00.000Z", 1));
        assert_eq!(cutoff(now, Some(30), 1).unwrap().cutoff, "2026-11-03T10:00:00.000Z");
    }

    #[test]
    fn verify_finds_cuts_younger_than_the_floor() {
        let ok = Cut { cutoff: "2026-12-02T10:00:00.000Z".into(), retention_days: 1 };
        assert_eq!(check("2026-12-03T10:00:00.000Z", &ok, 1), Ok(()));
        assert_eq!(check("2026-12-03T10:00:00.000Z", &ok, 365), Ok(()), "judged by the floor it was made under");
        let greedy = Cut { cutoff: "2026-12-03T09:59:00.000Z".into(), retention_days: 1 };
        assert!(check("2026-12-03T10:00:00.000Z", &greedy, 1).unwrap_err().contains("younger than the floor"));
        let zero = Cut { retention_days: 0, ..greedy };
        assert!(check("2026-12-03T10:00:00.000Z", &zero, 1).is_err(), "a claimed floor of 0 is still a day");

        let detail = serde_json::to_string(&Cut { cutoff: "2026-12-03T09:00:00Z".into(), retention_days: 1 }).unwrap();
        let made = |detail: &'static str| Made {
            stream: "access",
            chain_pos: 4,
            recorded_at: "2026-12-03T10:00:00Z",
            write_targets: "chain_checkpoints/access@3:ab",
            detail,
            label: "decision ret-1".into(),
        };
        let found = breaks([made(Box::leak(detail.into_boxed_str())), made("")], 1);
        assert_eq!(found.len(), 1, "a record from before the floor is not judged: {found:?}");
        assert_eq!((found[0].stream.as_str(), found[0].chain_pos), ("access", 4));
    }
}
