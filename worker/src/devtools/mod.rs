//! Development tooling, apart from the production code and built only with
//! the `devtools` feature (on by default; the production image builds with
//! `--no-default-features`): the sandbox ATS, the embedded Temporal dev
//! server, the `vbridge dev` stack, `simulate`, `bench`, and the signing
//! webhook client they and the tests use.

pub mod ats_hooks;
pub mod bare;
pub mod bench;
pub mod bench_controls;
pub mod client;
pub mod devserver;
pub mod providers;
pub mod sandbox;
pub mod simulate;
pub mod stack;
