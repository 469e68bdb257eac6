//! vbridge: a signed-webhook → event store → Temporal → ATS bridge.
//!
//! The rooms, each a thin edge around the pure core (`vbridge-core`,
//! orchestrated by `vbridge-workflows`). They import one way, top to bottom
//! (`rooms_test` fails on a cycle):
//! - edges: [`app`], which composes the roles; [`http`]: the router, its
//!   layers (timeouts, in-flight bound, auth), thin handlers (every refusal
//!   maps through one `ApiError`) and the review console (`http::console`);
//!   [`relay`]: the outbox → Temporal signals; [`devtools`] (feature
//!   `devtools`): the sandbox ATS, the dev server and stack, simulate, bench;
//!   [`config`];
//! - features: [`controls`] (kill switch, gate, dead letters,
//!   reconciliation), [`review`] (the queue as served), [`audit`] (seals,
//!   timeline export; the hash chains are the core's), [`intake`] (a
//!   delivery's way in: signature, duplicate short-cut, redaction, parsing,
//!   commit), [`erasure`] (crypto-shredding a candidate: the store, then the
//!   histories), [`health`];
//! - [`temporal`]: the glue: connection, the worker, signal-with-start;
//! - [`store`]: the lowest room: the append-only event store and its
//!   group-commit writer (SQLite, Postgres), the outbox, and the projections
//!   of the audit log with their rows (`store::projection`);
//! - utilities anyone may use, importing no room: [`metrics`], [`telemetry`].

pub mod app;
pub mod audit;
pub mod config;
pub mod controls;
#[cfg(feature = "devtools")]
pub mod devtools;
pub mod erasure;
pub mod health;
pub mod http;
pub mod intake;
pub mod metrics;
pub mod relay;
pub mod review;
#[cfg(test)]
mod rooms_test;
pub mod store;
pub mod telemetry;
pub mod temporal;

/// Now, as RFC 3339 UTC with milliseconds (the store's time format).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A watch channel that turns true on Ctrl-C or SIGTERM.
pub fn shutdown_on_signals() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}
