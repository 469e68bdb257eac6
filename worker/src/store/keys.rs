//! Candidates' field keys (crypto-shredding: docs/privacy.md). A key is
//! made on first use, by whichever connection seals a field of the
//! candidate first, and read back, so that two connections racing to make
//! one keep the same. Erasure deletes it ([`super::writer`]'s erase op).

use super::run::Run;
use super::sql;
use vbridge_core::seal::{self, FieldKey};

/// The candidate's key, made now when there is none. Read first: after a
/// candidate's first delivery that is the one round trip it costs.
pub(crate) async fn field_key(c: &mut impl Run, candidate: &str) -> Result<FieldKey, sqlx::Error> {
    if let Some(k) = existing(c, candidate).await? {
        return Ok(k);
    }
    make(c, candidate).await
}

/// Make the key of a candidate read to have none (the kept one, when another
/// connection made one meanwhile).
pub(crate) async fn make(c: &mut impl Run, candidate: &str) -> Result<FieldKey, sqlx::Error> {
    let (key, hex) = fresh()?;
    let now = crate::now_rfc3339();
    if c.execute(sql::PUT_FIELD_KEY, &[candidate.into(), hex.as_str().into(), now.as_str().into()]).await? == 1 {
        return Ok(key);
    }
    // Another connection made one first: the kept one is the key.
    existing(c, candidate).await?.ok_or(sqlx::Error::RowNotFound)
}

/// A new random key, and its hex as stored.
pub(crate) fn fresh() -> Result<(FieldKey, String), sqlx::Error> {
    let mut fresh = [0u8; seal::KEY_LEN];
    getrandom::fill(&mut fresh).map_err(|e| sqlx::Error::Protocol(format!("the OS's randomness: {e}")))?;
    Ok((FieldKey::from_bytes(&fresh).expect("32 bytes"), hex::encode(fresh)))
}

/// Store keys made by [`fresh`] for candidates read to have none, as
/// `(candidate, hex)`, in one statement: whether every one was stored (not
/// so when another connection made one of them first).
pub(crate) async fn put_made<C: Run>(c: &mut C, made: &[(String, String)]) -> Result<bool, sqlx::Error> {
    if made.is_empty() {
        return Ok(true);
    }
    let now = crate::now_rfc3339();
    let rows: Vec<(&str, &str, &str)> =
        made.iter().map(|(cand, hex)| (cand.as_str(), hex.as_str(), now.as_str())).collect();
    let list = super::ops::json_list(&rows)?;
    let stored: Vec<(String,)> = c.fetch_all(sql::PUT_FIELD_KEYS.pick::<C>(), &[list.as_str().into()]).await?;
    Ok(stored.len() == made.len())
}

/// The candidate's key, when it has one (none: never sealed anything, or erased).
pub(crate) async fn existing(c: &mut impl Run, candidate: &str) -> Result<Option<FieldKey>, sqlx::Error> {
    let row: Option<(String,)> = c.fetch_optional(sql::FIELD_KEY, &[candidate.into()]).await?;
    match row {
        None => Ok(None),
        Some((hex,)) => FieldKey::from_hex(&hex).map(Some).map_err(|e| sqlx::Error::Decode(Box::new(e))),
    }
}

/// The keys of a list of candidates that have one, as (candidate, key).
pub(crate) async fn existing_of<C: Run>(
    c: &mut C,
    candidates: &[&str],
) -> Result<Vec<(String, FieldKey)>, sqlx::Error> {
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    let list = super::ops::json_list(candidates)?;
    let rows: Vec<(String, String)> = c.fetch_all(sql::FIELD_KEYS_OF.pick::<C>(), &[list.as_str().into()]).await?;
    rows.into_iter()
        .map(|(cand, hex)| FieldKey::from_hex(&hex).map(|k| (cand, k)).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

/// Seal `text` of `candidate` under `key`, with a fresh random nonce.
pub(crate) fn seal_text(key: &FieldKey, candidate: &str, text: &str) -> Result<String, sqlx::Error> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| sqlx::Error::Protocol(format!("the OS's randomness: {e}")))?;
    Ok(seal::seal(key, candidate, nonce, text))
}
