//! Who is to blame when a group fails: the connection, the moment, or one op.

/// Why a group failed.
pub(super) enum Fail {
    Sql(sqlx::Error),
    /// Another process kept taking the same idempotency key.
    KeyContention,
    /// A row of a group written in bulk lost a race for its key (or a
    /// candidate's key was made by another connection first): the group
    /// runs again, one by one.
    Raced,
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Fail {
        Fail::Sql(e)
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Sql(e) => write!(f, "{e}"),
            Fail::KeyContention => f.write_str("the idempotency key kept changing hands"),
            Fail::Raced => f.write_str("a row written in bulk lost a race for its key"),
        }
    }
}

/// How a failure bears on the ops of its group.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Blame {
    /// The connection is gone: reconnect; nothing in the group was done.
    Connection,
    /// Not this op's doing (lock contention, a deadlock, a serialization
    /// failure): the group's callers retry later.
    Transient,
    /// The database refused what this op asked.
    Op,
}

pub(super) fn blame(f: &Fail) -> Blame {
    let Fail::Sql(e) = f else { return Blame::Transient };
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Blame::Connection,
        sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
            // SQLite's extended code; its low byte is the primary one.
            match db.code().and_then(|c| c.parse::<u32>().ok()).map(|c| c & 0xff) {
                // Busy, locked; read-only, I/O error, disk full, cannot open.
                Some(5 | 6 | 8 | 10 | 13 | 14) => Blame::Transient,
                _ => Blame::Op,
            }
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // Postgres: connection exceptions, and the server going away
            // (pg_terminate_backend, shutdown, crash).
            Some(c) if c.starts_with("08") || c.starts_with("57P") => Blame::Connection,
            // Serialization failure, deadlock; insufficient resources (disk
            // full); operator intervention short of shutdown.
            Some(c) if c.starts_with("40") || c.starts_with("53") || c.starts_with("57") => Blame::Transient,
            _ => Blame::Op,
        },
        _ => Blame::Op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_blamed_on_the_right_party() {
        assert_eq!(blame(&Fail::KeyContention), Blame::Transient);
        assert_eq!(blame(&Fail::Sql(sqlx::Error::PoolTimedOut)), Blame::Connection);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(blame(&Fail::Sql(sqlx::Error::Io(io))), Blame::Connection);
        assert_eq!(blame(&Fail::Sql(sqlx::Error::RowNotFound)), Blame::Op);
    }
}
