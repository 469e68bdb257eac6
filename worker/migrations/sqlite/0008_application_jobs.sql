-- The job each application's webhooks named (canary gating: requisition,
-- role, region; see core/src/canary.rs), kept when an accepted delivery is
-- committed, in the same transaction.
CREATE TABLE application_jobs (
    application_id TEXT NOT NULL PRIMARY KEY,
    requisition    TEXT,
    role           TEXT,
    region         TEXT,
    updated_at     TEXT NOT NULL
);
