-- The outbox (see SQLite 0004): O(pending) relay work.
CREATE TABLE outbox (
    seq         BIGINT PRIMARY KEY REFERENCES deliveries (seq),
    received_at TEXT NOT NULL
);
INSERT INTO outbox (seq, received_at)
    SELECT d.seq, d.received_at FROM deliveries d
    WHERE d.processing_result = 'accepted' AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq);

-- The guard gives way only while `vbridge.retention` is on in the current
-- transaction, which only vbridge_cut_prefix (below) sets. No table lock is
-- taken (the old way, ALTER TABLE ... DISABLE TRIGGER, locked every table).
-- TRUNCATE is never allowed.
CREATE OR REPLACE FUNCTION vbridge_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'TRUNCATE' AND current_setting('vbridge.retention', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER forwards_no_truncate BEFORE TRUNCATE ON forwards
    FOR EACH STATEMENT EXECUTE FUNCTION vbridge_append_only();
CREATE TRIGGER chain_checkpoints_append_only BEFORE INSERT OR UPDATE OR DELETE ON chain_checkpoints
    FOR EACH ROW EXECUTE FUNCTION vbridge_append_only();
CREATE TRIGGER chain_checkpoints_no_truncate BEFORE TRUNCATE ON chain_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION vbridge_append_only();
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON chain_checkpoints FROM PUBLIC;

-- Retention's one way to cut a chain's prefix. It runs with its owner's
-- rights (SECURITY DEFINER), so the role that runs retention needs EXECUTE
-- on it and no DELETE right on any table. It refuses to remove an accepted
-- delivery that is still in the outbox.
CREATE FUNCTION vbridge_cut_prefix(p_stream TEXT, p_next_pos BIGINT, p_prev_hash TEXT, p_cut_at TEXT)
RETURNS BIGINT LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    removed BIGINT := 0;
    n BIGINT;
BEGIN
    IF EXISTS (SELECT 1 FROM outbox o JOIN deliveries d ON d.seq = o.seq
               WHERE d.stream = p_stream AND d.chain_pos < p_next_pos) THEN
        RAISE EXCEPTION 'retention would remove an accepted delivery not yet forwarded (stream %)', p_stream;
    END IF;
    PERFORM set_config('vbridge.retention', 'on', true);
    DELETE FROM forwards WHERE seq IN (SELECT seq FROM deliveries WHERE stream = p_stream AND chain_pos < p_next_pos);
    DELETE FROM deliveries WHERE stream = p_stream AND chain_pos < p_next_pos;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM decisions WHERE stream = p_stream AND chain_pos < p_next_pos;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    INSERT INTO chain_checkpoints (stream, next_pos, prev_hash, removed, cut_at)
        VALUES (p_stream, p_next_pos, p_prev_hash, removed, p_cut_at)
        ON CONFLICT (stream) DO UPDATE SET next_pos = excluded.next_pos, prev_hash = excluded.prev_hash,
            removed = chain_checkpoints.removed + excluded.removed, cut_at = excluded.cut_at;
    PERFORM set_config('vbridge.retention', 'off', true);
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION vbridge_cut_prefix(TEXT, BIGINT, TEXT, TEXT) FROM PUBLIC;
