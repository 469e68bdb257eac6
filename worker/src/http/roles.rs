//! The role matrix: which role may do what, defined once. The operator API's
//! routes (`http::routes`) and the console's pages and forms
//! (`http::console`) both ask [`Action::roles`], so the console can never
//! show a role more than the API would give it (it once showed reviewers
//! the audit timeline that the API keeps for auditors). docs/contract.md §5
//! and docs/review.md carry the same table, [`Action::table`]; a test holds
//! them to it.

use super::auth::{Principal, Role};

/// What an operator can do, through the API or the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The review queue (`GET /v1/reviews`, the console's queue and items).
    ReadQueue,
    /// Decide a review item.
    Decide,
    /// A verification's audit timeline and chain status.
    ReadTimeline,
    /// A candidate's signed evidence pack.
    ExportEvidence,
    /// Refused deliveries, their claims unverified.
    ReadRefusals,
    /// Move a verification to any state by hand.
    Override,
    /// Erase a candidate's personal data (crypto-shredding).
    Erase,
    /// Read the gating control.
    ReadControls,
    /// Change the gating control.
    SetControls,
    /// Read one application's gate.
    ReadGate,
    /// Reconciliation runs, failed writes and their retry, pause and resume.
    Operate,
    /// `/metrics` on the main listener.
    Metrics,
}

use Role::{Admin, Auditor, Gate, Ops, Reviewer};

impl Action {
    pub const ALL: [Action; 12] = [
        Action::ReadQueue,
        Action::Decide,
        Action::ReadTimeline,
        Action::ExportEvidence,
        Action::ReadRefusals,
        Action::Override,
        Action::Erase,
        Action::ReadControls,
        Action::SetControls,
        Action::ReadGate,
        Action::Operate,
        Action::Metrics,
    ];

    /// The roles that may do it: the one matrix.
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Action::ReadQueue => &[Reviewer, Auditor],
            Action::Decide => &[Reviewer],
            Action::ReadTimeline => &[Auditor],
            Action::ExportEvidence => &[Auditor],
            Action::ReadRefusals => &[Auditor],
            Action::Override => &[Admin],
            Action::Erase => &[Admin],
            Action::ReadControls => &[Ops, Auditor],
            Action::SetControls => &[Ops],
            Action::ReadGate => &[Ops, Reviewer, Auditor, Gate],
            Action::Operate => &[Ops],
            Action::Metrics => &[Ops],
        }
    }

    pub fn allows(self, p: &Principal) -> bool {
        self.roles().iter().any(|r| p.roles.contains(r))
    }

    fn describe(self) -> &'static str {
        match self {
            Action::ReadQueue => {
                "read the review queue and its items (`GET /v1/reviews`; console queue and item pages)"
            }
            Action::Decide => "decide a review item (`POST /v1/reviews/{c}/{a}/decision`; console decide form)",
            Action::ReadTimeline => {
                "read a verification's audit timeline (`GET /v1/candidates/{id}/timeline`; console item page's timeline and chain)"
            }
            Action::ExportEvidence => {
                "export a candidate's signed evidence pack (`GET /v1/candidates/{id}/evidence-pack`; console `/console/candidates/{id}/evidence`, linked from the item page)"
            }
            Action::ReadRefusals => {
                "list refused deliveries, their claims unverified (`GET /v1/audit/refused-deliveries`; `vbridge audit refused`)"
            }
            Action::Override => "override a verification's state (`POST /v1/verifications/{c}/{a}/override`)",
            Action::Erase => "erase a candidate's personal data (`POST /v1/candidates/{id}/erase`)",
            Action::ReadControls => "read the gating control (`GET /v1/controls/gating`)",
            Action::SetControls => "change the gating control (`PUT /v1/controls/gating`)",
            Action::ReadGate => "read an application's gate (`GET /v1/applications/{application}/gate`)",
            Action::Operate => {
                "reconcile, list and retry failed writes, pause and resume (`/v1/reconcile*`, `/v1/writes/*`, `.../pause`, `.../resume`)"
            }
            Action::Metrics => "`/metrics` on the main listener",
        }
    }

    /// The matrix as the Markdown table the docs carry.
    pub fn table() -> String {
        let mut out = String::from("| action | reviewer | auditor | ops | admin | gate |\n|---|---|---|---|---|---|\n");
        for a in Action::ALL {
            let cell = |r: Role| if a.roles().contains(&r) { "yes" } else { "–" };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                a.describe(),
                cell(Reviewer),
                cell(Auditor),
                cell(Ops),
                cell(Admin),
                cell(Gate)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_carry_the_matrix_as_defined() {
        let table = Action::table();
        for doc in ["docs/contract.md", "docs/review.md"] {
            let text = std::fs::read_to_string(format!("{}/../{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert!(text.contains(&table), "{doc} must carry the role matrix exactly as defined:\n{table}");
        }
    }

    #[test]
    fn reviewers_do_not_read_timelines() {
        let reviewer = Principal { subject: "r".into(), roles: [Reviewer].into_iter().collect() };
        assert!(Action::ReadQueue.allows(&reviewer) && Action::Decide.allows(&reviewer));
        assert!(!Action::ReadTimeline.allows(&reviewer));
    }
}
