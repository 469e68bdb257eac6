-- The outbox: accepted deliveries not yet forwarded to Temporal. A row enters
-- in the transaction that commits its delivery and leaves when the relay has
-- forwarded it, so the relay's work is O(pending), not O(history).
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY REFERENCES deliveries (seq),
    received_at TEXT NOT NULL
);
INSERT INTO outbox (seq, received_at)
    SELECT d.seq, d.received_at FROM deliveries d
    WHERE d.processing_result = 'accepted' AND NOT EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq);

-- Guards that were missing: forwards may not be deleted, and checkpoints
-- (which say where a cut chain starts) are written only by retention, which
-- lifts these inside its own transaction.
CREATE TRIGGER forwards_no_delete BEFORE DELETE ON forwards
BEGIN SELECT RAISE(ABORT, 'forwards is append-only'); END;
CREATE TRIGGER chain_checkpoints_no_insert BEFORE INSERT ON chain_checkpoints
BEGIN SELECT RAISE(ABORT, 'chain_checkpoints is written by retention only'); END;
CREATE TRIGGER chain_checkpoints_no_update BEFORE UPDATE ON chain_checkpoints
BEGIN SELECT RAISE(ABORT, 'chain_checkpoints is written by retention only'); END;
CREATE TRIGGER chain_checkpoints_no_delete BEFORE DELETE ON chain_checkpoints
BEGIN SELECT RAISE(ABORT, 'chain_checkpoints is written by retention only'); END;
