//! Canary gating (policy extension `controls.canary`): which verifications
//! the interview-scheduling gate holds. Pure.
//!
//! A verification is in the canary when its region is listed (or no region
//! list is set), its role is listed (or no role list), and its bucket is
//! below `percent`. The bucket is the first two bytes of the SHA-256 of the
//! requisition (or the role, `bucketBy: role`) modulo 100: deterministic, and
//! stable as the percentage grows (a verification in at 10 % is in at 20 %).
//! With a percentage below 100 or a list set, a verification whose job is
//! unknown is left out: the canary never blocks on data it does not have.
//!
//! The job comes from the webhook body (after redaction):
//! - requisition: `external_ats_ids.requisition_id`, else `signals.job.requisition_id`;
//! - role: `signals.job.role`;
//! - region: `signals.job.region`.

use crate::policy::Canary;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    pub requisition: Option<String>,
    pub role: Option<String>,
    pub region: Option<String>,
}

impl Job {
    pub fn is_empty(&self) -> bool {
        self.requisition.is_none() && self.role.is_none() && self.region.is_none()
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The job a webhook body names (see the module's list of fields).
pub fn job_of(body: &Value) -> Job {
    let job = body.pointer("/signals/job");
    Job {
        requisition: text(body.pointer("/external_ats_ids/requisition_id"))
            .or_else(|| text(job.and_then(|j| j.get("requisition_id")))),
        role: text(job.and_then(|j| j.get("role"))),
        region: text(job.and_then(|j| j.get("region"))),
    }
}

/// A key's bucket, 0..100.
pub fn bucket(key: &str) -> u8 {
    let h = Sha256::digest(key.as_bytes());
    (u16::from_be_bytes([h[0], h[1]]) % 100) as u8
}

/// Whether a job is in the canary (no canary: everything is).
pub fn in_canary(canary: Option<&Canary>, job: &Job) -> bool {
    let Some(c) = canary else { return true };
    let listed = |list: &[String], v: &Option<String>| list.is_empty() || v.as_ref().is_some_and(|v| list.contains(v));
    if !listed(&c.regions, &job.region) || !listed(&c.roles, &job.role) {
        return false;
    }
    let percent = c.percent.unwrap_or(100);
    if percent >= 100 {
        return true;
    }
    let key = match c.bucket_by.as_deref() {
        Some("role") => &job.role,
        _ => &job.requisition,
    };
    key.as_deref().is_some_and(|k| bucket(k) < percent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canary(percent: Option<u8>, regions: &[&str]) -> Canary {
        Canary { percent, bucket_by: None, regions: regions.iter().map(|s| s.to_string()).collect(), roles: vec![] }
    }

    fn job(req: &str, region: &str) -> Job {
        Job { requisition: Some(req.into()), role: None, region: Some(region.into()) }
    }

    #[test]
    fn the_job_is_read_from_the_documented_fields() {
        let body =
            json!({"external_ats_ids": {"requisition_id": 42}, "signals": {"job": {"role": "eng", "region": "emea"}}});
        assert_eq!(
            job_of(&body),
            Job { requisition: Some("42".into()), role: Some("eng".into()), region: Some("emea".into()) }
        );
        let body = json!({"signals": {"job": {"requisition_id": "R-7"}}});
        assert_eq!(job_of(&body).requisition.as_deref(), Some("R-7"));
        assert!(job_of(&json!({"external_ats_ids": ["x"]})).is_empty());
    }

    #[test]
    fn buckets_are_stable_as_the_percentage_grows() {
        let reqs: Vec<String> = (0..2000).map(|i| format!("REQ-{i}")).collect();
        let members = |p: u8| -> Vec<&String> {
            reqs.iter().filter(|r| in_canary(Some(&canary(Some(p), &[])), &job(r, "x"))).collect()
        };
        let (ten, twenty, hundred) = (members(10), members(20), members(100));
        assert!(ten.iter().all(|r| twenty.contains(r)), "growing the percentage keeps every member");
        assert!((150..=250).contains(&ten.len()), "about 10 %: {}", ten.len());
        assert!((320..=480).contains(&twenty.len()), "about 20 %: {}", twenty.len());
        assert_eq!(hundred.len(), reqs.len());
        assert_eq!(bucket("REQ-1"), bucket("REQ-1"));
        assert!(members(0).is_empty());
    }

    #[test]
    fn lists_narrow_and_unknown_jobs_stay_out() {
        let c = canary(None, &["emea"]);
        assert!(in_canary(Some(&c), &job("R", "emea")));
        assert!(!in_canary(Some(&c), &job("R", "amer")));
        assert!(!in_canary(Some(&c), &Job::default()), "no region: not in a region-limited canary");
        assert!(!in_canary(Some(&canary(Some(50), &[])), &Job::default()));
        assert!(in_canary(None, &Job::default()), "no canary: gating applies to all");
    }
}
