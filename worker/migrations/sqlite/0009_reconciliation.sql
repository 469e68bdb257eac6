-- What the bridge has written to each ATS check: the merge of every
-- `ats_write` record's fields, kept in the transaction that appends them
-- (the reconciliation's expectation; see worker/src/controls/reconcile.rs).
CREATE TABLE ats_expected (
    application_id        TEXT NOT NULL,
    verification_check_id TEXT NOT NULL,
    candidate_id          TEXT NOT NULL,
    fields                TEXT NOT NULL, -- JSON object
    PRIMARY KEY (application_id, verification_check_id)
);

-- Finished reconciliation runs and their reports (also `reconciled` records
-- in the audit log's `reconciliation` chain).
CREATE TABLE reconcile_runs (
    run_id      TEXT NOT NULL PRIMARY KEY,
    finished_at TEXT NOT NULL,
    report      TEXT NOT NULL -- JSON
);
