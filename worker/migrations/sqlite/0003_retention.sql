-- Where a chain starts after retention cut its oldest records: the first kept
-- position and the hash it links to, so the rest still verifies.
CREATE TABLE chain_checkpoints (
    stream    TEXT PRIMARY KEY,
    next_pos  INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    removed   INTEGER NOT NULL,
    cut_at    TEXT NOT NULL
);
