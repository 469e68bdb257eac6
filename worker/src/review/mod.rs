//! The manual-review queue as the bridge serves it: a projection of the
//! audit log (`crate::store::projection::review`) kept by the store in the transaction that
//! appends the workflow's records, and read by `GET /v1/reviews`, `vbridge
//! review list` and the metrics ([`queue`]). Temporal is never scanned for it.
//!
//! The rules of review themselves (routing, flags, who may decide what) are
//! the pure core's (`vbridge_core::review`), run inside the workflow.

pub mod queue;

use crate::store::{EventStore, StoreError};
use queue::{Cursor, Filter, Listing};

/// One page of the open queue, as of now.
pub async fn list(
    store: &dyn EventStore,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Listing, StoreError> {
    let now = chrono::Utc::now();
    let mut rows = store.review_queue(filter, after, limit + 1, &queue::now_key(now)).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(|r| r.cursor().encode()) } else { None };
    Ok(Listing { items: rows.into_iter().map(|r| queue::Item::of(r, now)).collect(), next })
}
