//! The one integration-test binary. Every test runs against real parts: the
//! Temporal CLI's dev server, SQLite, real HTTP, and the sandbox ATS.

mod ats_apis;
mod audit;
mod audit_key;
mod batch;
mod connectors;
mod console;
mod console_login;
mod controls;
mod deploy;
mod erasure;
mod evidence;
mod greenhouse;
mod hardening;
mod harness;
mod hiring;
mod idp;
mod observability;
mod oidc;
mod openapi;
mod providers;
mod replay;
mod retention;
mod reversal;
mod review;
mod spine;
mod store;
mod temporal_ui;
mod workflow;
