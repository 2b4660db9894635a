//! weir's sources and sinks: where batches come from and where they go.
//! One file per kind, registered in one place each
//! ([`source::SourceConfig`], [`sink::SinkConfig`]).
//!
//! Each kind owns its config type (the `[sources.NAME]` / `[sinks.NAME]`
//! table) and resolves relative paths through the context it is built
//! with. The kinds that pull in a client library are cargo features, on by
//! default: `postgres`, `sqlite`, `http`, `kafka`. Without one, its `type` is not a
//! known kind.

#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
pub use kafka::membership::{Assignment, Membership};
pub mod sink;
pub mod source;

pub use weir_core::{Error, Result};
