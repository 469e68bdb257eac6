-- The hiring loop's working rows (docs/hiring.md): none of them is part of
-- the audit log or its chains, and each is kept only while a verification
-- needs it.
--
-- The candidate's (and the recruiter's) address, from the ATS's webhook:
-- read by the mail activity, deleted when the verification is decided.
CREATE TABLE hiring_contacts (
    candidate_id    TEXT NOT NULL,
    application_id  TEXT NOT NULL,
    email           TEXT NOT NULL,
    recruiter_email TEXT,
    stored_at       TEXT NOT NULL,
    PRIMARY KEY (candidate_id, application_id)
);
-- A verification started at the provider, by its start key: a retried
-- start finds it instead of creating a second session. The link is the
-- candidate's (mailed, never logged, never in the audit log).
CREATE TABLE hiring_starts (
    start_key  TEXT NOT NULL PRIMARY KEY,
    provider   TEXT NOT NULL,
    session_id TEXT NOT NULL,
    link       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- Every message sent, by its dedup key (start, reason): a retried send
-- finds it and sends nothing.
CREATE TABLE hiring_mails (
    mail_key       TEXT NOT NULL PRIMARY KEY,
    kind           TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    recipient_hash TEXT NOT NULL,
    sent_at        TEXT NOT NULL
);
