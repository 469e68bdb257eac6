-- Only retention can lift the append-only guards. The flag that
-- vbridge_cut_prefix sets (`vbridge.retention`) is a session setting any role
-- can set for itself (SET LOCAL), so on its own it let a role granted ALL on
-- the tables delete and rewrite history. The guard now also demands that the
-- statement runs as the guarded table's owner: inside vbridge_cut_prefix, a
-- SECURITY DEFINER function of that same owner, current_user is the owner,
-- and no role that is merely granted rights can become it. (The owner itself
-- could drop the triggers anyway: it is the migrations' role, which no
-- service should hold; docs/operations.md.) The owner is read from pg_class
-- by the trigger's own table id, so no search_path or look-alike function
-- can change the answer.
CREATE OR REPLACE FUNCTION vbridge_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP <> 'TRUNCATE'
       AND current_setting('vbridge.retention', true) = 'on'
       AND current_user = (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = TG_RELID) THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

-- The audit key that signed each link (docs/audit.md, "The keyed chain"):
-- empty for links hashed before a key was configured (plain SHA-256).
ALTER TABLE deliveries ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
