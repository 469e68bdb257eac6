-- Where a chain starts after retention cut its oldest records (see SQLite 0003).
CREATE TABLE chain_checkpoints (
    stream    TEXT PRIMARY KEY,
    next_pos  BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    removed   BIGINT NOT NULL,
    cut_at    TEXT NOT NULL
);
