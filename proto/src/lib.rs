//! Wire types that cross the Temporal boundary, generated from
//! `proto/vbridge/v1/bridge.proto` by prost.

#![allow(clippy::all)]

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/vbridge.v1.rs"));
}

pub use v1::*;
