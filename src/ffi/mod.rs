//! The C ABI: a thin layer that converts C arguments, calls the safe API and writes results.
//!
//! Every function goes through the helpers of [`boundary`], which do all pointer checks and
//! catch panics, so no panic crosses into C. No request logic lives here.
#![allow(non_camel_case_types)]

mod boundary;
mod calls;
mod client;
mod json;
mod last_call;
mod library;
mod observe;
pub(crate) mod os;
#[cfg(feature = "outbox")]
mod outbox;
mod types;
#[cfg(feature = "workflows")]
mod workflows;

pub use calls::*;
pub use client::*;
pub use json::*;
pub use library::*;
pub use observe::*;
#[cfg(feature = "outbox")]
pub use outbox::*;
pub use types::*;
#[cfg(feature = "workflows")]
pub use workflows::*;
