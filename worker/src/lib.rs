//! vbridge: a signed-webhook → event store → Temporal → ATS bridge.
//!
//! The rooms, each a thin edge around the pure core in `vbridge-workflows`:
//! - [`http`]: the router, its layers (timeouts, in-flight bound, auth) and
//!   thin handlers; every refusal maps through one `ApiError`;
//! - [`intake`]: a delivery's way in: signature, duplicate short-cut,
//!   redaction, parsing, commit;
//! - [`store`]: the append-only event store and its group-commit writer
//!   (SQLite, Postgres), with the outbox;
//! - [`relay`]: the outbox → Temporal signals;
//! - [`temporal`]: connection, the worker, signal-with-start;
//! - [`audit`]: hash chains, seals, timeline export;
//! - [`health`], [`metrics`], [`config`], and [`app`], which composes the roles;
//! - [`devtools`] (feature `devtools`): the sandbox ATS, the dev server and
//!   stack, simulate, bench.

pub mod app;
pub mod audit;
pub mod config;
pub mod console;
pub mod controls;
#[cfg(feature = "devtools")]
pub mod devtools;
pub mod health;
pub mod http;
pub mod intake;
pub mod metrics;
pub mod relay;
pub mod review;
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
