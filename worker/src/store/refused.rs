//! Refused deliveries as the store lists them (`sql::REFUSED_DELIVERIES`):
//! rows of the `rejected` chain, one shape for both kinds it holds: a
//! delivery refused for its content (a row each, signed or not), and a
//! window of unauthenticated refusals aggregated (a `deliveries_refused`
//! record, its count in `detail`). Their ids are the deliveries' claims.

/// What an auditor narrows the list by; `None` is no bound.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// First seen at or after (RFC 3339 UTC, the store's format).
    pub since: Option<String>,
    /// First seen before.
    pub until: Option<String>,
    pub code: Option<String>,
    /// The candidate the deliveries claimed.
    pub candidate_id: Option<String>,
}

/// Where a page ends: (first seen, source, seq), hex on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub first_seen: String,
    pub source: String,
    pub seq: i64,
}

const SEP: char = '\u{1f}';

impl Cursor {
    pub fn encode(&self) -> String {
        hex::encode(format!("{}{SEP}{}{SEP}{}", self.first_seen, self.source, self.seq))
    }

    pub fn parse(s: &str) -> Result<Cursor, String> {
        let bad = || "the cursor is not one this API handed out".to_owned();
        let text = hex::decode(s).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad)?;
        let mut parts = text.split(SEP);
        match (parts.next(), parts.next(), parts.next().and_then(|n| n.parse().ok()), parts.next()) {
            (Some(f), Some(src), Some(seq), None) => {
                Ok(Cursor { first_seen: f.to_owned(), source: src.to_owned(), seq })
            }
            _ => Err(bad()),
        }
    }
}

/// One stored row: `source` is `delivery` (one refused delivery) or
/// `window` (an aggregate; `detail` holds its count and window).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub source: String,
    pub seq: i64,
    pub first_seen: String,
    pub code: String,
    pub candidate_id: String,
    pub application_id: String,
    pub event_id: String,
    pub signature_valid: bool,
    pub trace_id: String,
    pub detail: String,
}

impl Row {
    pub fn cursor(&self) -> Cursor {
        Cursor { first_seen: self.first_seen.clone(), source: self.source.clone(), seq: self.seq }
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let c = Cursor { first_seen: "2026-12-03T10:00:00.000Z".into(), source: "window".into(), seq: 42 };
        assert_eq!(Cursor::parse(&c.encode()), Ok(c));
        assert!(Cursor::parse("zz").is_err());
        assert!(Cursor::parse(&hex::encode("a\u{1f}b")).is_err());
    }
}
