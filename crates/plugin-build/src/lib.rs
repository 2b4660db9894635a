//! weir's plugin toolchains: `weir plugin build` (any supported language
//! to a component implementing `weir:plugin/transform`), `weir plugin new`
//! (scaffolds), and the Rust toolchain detection the test suite's build
//! script shares.
//!
//! - [`Language`]: which language a plugin folder holds.
//! - [`toolchain`]: the Rust toolchain for `wasm32-wasip2` (rustup's
//!   target, or Debian's `-Zbuild-std` fallback). Needs nothing but std, so
//!   a build script can use it with `default-features = false`.
//! - [`build`](crate::build()) / [`componentize`] (feature `compile`, on by
//!   default): guest toolchains and componentizing, with wit-bindgen's C
//!   generator and wit-component compiled in.
//! - [`scaffold`]: `weir plugin new`.
//!
//! A leaf crate: it knows nothing of the runtime, and the runtime knows it
//! only through these functions.

mod error;
mod language;
pub mod toolchain;

#[cfg(feature = "compile")]
mod build;
#[cfg(feature = "compile")]
pub mod scaffold;

#[cfg(feature = "compile")]
pub use build::{build, build_quietly, componentize, Built};
pub use error::{Error, Result};
pub use language::Language;
