-- Dead letters: ATS writes refused for good (`ats_failed`), a projection of
-- the audit log kept in the transaction that appends the records. Open until
-- a later write of the same check goes through (a re-drive, or a newer state).
CREATE TABLE dead_letters (
    idempotency_key TEXT    NOT NULL PRIMARY KEY,
    candidate_id    TEXT    NOT NULL,
    application_id  TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    failed_at       TEXT    NOT NULL,
    is_open         BOOLEAN NOT NULL,
    resolved_at     TEXT
);
CREATE INDEX dead_letters_open ON dead_letters (is_open, failed_at);
CREATE INDEX dead_letters_target ON dead_letters (target, is_open);
