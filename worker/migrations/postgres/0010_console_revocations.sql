-- Console sessions ended by a logout before their own end (the session id,
-- and that end, Unix seconds): every replica refuses a replayed cookie of
-- one. A row is pruned once its session would have ended anyway, so the
-- table holds at most the sessions of the last 8 hours that logged out.
CREATE TABLE console_revocations (
    sid        TEXT NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_revocations_expiry ON console_revocations (expires_at);
