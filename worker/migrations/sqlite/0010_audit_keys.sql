-- The audit key that signed each link (docs/audit.md, "The keyed chain"):
-- empty for links hashed before a key was configured (plain SHA-256).
ALTER TABLE deliveries ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
