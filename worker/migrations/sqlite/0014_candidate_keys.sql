-- Crypto-shredding (docs/privacy.md): one random key per candidate, apart
-- from the chained rows. The store seals every field that can hold the
-- candidate's personal data under it (deliveries' payload, the notes of
-- human moves, mail records, the hiring rows' addresses and links), and the
-- chains link the sealed text. Erasing the candidate deletes this row: the
-- fields no longer open anywhere, and every chain still verifies.
CREATE TABLE candidate_keys (
    candidate_id TEXT NOT NULL PRIMARY KEY,
    field_key    TEXT NOT NULL, -- 64 hex digits
    created_at   TEXT NOT NULL
);
-- The hiring rows name their candidate, so that erasure finds them.
ALTER TABLE hiring_starts ADD COLUMN candidate_id TEXT;
ALTER TABLE hiring_mails ADD COLUMN candidate_id TEXT;
CREATE INDEX hiring_starts_candidate ON hiring_starts (candidate_id);
CREATE INDEX hiring_mails_candidate ON hiring_mails (candidate_id);
