-- Where each interview poll has read up to (docs/hiring.md): the newest
-- `updated_at` a finished run saw. Not part of the audit log: a lost row
-- only makes the next run read a week back, and what it reads twice is a
-- duplicate by its key.
CREATE TABLE hiring_polls (
    poll       TEXT NOT NULL PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
