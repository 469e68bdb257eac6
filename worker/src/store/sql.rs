//! The SQL both backends share, written once with `?` placeholders (SQLite's
//! form; Postgres gets them numbered by [`numbered`]). It runs through
//! `super::run::Run`: the writer's statements are `super::ops`, the reads
//! `super::reads`. A backend keeps only what really differs: how a group
//! takes its locks, how the delete guards are lifted for retention, and
//! housekeeping.

/// `?` → `$1, $2, …` (and `?N` → `$N`), for Postgres.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        if digits.is_empty() {
            n += 1;
            digits = n.to_string();
        }
        out.push('$');
        out.push_str(&digits);
    }
    out
}

pub(crate) const FIND_KEY: &str = "SELECT seq, COALESCE(event_id, '') AS event_id, trace_id, processing_result \
     FROM deliveries WHERE idempotency_key = ? AND processing_result IN ('accepted', 'ignored')";
pub(crate) const HEAD: &str = "SELECT chain_pos, hash FROM stream_heads WHERE stream = ?";

/// A statement that takes a list, bound as one text value (a JSON array), so
/// that a group reads or writes many rows in one round trip: SQLite walks it
/// with `json_each`, Postgres with `json_array_elements`. Written once per
/// backend, here side by side. On Postgres a look-up is `= ANY(ARRAY(...))`,
/// not `IN (SELECT ...)`: the planner guesses a set-returning function at
/// 100 rows and would hash-join a whole table against a group's dozen keys;
/// rows with many fields are `jsonb`, parsed once, not once per `->>`.
pub(crate) struct Listed {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Listed {
    pub(crate) fn pick<C: super::run::Run>(&self) -> &'static str {
        if C::POSTGRES { self.postgres } else { self.sqlite }
    }
}

/// [`FIND_KEY`] for a list of keys, each row with its key.
pub(crate) const FIND_KEYS: Listed = Listed {
    sqlite: "SELECT idempotency_key, seq, COALESCE(event_id, '') AS event_id, trace_id, processing_result \
     FROM deliveries WHERE idempotency_key IN (SELECT value FROM json_each(?)) \
     AND processing_result IN ('accepted', 'ignored')",
    postgres: "SELECT idempotency_key, seq, COALESCE(event_id, '') AS event_id, trace_id, processing_result \
     FROM deliveries WHERE idempotency_key = ANY(ARRAY(SELECT json_array_elements_text(CAST(? AS json)))) \
     AND processing_result IN ('accepted', 'ignored')",
};
/// [`HEAD`] for a list of streams, each row with its stream.
pub(crate) const HEADS_OF: Listed = Listed {
    sqlite: "SELECT stream, chain_pos, hash FROM stream_heads WHERE stream IN (SELECT value FROM json_each(?))",
    postgres: "SELECT stream, chain_pos, hash FROM stream_heads \
     WHERE stream = ANY(ARRAY(SELECT json_array_elements_text(CAST(? AS json))))",
};
/// Move the heads of a list of `[stream, chain_pos, hash]` (a chain's first
/// record makes its head).
pub(crate) const SET_HEADS: Listed = Listed {
    sqlite: "INSERT INTO stream_heads (stream, chain_pos, hash) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') \
     FROM json_each(?) WHERE TRUE \
     ON CONFLICT (stream) DO UPDATE SET chain_pos = excluded.chain_pos, hash = excluded.hash",
    postgres: "INSERT INTO stream_heads (stream, chain_pos, hash) \
     SELECT h->>0, CAST(h->>1 AS BIGINT), h->>2 FROM json_array_elements(CAST(? AS json)) AS h \
     ON CONFLICT (stream) DO UPDATE SET chain_pos = excluded.chain_pos, hash = excluded.hash",
};
/// [`INSERT_DELIVERY`] for a list of rows (JSON objects named as the
/// columns), inserted in list order; a row that loses a race for its key is
/// left out of what comes back (`seq, stream, chain_pos`).
pub(crate) const INSERT_DELIVERIES: Listed = Listed {
    sqlite: "INSERT INTO deliveries (received_at, event_id, event_type, occurred_at, \
     candidate_id, application_id, idempotency_key, signature_valid, processing_result, reject_code, trace_id, \
     body_sha256, delivery_attempt, payload, signal, stream, chain_pos, prev_hash, hash, key_id) \
     SELECT json_extract(value, '$.received_at'), json_extract(value, '$.event_id'), \
     json_extract(value, '$.event_type'), json_extract(value, '$.occurred_at'), json_extract(value, '$.candidate_id'), \
     json_extract(value, '$.application_id'), json_extract(value, '$.idempotency_key'), \
     json_extract(value, '$.signature_valid'), json_extract(value, '$.processing_result'), \
     json_extract(value, '$.reject_code'), json_extract(value, '$.trace_id'), json_extract(value, '$.body_sha256'), \
     json_extract(value, '$.delivery_attempt'), json_extract(value, '$.payload'), json_extract(value, '$.signal'), \
     json_extract(value, '$.stream'), json_extract(value, '$.chain_pos'), json_extract(value, '$.prev_hash'), \
     json_extract(value, '$.hash'), json_extract(value, '$.key_id') \
     FROM json_each(?) WHERE TRUE ORDER BY key \
     ON CONFLICT (idempotency_key) WHERE processing_result IN ('accepted', 'ignored') DO NOTHING \
     RETURNING seq, stream, chain_pos",
    postgres: "INSERT INTO deliveries (received_at, event_id, event_type, occurred_at, \
     candidate_id, application_id, idempotency_key, signature_valid, processing_result, reject_code, trace_id, \
     body_sha256, delivery_attempt, payload, signal, stream, chain_pos, prev_hash, hash, key_id) \
     SELECT j->>'received_at', j->>'event_id', j->>'event_type', j->>'occurred_at', j->>'candidate_id', \
     j->>'application_id', j->>'idempotency_key', CAST(j->>'signature_valid' AS BOOLEAN), j->>'processing_result', \
     j->>'reject_code', j->>'trace_id', j->>'body_sha256', CAST(j->>'delivery_attempt' AS BIGINT), j->>'payload', \
     j->>'signal', j->>'stream', CAST(j->>'chain_pos' AS BIGINT), j->>'prev_hash', j->>'hash', j->>'key_id' \
     FROM jsonb_array_elements(CAST(? AS jsonb)) WITH ORDINALITY AS e (j, n) ORDER BY n \
     ON CONFLICT (idempotency_key) WHERE processing_result IN ('accepted', 'ignored') DO NOTHING \
     RETURNING seq, stream, chain_pos",
};
/// [`INSERT_OUTBOX`] for a list of `[seq, received_at]`.
pub(crate) const INSERT_OUTBOXES: Listed = Listed {
    sqlite: "INSERT INTO outbox (seq, received_at) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)",
    postgres: "INSERT INTO outbox (seq, received_at) \
     SELECT CAST(o->>0 AS BIGINT), o->>1 FROM json_array_elements(CAST(? AS json)) AS o",
};
/// [`PUT_FIELD_KEY`] for a list of `[candidate_id, field_key, created_at]`;
/// what comes back is the candidates whose key this made (another
/// connection may have made one first).
pub(crate) const PUT_FIELD_KEYS: Listed = Listed {
    sqlite: "INSERT INTO candidate_keys (candidate_id, field_key, created_at) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') \
     FROM json_each(?) WHERE TRUE ON CONFLICT (candidate_id) DO NOTHING RETURNING candidate_id",
    postgres: "INSERT INTO candidate_keys (candidate_id, field_key, created_at) \
     SELECT k->>0, k->>1, k->>2 FROM json_array_elements(CAST(? AS json)) AS k \
     ON CONFLICT (candidate_id) DO NOTHING RETURNING candidate_id",
};
/// The field keys of a list of candidates, each row with its candidate.
pub(crate) const FIELD_KEYS_OF: Listed = Listed {
    sqlite: "SELECT candidate_id, field_key FROM candidate_keys WHERE candidate_id IN (SELECT value FROM json_each(?))",
    postgres: "SELECT candidate_id, field_key FROM candidate_keys \
     WHERE candidate_id = ANY(ARRAY(SELECT json_array_elements_text(CAST(? AS json))))",
};
/// Record the forwards of a list of seqs (?1) at ?2, and take them out of the
/// outbox (the second statement).
pub(crate) const MARK_FORWARDED_ALL: Listed = Listed {
    sqlite: "INSERT INTO forwards (seq, forwarded_at) SELECT value, ?2 FROM json_each(?1) WHERE TRUE \
     ON CONFLICT DO NOTHING",
    postgres: "INSERT INTO forwards (seq, forwarded_at) \
     SELECT CAST(s AS BIGINT), ?2 FROM json_array_elements_text(CAST(?1 AS json)) AS s ON CONFLICT DO NOTHING",
};
pub(crate) const TAKE_ALL_FROM_OUTBOX: Listed = Listed {
    sqlite: "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))",
    postgres: "DELETE FROM outbox \
     WHERE seq = ANY(ARRAY(SELECT CAST(s AS BIGINT) FROM json_array_elements_text(CAST(? AS json)) AS s))",
};
pub(crate) const DECISION_EXISTS: &str = "SELECT 1 AS one FROM decisions WHERE record_id = ?";
/// When a verification's accepted events happened (for apply → verified).
/// A verification's event times, and the hiring loop's request's body (it
/// holds the ATS application's own time, `signals.applied_at`).
pub(crate) const EVENT_TIMES: &str = "SELECT occurred_at, CASE WHEN event_type = 'verification.requested' \
     THEN payload END FROM deliveries WHERE candidate_id = ? AND application_id = ? \
     AND processing_result = 'accepted' AND occurred_at IS NOT NULL";
/// A losing racer for an accepted key gets no row back and is decided again.
pub(crate) const INSERT_DELIVERY: &str = "INSERT INTO deliveries (received_at, event_id, event_type, occurred_at, \
     candidate_id, application_id, idempotency_key, signature_valid, processing_result, reject_code, trace_id, \
     body_sha256, delivery_attempt, payload, signal, stream, chain_pos, prev_hash, hash, key_id) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (idempotency_key) WHERE processing_result IN ('accepted', 'ignored') DO NOTHING RETURNING seq";
pub(crate) const INSERT_DECISION: &str = "INSERT INTO decisions (record_id, recorded_at, kind, candidate_id, \
     application_id, event_id, event_type, occurred_at, received_at, idempotency_key, state_before, state_after, reason, \
     write_targets, delivery_attempt, processing_result, trace_id, override_actor, override_reason_code, \
     override_timestamp, detail, stream, chain_pos, prev_hash, hash, key_id) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// The review queue projection (see `projection::review`): an item opened or
/// escalated, unless a newer record already changed it.
pub(crate) const UPSERT_REVIEW: &str = "INSERT INTO review_items (candidate_id, application_id, is_open, queue, \
     reason_codes, evidence_pack_url, routed_at, due_at, escalations, flags, trace_id, as_of) \
     VALUES (?, ?, TRUE, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (candidate_id, application_id) DO UPDATE SET is_open = TRUE, queue = excluded.queue, \
     reason_codes = excluded.reason_codes, evidence_pack_url = excluded.evidence_pack_url, \
     routed_at = excluded.routed_at, due_at = excluded.due_at, escalations = excluded.escalations, \
     flags = excluded.flags, trace_id = excluded.trace_id, as_of = excluded.as_of \
     WHERE review_items.as_of <= excluded.as_of";
pub(crate) const CLOSE_REVIEW: &str = "UPDATE review_items SET is_open = FALSE, as_of = ?1 \
     WHERE candidate_id = ?2 AND application_id = ?3 AND as_of <= ?1";
/// Open items in due order, filtered, after a keyset cursor.
/// ?1 queue, ?2 overdue, ?3 now, ?4 reason-code pattern, ?5..?7 cursor, ?8 limit.
pub(crate) const REVIEW_QUEUE: &str = "SELECT candidate_id, application_id, queue, reason_codes, evidence_pack_url, \
     routed_at, due_at, escalations, flags, trace_id FROM review_items WHERE is_open = TRUE \
     AND (?1 IS NULL OR queue = ?1) \
     AND (?2 IS NULL OR (escalations > 0 OR due_at <= ?3) = ?2) \
     AND (?4 IS NULL OR reason_codes LIKE ?4 ESCAPE '\\') \
     AND (?5 IS NULL OR due_at > ?5 OR (due_at = ?5 AND (candidate_id > ?6 OR (candidate_id = ?6 AND application_id > ?7)))) \
     ORDER BY due_at, candidate_id, application_id LIMIT ?8";
/// One verification's open item.
pub(crate) const REVIEW_ITEM: &str = "SELECT candidate_id, application_id, queue, reason_codes, evidence_pack_url, \
     routed_at, due_at, escalations, flags, trace_id FROM review_items \
     WHERE candidate_id = ? AND application_id = ? AND is_open = TRUE";
/// (open items, overdue among them) at ?1.
pub(crate) const REVIEW_COUNTS: &str = "SELECT CAST(COUNT(*) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN escalations > 0 OR due_at <= ?1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM review_items WHERE is_open = TRUE";
pub(crate) const GET_CONTROL: &str = "SELECT name, value, actor, reason, changed_at FROM controls WHERE name = ?";
pub(crate) const SET_CONTROL: &str = "INSERT INTO controls (name, value, actor, reason, changed_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, actor = excluded.actor, \
     reason = excluded.reason, changed_at = excluded.changed_at";
/// The gate projection (see `projection::gate`).
pub(crate) const GATE_STATE: &str = "INSERT INTO gate_items (application_id, candidate_id, state, ats_sync, as_of) \
     VALUES (?, ?, ?, 'pending-sync', ?) ON CONFLICT (application_id) DO UPDATE SET \
     candidate_id = excluded.candidate_id, state = excluded.state, ats_sync = excluded.ats_sync, as_of = excluded.as_of \
     WHERE gate_items.as_of <= excluded.as_of";
pub(crate) const GATE_WRITTEN: &str =
    "UPDATE gate_items SET ats_sync = 'synced' WHERE application_id = ? AND state = ?";
pub(crate) const GATE_SYNC: &str = "UPDATE gate_items SET ats_sync = ? WHERE application_id = ?";
/// An application's row, and whether a provider's reversal holds it (an open
/// review item flagged `provider_reversal`).
pub(crate) const GATE_ROW: &str = "SELECT g.application_id, g.candidate_id, g.state, g.ats_sync, \
     CASE WHEN EXISTS (SELECT 1 FROM review_items r WHERE r.candidate_id = g.candidate_id \
     AND r.application_id = g.application_id AND r.is_open = TRUE \
     AND r.flags LIKE '%\"provider\\_reversal\"%' ESCAPE '\\') THEN TRUE ELSE FALSE END AS reversal_held \
     FROM gate_items g WHERE g.application_id = ?";
/// Dead letters (see `projection::dead_letters`).
pub(crate) const DEAD_LETTER: &str = "INSERT INTO dead_letters (idempotency_key, candidate_id, application_id, \
     event_id, target, state, reason, failed_at, is_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?, TRUE) \
     ON CONFLICT (idempotency_key) DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at, \
     is_open = TRUE, resolved_at = NULL";
pub(crate) const DEAD_LETTERS_RESOLVED: &str = "UPDATE dead_letters SET is_open = FALSE, resolved_at = ?1 \
     WHERE target = ?2 AND is_open = TRUE AND failed_at <= ?1";
pub(crate) const OPEN_DEAD_LETTERS: &str = "SELECT idempotency_key, candidate_id, application_id, event_id, target, \
     state, reason, failed_at FROM dead_letters WHERE is_open = TRUE \
     AND (?1 IS NULL OR idempotency_key = ?1) ORDER BY failed_at DESC LIMIT ?2";
/// The job an accepted delivery named (a field it leaves out keeps its value).
pub(crate) const UPSERT_JOB: &str = "INSERT INTO application_jobs (application_id, requisition, role, region, updated_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (application_id) DO UPDATE SET \
     requisition = COALESCE(excluded.requisition, application_jobs.requisition), \
     role = COALESCE(excluded.role, application_jobs.role), \
     region = COALESCE(excluded.region, application_jobs.region), updated_at = excluded.updated_at";
pub(crate) const JOB: &str = "SELECT requisition, role, region FROM application_jobs WHERE application_id = ?";
/// The reconciliation's expectation (see `projection::reconcile`).
pub(crate) const EXPECTED_OF: &str =
    "SELECT fields FROM ats_expected WHERE application_id = ? AND verification_check_id = ?";
pub(crate) const SET_EXPECTED: &str = "INSERT INTO ats_expected (application_id, verification_check_id, candidate_id, \
     fields) VALUES (?, ?, ?, ?) ON CONFLICT (application_id, verification_check_id) DO UPDATE SET \
     candidate_id = excluded.candidate_id, fields = excluded.fields";
/// A page in (application, check) order after ?1/?2.
pub(crate) const EXPECTED_PAGE: &str = "SELECT application_id, verification_check_id, candidate_id, fields \
     FROM ats_expected WHERE application_id > ?1 OR (application_id = ?1 AND verification_check_id > ?2) \
     ORDER BY application_id, verification_check_id LIMIT ?3";
pub(crate) const EXPECTED_COUNT: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM ats_expected";
pub(crate) const SAVE_RUN: &str = "INSERT INTO reconcile_runs (run_id, finished_at, report) VALUES (?, ?, ?) \
     ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, report = excluded.report";
pub(crate) const GET_RUN: &str = "SELECT report FROM reconcile_runs WHERE run_id = ?";
/// Whether the store accepted any delivery of a verification.
pub(crate) const KNOWN: &str = "SELECT EXISTS (SELECT 1 FROM deliveries WHERE candidate_id = ? AND application_id = ? \
     AND processing_result = 'accepted')";
/// An accepted delivery enters the outbox in the transaction that commits it.
pub(crate) const INSERT_OUTBOX: &str = "INSERT INTO outbox (seq, received_at) VALUES (?, ?)";
pub(crate) const CHAIN_ENTRIES: &str = "SELECT d.stream, d.chain_pos, d.hash, d.received_at AS at, \
     EXISTS (SELECT 1 FROM outbox o WHERE o.seq = d.seq) AS pending FROM deliveries d \
     WHERE d.stream IS NOT NULL AND d.chain_pos IS NOT NULL \
     UNION ALL SELECT stream, chain_pos, hash, recorded_at AS at, FALSE AS pending FROM decisions";
/// The outbox is O(pending): rows leave it when forwarded.
/// `seen_before`: an earlier accepted delivery of the same verification (the
/// `deliveries_candidate` index answers it).
/// The relay's round: the ?1 oldest outbox rows, and with them the other
/// owed rows of their verifications (found through `deliveries_candidate`),
/// at most ?2 in all, in commit order: so that a verification's backlog goes
/// in one batch. A cut at ?2 keeps a prefix of each verification's rows.
pub(crate) const OWED_ROUND: &str = "WITH head AS (SELECT seq FROM outbox ORDER BY seq LIMIT ?1), \
     streams AS (SELECT DISTINCT d.candidate_id, d.application_id FROM head h JOIN deliveries d ON d.seq = h.seq), \
     picked AS (SELECT seq FROM head UNION SELECT o.seq FROM streams s JOIN deliveries d \
     ON d.candidate_id = s.candidate_id AND d.application_id = s.application_id JOIN outbox o ON o.seq = d.seq) \
     SELECT k.seq, COALESCE(d.signal, '') AS signal, \
     EXISTS (SELECT 1 FROM deliveries p WHERE p.candidate_id = d.candidate_id \
     AND p.application_id = d.application_id AND p.seq < d.seq AND p.processing_result = 'accepted') AS seen_before \
     FROM picked k JOIN deliveries d ON d.seq = k.seq ORDER BY k.seq LIMIT ?2";
pub(crate) const OLDEST_UNFORWARDED: &str = "SELECT received_at FROM outbox ORDER BY seq LIMIT 1";
pub(crate) const HEADS: &str = "SELECT stream, chain_pos, hash FROM stream_heads";
pub(crate) const DELIVERIES: &str = "SELECT d.*, EXISTS (SELECT 1 FROM forwards f WHERE f.seq = d.seq) AS forwarded \
     FROM deliveries d WHERE (?1 IS NULL OR d.candidate_id = ?1) AND (?2 IS NULL OR d.application_id = ?2) \
     ORDER BY d.seq";
/// A candidate's decisions are those of its own chains: a record in the
/// `rejected` or `access` chain names a candidate only as an unverified claim
/// (a refused delivery's), and is never the candidate's.
pub(crate) const DECISIONS: &str = "SELECT * FROM decisions WHERE (?1 IS NULL OR (candidate_id = ?1 \
     AND stream NOT IN ('rejected', 'access', 'erasure'))) AND (?2 IS NULL OR application_id = ?2) ORDER BY seq";
/// The erasure records (docs/privacy.md), of one candidate (?1) or all, oldest first.
pub(crate) const ERASURES: &str =
    "SELECT * FROM decisions WHERE stream = 'erasure' AND (?1 IS NULL OR candidate_id = ?1) ORDER BY seq";
/// Refused deliveries (`super::refused`), both kinds in one order: rows of
/// the `rejected` chain, and aggregated windows (`deliveries_refused`).
/// ?1 since, ?2 until, ?3 code, ?4 claimed candidate, ?5..?7 cursor, ?8 limit.
pub(crate) const REFUSED_DELIVERIES: &str = "SELECT source, seq, first_seen, code, candidate_id, application_id, \
     event_id, signature_valid, trace_id, detail FROM ( \
     SELECT 'delivery' AS source, d.seq AS seq, d.received_at AS first_seen, COALESCE(d.reject_code, '') AS code, \
     COALESCE(d.candidate_id, '') AS candidate_id, COALESCE(d.application_id, '') AS application_id, \
     COALESCE(d.event_id, '') AS event_id, d.signature_valid AS signature_valid, d.trace_id AS trace_id, \
     '' AS detail FROM deliveries d WHERE d.stream = 'rejected' \
     UNION ALL SELECT 'window', seq, received_at, processing_result, candidate_id, application_id, event_id, \
     FALSE, trace_id, detail FROM decisions WHERE kind = 'deliveries_refused') r \
     WHERE (?1 IS NULL OR first_seen >= ?1) AND (?2 IS NULL OR first_seen < ?2) AND (?3 IS NULL OR code = ?3) \
     AND (?4 IS NULL OR candidate_id = ?4) \
     AND (?5 IS NULL OR first_seen > ?5 OR (first_seen = ?5 AND (source > ?6 OR (source = ?6 AND seq > ?7)))) \
     ORDER BY first_seen, source, seq LIMIT ?8";
pub(crate) const CHECKPOINTS: &str = "SELECT stream, next_pos, prev_hash FROM chain_checkpoints";
/// Console logouts (`store::sessions`).
pub(crate) const REVOKE_SESSION: &str =
    "INSERT INTO console_revocations (sid, expires_at) VALUES (?, ?) ON CONFLICT (sid) DO NOTHING";
pub(crate) const PRUNE_REVOCATIONS: &str = "DELETE FROM console_revocations WHERE expires_at <= ?";
pub(crate) const SESSION_REVOKED: &str = "SELECT expires_at FROM console_revocations WHERE sid = ?";

/// The hiring loop's working rows (`store::outreach`).
pub(crate) const PUT_CONTACT: &str = "INSERT INTO hiring_contacts (candidate_id, application_id, email, recruiter_email, stored_at) VALUES (?, ?, ?, ?, ?) \
     ON CONFLICT (candidate_id, application_id) DO UPDATE SET email = excluded.email, \
     recruiter_email = COALESCE(excluded.recruiter_email, hiring_contacts.recruiter_email), stored_at = excluded.stored_at";
pub(crate) const CONTACT: &str =
    "SELECT email, recruiter_email FROM hiring_contacts WHERE candidate_id = ? AND application_id = ?";
pub(crate) const FORGET_CONTACT: &str = "DELETE FROM hiring_contacts WHERE candidate_id = ? AND application_id = ?";
pub(crate) const PUT_START: &str = "INSERT INTO hiring_starts (start_key, provider, session_id, link, created_at, \
     candidate_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (start_key) DO NOTHING";
pub(crate) const START: &str = "SELECT provider, session_id, link FROM hiring_starts WHERE start_key = ?";
pub(crate) const SET_LINK: &str = "UPDATE hiring_starts SET link = ? WHERE start_key = ?";
pub(crate) const PUT_MAIL: &str = "INSERT INTO hiring_mails (mail_key, kind, message_id, recipient_hash, sent_at, \
     candidate_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mail_key) DO NOTHING";
pub(crate) const MAIL: &str = "SELECT message_id, recipient_hash FROM hiring_mails WHERE mail_key = ?";
pub(crate) const PUT_POLL_CURSOR: &str = "INSERT INTO hiring_polls (poll, cursor, updated_at) VALUES (?, ?, ?) \
     ON CONFLICT (poll) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";
pub(crate) const POLL_CURSOR: &str = "SELECT cursor FROM hiring_polls WHERE poll = ?";

// Crypto-shredding (docs/privacy.md): a candidate's field key, made on first
// use by whoever stores a sealed field first (the writer or the hiring rows'
// connection); both then read the one kept.
pub(crate) const PUT_FIELD_KEY: &str = "INSERT INTO candidate_keys (candidate_id, field_key, created_at) \
     VALUES (?, ?, ?) ON CONFLICT (candidate_id) DO NOTHING";
pub(crate) const FIELD_KEY: &str = "SELECT field_key FROM candidate_keys WHERE candidate_id = ?";
pub(crate) const ERASE_FIELD_KEY: &str = "DELETE FROM candidate_keys WHERE candidate_id = ?";
pub(crate) const ERASE_CONTACTS: &str = "DELETE FROM hiring_contacts WHERE candidate_id = ?";
pub(crate) const ERASE_STARTS: &str = "DELETE FROM hiring_starts WHERE candidate_id = ?";
pub(crate) const ERASE_MAILS: &str = "DELETE FROM hiring_mails WHERE candidate_id = ?";

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn a_candidates_decisions_leave_out_the_chains_of_claims() {
        use vbridge_core::chain::{ACCESS_STREAM, ERASURE_STREAM, REJECTED_STREAM};
        let excluded = format!("stream NOT IN ('{REJECTED_STREAM}', '{ACCESS_STREAM}', '{ERASURE_STREAM}')");
        assert!(super::DECISIONS.contains(&excluded), "{}", super::DECISIONS);
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(numbered("(?1 IS NULL OR c = ?1) AND (?2 IS NULL)"), "($1 IS NULL OR c = $1) AND ($2 IS NULL)");
    }
}
