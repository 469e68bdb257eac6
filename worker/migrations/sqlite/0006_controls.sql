-- Operations controls (docs/operations.md, "Runbook"). The current value of
-- each control (the kill switch `verification_gating_enabled`); every change
-- is also an audit record in the `controls` chain, with its actor and reason.
CREATE TABLE controls (
    name       TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    changed_at TEXT NOT NULL
);

-- The interview-scheduling gate's projection of the audit log: one row per
-- application, its verification's state and ATS sync, kept in the
-- transaction that appends the records it follows (see worker/src/controls).
CREATE TABLE gate_items (
    application_id TEXT NOT NULL PRIMARY KEY,
    candidate_id   TEXT NOT NULL,
    state          TEXT NOT NULL,
    ats_sync       TEXT NOT NULL,
    as_of          TEXT NOT NULL
);

-- Verifications decided before this table existed: their last state, taken
-- as synced (reconciliation finds any that are not).
INSERT INTO gate_items (application_id, candidate_id, state, ats_sync, as_of)
SELECT d.application_id, d.candidate_id, d.state_after, 'synced', d.recorded_at FROM decisions d
WHERE d.kind IN ('applied', 'review_decided', 'override') AND d.application_id <> ''
  AND d.seq = (SELECT MAX(e.seq) FROM decisions e
               WHERE e.application_id = d.application_id AND e.kind IN ('applied', 'review_decided', 'override'));
