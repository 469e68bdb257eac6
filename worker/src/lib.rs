//! vbridge: a signed-webhook → event store → Temporal → ATS bridge.
//!
//! The binary's pieces, each a thin edge around the pure core in
//! `vbridge-workflows`: the HTTP receiver, the event store, the outbox relay,
//! the Temporal worker, the sandbox ATS, and the dev stack.

pub mod app;
pub mod bench;
pub mod chain;
pub mod client;
pub mod config;
pub mod dev;
pub mod devserver;
pub mod intake;
pub mod metrics;
pub mod receiver;
pub mod relay;
pub mod sandbox;
pub mod signature;
pub mod simulate;
pub mod store;
pub mod temporal;
pub mod timeline;

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
