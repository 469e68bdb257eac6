-- The event store on Postgres: the same model as SQLite (migrations/sqlite),
-- in one step. Times are RFC 3339 text, as in SQLite, so that both backends
-- hash exactly the same bytes.
CREATE TABLE deliveries (
    seq               BIGSERIAL PRIMARY KEY,
    received_at       TEXT    NOT NULL,
    event_id          TEXT,
    event_type        TEXT,
    occurred_at       TEXT,
    candidate_id      TEXT,
    application_id    TEXT,
    idempotency_key   TEXT,
    signature_valid   BOOLEAN NOT NULL,
    processing_result TEXT    NOT NULL CHECK (processing_result IN ('accepted', 'duplicate', 'ignored', 'rejected')),
    reject_code       TEXT,
    trace_id          TEXT    NOT NULL,
    body_sha256       TEXT    NOT NULL,
    delivery_attempt  BIGINT,
    payload           TEXT,
    signal            TEXT,
    stream            TEXT,
    chain_pos         BIGINT,
    prev_hash         TEXT,
    hash              TEXT,
    CHECK (processing_result <> 'rejected' OR (payload IS NULL AND signal IS NULL))
);
CREATE UNIQUE INDEX deliveries_idempotency_key
    ON deliveries (idempotency_key) WHERE processing_result IN ('accepted', 'ignored');
CREATE INDEX deliveries_accepted ON deliveries (seq) WHERE processing_result = 'accepted';
CREATE INDEX deliveries_candidate ON deliveries (candidate_id, application_id, seq);
CREATE INDEX deliveries_stream ON deliveries (stream, chain_pos);

CREATE TABLE forwards (
    seq          BIGINT PRIMARY KEY REFERENCES deliveries (seq),
    forwarded_at TEXT NOT NULL
);

CREATE TABLE decisions (
    seq                  BIGSERIAL PRIMARY KEY,
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
    delivery_attempt     BIGINT NOT NULL,
    processing_result    TEXT NOT NULL,
    trace_id             TEXT NOT NULL,
    override_actor       TEXT NOT NULL,
    override_reason_code TEXT NOT NULL,
    override_timestamp   TEXT NOT NULL,
    stream               TEXT NOT NULL,
    chain_pos            BIGINT NOT NULL,
    prev_hash            TEXT NOT NULL,
    hash                 TEXT NOT NULL
);
CREATE INDEX decisions_candidate ON decisions (candidate_id, application_id, seq);
CREATE INDEX decisions_stream ON decisions (stream, chain_pos);

-- Chain heads; locked (FOR UPDATE) by each writer group, in stream order.
CREATE TABLE stream_heads (
    stream    TEXT PRIMARY KEY,
    chain_pos BIGINT NOT NULL,
    hash      TEXT NOT NULL
);

-- Append-only, enforced by the database.
CREATE FUNCTION vbridge_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER deliveries_append_only BEFORE UPDATE OR DELETE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION vbridge_append_only();
CREATE TRIGGER deliveries_no_truncate BEFORE TRUNCATE ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION vbridge_append_only();
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION vbridge_append_only();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION vbridge_append_only();
CREATE TRIGGER forwards_append_only BEFORE UPDATE OR DELETE ON forwards
    FOR EACH ROW EXECUTE FUNCTION vbridge_append_only();
-- And by grants: no role but the owner may change history.
REVOKE UPDATE, DELETE, TRUNCATE ON deliveries, decisions, forwards FROM PUBLIC;
