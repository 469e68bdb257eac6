//! How the shared SQL runs on either backend: a statement's values as
//! [`Arg`]s, and [`Run`], which each backend's connection implements in a
//! few lines (its own argument buffer, and Postgres's numbered
//! placeholders). Every query is written once, in `ops` and `reads`.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// One value bound to a placeholder: the types both backends store.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(Option<bool>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Arg<'a> {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Arg<'a> {
        Arg::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Arg<'a> {
        Arg::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Arg<'a> {
        Arg::Text(v.as_deref())
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
    }
}

impl From<Option<bool>> for Arg<'_> {
    fn from(v: Option<bool>) -> Self {
        Arg::Bool(v)
    }
}

/// A row type both backends decode (derived `FromRow` structs, tuples).
pub(crate) trait Rowed:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Rowed for T where T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}

/// A connection that runs the shared SQL (written with `?` placeholders).
#[async_trait]
pub(crate) trait Run: Send {
    /// Whether this is Postgres: the few statements that take a list (a JSON
    /// array bound as one text value) are written once per backend, see
    /// [`super::sql::Listed`].
    const POSTGRES: bool;
    /// Rows affected.
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error>;
    async fn fetch_all<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<T>, sqlx::Error>;
    async fn fetch_optional<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>])
    -> Result<Option<T>, sqlx::Error>;
    async fn fetch_one<T: Rowed>(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<T, sqlx::Error>;
}

/// Fill a backend's argument buffer.
pub(crate) fn arguments<'q, A>(args: &[Arg<'q>]) -> Result<A, sqlx::Error>
where
    A: sqlx::Arguments<'q> + Default,
    Option<&'q str>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    Option<i64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    Option<bool>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    let mut out = A::default();
    for a in args {
        match *a {
            Arg::Text(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}
