//! The hiring loop's working rows (`hiring_contacts`, `hiring_starts`,
//! `hiring_mails`, and the interview polls' cursors, `hiring_polls`;
//! docs/hiring.md): the candidate's address from the ATS's
//! webhook, the sessions created at the provider (with the candidate's
//! link), and the messages sent. None is part of the audit log or its
//! chains, so none goes through the group-commit writer: like console
//! logouts (`sessions`), a connection of its own writes them (`side`).

use super::StoreError;
use super::keys;
use super::run::Run;
use super::side::SidePool;
use super::sql;
use async_trait::async_trait;
use std::sync::Arc;
use vbridge_activities::hiring::{Contact, MailRow, Outreach, StartRow};
use vbridge_core::seal::{self, FieldKey};

pub struct OutreachStore(SidePool);

/// The hiring rows of the store at `url` (opened, and migrated, by
/// [`super::open`] first).
pub async fn open_outreach(url: &str) -> Result<Arc<OutreachStore>, StoreError> {
    let pool = super::side::open(url).await?;
    Ok(Arc::new(OutreachStore(pool)))
}

/// Run `$body` on a connection of the pool, as `$c`.
macro_rules! with_conn {
    ($self:ident, $c:ident => $body:expr) => {
        match &$self.0 {
            SidePool::Sqlite(p) => {
                let mut conn = p.acquire().await.map_err(|e| e.to_string())?;
                let $c = &mut *conn;
                $body.await.map_err(|e: sqlx::Error| e.to_string())
            }
            SidePool::Postgres(p) => {
                let mut conn = p.acquire().await.map_err(|e| e.to_string())?;
                let $c = &mut *conn;
                $body.await.map_err(|e: sqlx::Error| e.to_string())
            }
        }
    };
}

// The addresses and links are the candidate's personal data: sealed under
// the candidate's key (docs/privacy.md). A row whose key is gone reads as
// no row: there is nobody left to mail.

/// Open `text` of `cand`; `None` when its key is gone.
fn opened(key: Option<&FieldKey>, cand: &str, text: &str) -> Option<String> {
    match seal::reveal(key, cand, text) {
        t if seal::is_sealed(text) && t == seal::ERASED => None,
        t => Some(t),
    }
}

async fn contact(c: &mut impl Run, cand: &str, app: &str) -> Result<Option<Contact>, sqlx::Error> {
    let row: Option<(String, Option<String>)> = c.fetch_optional(sql::CONTACT, &[cand.into(), app.into()]).await?;
    let Some((email, recruiter)) = row else { return Ok(None) };
    let key = keys::existing(c, cand).await?;
    let Some(email) = opened(key.as_ref(), cand, &email) else { return Ok(None) };
    let recruiter_email = recruiter.and_then(|r| opened(key.as_ref(), cand, &r));
    Ok(Some(Contact { email, recruiter_email }))
}

async fn put_contact(
    c: &mut impl Run,
    cand: &str,
    app: &str,
    email: &str,
    recruiter: Option<&str>,
) -> Result<(), sqlx::Error> {
    let key = keys::field_key(c, cand).await?;
    let email = keys::seal_text(&key, cand, email)?;
    let recruiter = recruiter.map(|r| keys::seal_text(&key, cand, r)).transpose()?;
    let now = crate::now_rfc3339();
    let args = [cand.into(), app.into(), email.as_str().into(), recruiter.as_deref().into(), now.as_str().into()];
    c.execute(sql::PUT_CONTACT, &args).await.map(|_| ())
}

async fn start(c: &mut impl Run, cand: &str, key: &str) -> Result<Option<StartRow>, sqlx::Error> {
    let row: Option<(String, String, String)> = c.fetch_optional(sql::START, &[key.into()]).await?;
    let Some((provider, session_id, link)) = row else { return Ok(None) };
    let fk = keys::existing(c, cand).await?;
    Ok(opened(fk.as_ref(), cand, &link).map(|link| StartRow { provider, session_id, link }))
}

async fn put_start(c: &mut impl Run, cand: &str, key: &str, row: &StartRow) -> Result<(), sqlx::Error> {
    let fk = keys::field_key(c, cand).await?;
    let link = keys::seal_text(&fk, cand, &row.link)?;
    let now = crate::now_rfc3339();
    let args = [
        key.into(),
        row.provider.as_str().into(),
        row.session_id.as_str().into(),
        link.as_str().into(),
        now.as_str().into(),
        cand.into(),
    ];
    c.execute(sql::PUT_START, &args).await.map(|_| ())
}

async fn set_link(c: &mut impl Run, cand: &str, key: &str, link: &str) -> Result<(), sqlx::Error> {
    let fk = keys::field_key(c, cand).await?;
    let link = keys::seal_text(&fk, cand, link)?;
    c.execute(sql::SET_LINK, &[link.as_str().into(), key.into()]).await.map(|_| ())
}

async fn mail(c: &mut impl Run, key: &str) -> Result<Option<MailRow>, sqlx::Error> {
    let row: Option<(String, String)> = c.fetch_optional(sql::MAIL, &[key.into()]).await?;
    Ok(row.map(|(message_id, recipient_hash)| MailRow { message_id, recipient_hash }))
}

impl OutreachStore {
    /// Where the poll `poll` has read up to, if it ever finished a run.
    pub async fn poll_cursor(&self, poll: &str) -> Result<Option<String>, String> {
        with_conn!(self, c => c.fetch_optional::<(String,)>(sql::POLL_CURSOR, &[poll.into()]))
            .map(|r| r.map(|(cursor,)| cursor))
    }

    pub async fn set_poll_cursor(&self, poll: &str, cursor: &str) -> Result<(), String> {
        let now = crate::now_rfc3339();
        with_conn!(self, c => c.execute(sql::PUT_POLL_CURSOR, &[poll.into(), cursor.into(), now.as_str().into()]))
            .map(|_| ())
    }
}

#[async_trait]
impl Outreach for OutreachStore {
    async fn put_contact(&self, cand: &str, app: &str, email: &str, recruiter: Option<&str>) -> Result<(), String> {
        with_conn!(self, c => put_contact(c, cand, app, email, recruiter))
    }

    async fn contact(&self, cand: &str, app: &str) -> Result<Option<Contact>, String> {
        with_conn!(self, c => contact(c, cand, app))
    }

    async fn forget_contact(&self, cand: &str, app: &str) -> Result<(), String> {
        with_conn!(self, c => c.execute(sql::FORGET_CONTACT, &[cand.into(), app.into()])).map(|_| ())
    }

    async fn start(&self, cand: &str, key: &str) -> Result<Option<StartRow>, String> {
        with_conn!(self, c => start(c, cand, key))
    }

    async fn put_start(&self, cand: &str, key: &str, row: &StartRow) -> Result<(), String> {
        with_conn!(self, c => put_start(c, cand, key, row))
    }

    async fn set_link(&self, cand: &str, key: &str, link: &str) -> Result<(), String> {
        with_conn!(self, c => set_link(c, cand, key, link))
    }

    async fn mail(&self, key: &str) -> Result<Option<MailRow>, String> {
        with_conn!(self, c => mail(c, key))
    }

    async fn put_mail(&self, cand: &str, key: &str, kind: &str, row: &MailRow) -> Result<(), String> {
        let now = crate::now_rfc3339();
        let args = [
            key.into(),
            kind.into(),
            row.message_id.as_str().into(),
            row.recipient_hash.as_str().into(),
            now.as_str().into(),
            cand.into(),
        ];
        with_conn!(self, c => c.execute(sql::PUT_MAIL, &args)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn on_sqlite(test: impl AsyncFn(Arc<OutreachStore>, std::path::PathBuf)) {
        let dir = std::env::temp_dir().join(format!("vbridge-outreach-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("s.db").display());
        let _store = super::super::open(&url, Default::default()).await.unwrap();
        test(open_outreach(&url).await.unwrap(), dir.clone()).await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn on_sqlite_rows_are_kept_once_by_key_and_the_address_is_forgotten_on_request() {
        on_sqlite(async |o: Arc<OutreachStore>, dir: std::path::PathBuf| {
            assert_eq!(o.contact("c1", "a1").await.unwrap(), None);
            o.put_contact("c1", "a1", "old@example.com", Some("rec@example.com")).await.unwrap();
            o.put_contact("c1", "a1", "new@example.com", None).await.unwrap();
            let got = o.contact("c1", "a1").await.unwrap().unwrap();
            assert_eq!(got.email, "new@example.com", "the latest address wins");
            assert_eq!(got.recruiter_email.as_deref(), Some("rec@example.com"), "a recruiter is kept when not resent");
            // Sealed at rest under the candidate's key (docs/privacy.md).
            let files: Vec<u8> =
                ["s.db", "s.db-wal"].iter().flat_map(|f| std::fs::read(dir.join(f)).unwrap_or_default()).collect();
            for address in ["new@example.com", "rec@example.com"] {
                assert!(!files.windows(address.len()).any(|w| w == address.as_bytes()), "{address} in the clear");
            }
            o.forget_contact("c1", "a1").await.unwrap();
            assert_eq!(o.contact("c1", "a1").await.unwrap(), None);

            let first = StartRow { provider: "veriff".into(), session_id: "s1".into(), link: "https://l/1".into() };
            let second = StartRow { session_id: "s2".into(), ..first.clone() };
            o.put_start("c1", "k", &first).await.unwrap();
            o.put_start("c1", "k", &second).await.unwrap();
            assert_eq!(o.start("c1", "k").await.unwrap(), Some(first.clone()), "the first kept session wins");
            o.set_link("c1", "k", "https://l/fresh").await.unwrap();
            let fresh = StartRow { link: "https://l/fresh".into(), ..first };
            assert_eq!(o.start("c1", "k").await.unwrap(), Some(fresh), "a retake's fresh link replaces it");
            assert_eq!(o.start("c2", "k").await.unwrap(), None, "another candidate's key opens no link");

            assert_eq!(o.poll_cursor("greenhouse").await.unwrap(), None);
            o.set_poll_cursor("greenhouse", "2026-12-03T10:00:00+00:00").await.unwrap();
            o.set_poll_cursor("greenhouse", "2026-12-03T11:00:00+00:00").await.unwrap();
            assert_eq!(o.poll_cursor("greenhouse").await.unwrap().as_deref(), Some("2026-12-03T11:00:00+00:00"));

            let m = MailRow { message_id: "<m1@x>".into(), recipient_hash: "h".into() };
            o.put_mail("c1", "mk", "invite", &m).await.unwrap();
            o.put_mail("c1", "mk", "invite", &MailRow { message_id: "<m2@x>".into(), ..m.clone() }).await.unwrap();
            assert_eq!(o.mail("mk").await.unwrap(), Some(m));
            assert_eq!(o.mail("other").await.unwrap(), None);
        })
        .await;
    }
}
