-- Every webhook delivery is one row: accepted, duplicate, ignored or rejected.
-- The table is append-only (triggers below); rejected rows keep no payload.
CREATE TABLE deliveries (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at       TEXT    NOT NULL,
    event_id          TEXT,
    event_type        TEXT,
    occurred_at       TEXT,
    candidate_id      TEXT,
    application_id    TEXT,
    idempotency_key   TEXT,
    signature_valid   INTEGER NOT NULL,
    processing_result TEXT    NOT NULL CHECK (processing_result IN ('accepted', 'duplicate', 'ignored', 'rejected')),
    reject_code       TEXT,
    trace_id          TEXT    NOT NULL,
    body_sha256       TEXT    NOT NULL,
    delivery_attempt  INTEGER,
    payload           TEXT,
    signal            TEXT,
    CHECK (processing_result <> 'rejected' OR (payload IS NULL AND signal IS NULL))
);

-- An idempotency key is committed once; later deliveries of it are 'duplicate' rows.
CREATE UNIQUE INDEX deliveries_idempotency_key
    ON deliveries (idempotency_key) WHERE processing_result IN ('accepted', 'ignored');
CREATE INDEX deliveries_accepted ON deliveries (seq) WHERE processing_result = 'accepted';
CREATE INDEX deliveries_candidate ON deliveries (candidate_id, application_id, seq);

-- The outbox's progress: a row per accepted delivery the relay handed to Temporal.
CREATE TABLE forwards (
    seq          INTEGER PRIMARY KEY REFERENCES deliveries (seq),
    forwarded_at TEXT NOT NULL
);

CREATE TRIGGER deliveries_no_update BEFORE UPDATE ON deliveries
BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END;
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
BEGIN SELECT RAISE(ABORT, 'deliveries is append-only'); END;
CREATE TRIGGER forwards_no_update BEFORE UPDATE ON forwards
BEGIN SELECT RAISE(ABORT, 'forwards is append-only'); END;
