-- Kind-specific detail of a decision record (the review item of
-- `review_routed` and `escalated`, the note of a human move), as JSON.
ALTER TABLE decisions ADD COLUMN detail TEXT NOT NULL DEFAULT '';

-- The manual-review queue: a projection of the audit log, one row per
-- verification, kept in the transaction that appends the records it follows
-- (see worker/src/review). Not an audit record: it may be rebuilt from the log.
-- `as_of` is the workflow time of the record that last changed the row; an
-- older record never overwrites a newer one.
CREATE TABLE review_items (
    candidate_id      TEXT    NOT NULL,
    application_id    TEXT    NOT NULL,
    is_open           BOOLEAN NOT NULL,
    queue             TEXT    NOT NULL,
    reason_codes      TEXT    NOT NULL, -- JSON array, as the provider sent them
    evidence_pack_url TEXT    NOT NULL,
    routed_at         TEXT    NOT NULL,
    due_at            TEXT    NOT NULL,
    escalations       BIGINT  NOT NULL,
    flags             TEXT    NOT NULL, -- JSON array
    trace_id          TEXT    NOT NULL,
    as_of             TEXT    NOT NULL,
    PRIMARY KEY (candidate_id, application_id)
);
CREATE INDEX review_items_queue ON review_items (is_open, due_at, candidate_id, application_id);
