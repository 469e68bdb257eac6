-- The audit trail: hash chains over deliveries and workflow decisions.
-- A stream is one candidate+application; rejected deliveries have a stream of
-- their own ('rejected'). Each record carries its position in the stream, the
-- hash of the record before it, and its own hash (see docs/audit.md).
ALTER TABLE deliveries ADD COLUMN stream TEXT;
ALTER TABLE deliveries ADD COLUMN chain_pos INTEGER;
ALTER TABLE deliveries ADD COLUMN prev_hash TEXT;
ALTER TABLE deliveries ADD COLUMN hash TEXT;

CREATE TABLE decisions (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id            TEXT NOT NULL UNIQUE,
    recorded_at          TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    candidate_id         TEXT NOT NULL,
    application_id       TEXT NOT NULL,
    event_id             TEXT NOT NULL,
    event_type           TEXT NOT NULL,
    occurred_at          TEXT NOT NULL,
    received_at          TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL,
    state_before         TEXT NOT NULL,
    state_after          TEXT NOT NULL,
    reason               TEXT NOT NULL,
    write_targets        TEXT NOT NULL,
    delivery_attempt     INTEGER NOT NULL,
    processing_result    TEXT NOT NULL,
    trace_id             TEXT NOT NULL,
    override_actor       TEXT NOT NULL,
    override_reason_code TEXT NOT NULL,
    override_timestamp   TEXT NOT NULL,
    stream               TEXT NOT NULL,
    chain_pos            INTEGER NOT NULL,
    prev_hash            TEXT NOT NULL,
    hash                 TEXT NOT NULL
);
CREATE INDEX decisions_candidate ON decisions (candidate_id, application_id, seq);
CREATE INDEX decisions_stream ON decisions (stream, chain_pos);
CREATE INDEX deliveries_stream ON deliveries (stream, chain_pos);

-- The head of each chain: where the next record links to. Not evidence itself
-- (verification recomputes every link), so it may be updated.
CREATE TABLE stream_heads (
    stream    TEXT PRIMARY KEY,
    chain_pos INTEGER NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions is append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions is append-only'); END;
