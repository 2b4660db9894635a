//! Structured logging through the host.
//!
//! Events land in the host's `tracing` output under the node's name, e.g.
//! `weir::plugin{node="dedupe"}: dropped duplicates count=12`.

use crate::wit::weir::plugin::log as host;

pub use host::Level;

/// Logs `message` at `level` with key/value `fields`.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    host::log(level, message, &fields);
}

/// Logs at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message, &[]);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}

/// Logs through the host at a level, with optional `key = value` fields
/// (any `Display`) before a `;`, then a `format!` message:
///
/// ```ignore
/// info!("windows flushed");
/// info!(count = dropped; "dropped duplicate rows");
/// warn!(rows = late, total = total; "late rows dropped after {} ms", delay);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:ident, $($key:ident = $value:expr),+ ; $($message:tt)+) => {{
        let values = [$(::std::string::ToString::to_string(&$value)),+];
        let keys = [$(::std::stringify!($key)),+];
        let fields: ::std::vec::Vec<(&str, &str)> = keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        $crate::log::log($crate::log::Level::$level, &::std::format!($($message)+), &fields)
    }};
    ($level:ident, $($message:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($message)+), &[])
    };
}

/// Logs at trace level; see [`info!`](crate::info) for fields.
#[macro_export]
macro_rules! trace { ($($t:tt)+) => { $crate::__log!(Trace, $($t)+) }; }

/// Logs at debug level; see [`info!`](crate::info) for fields.
#[macro_export]
macro_rules! debug { ($($t:tt)+) => { $crate::__log!(Debug, $($t)+) }; }

/// Logs at info level: `info!("message {}", x)`, or with fields,
/// `info!(count = n, key = k; "dropped duplicates")`.
#[macro_export]
macro_rules! info { ($($t:tt)+) => { $crate::__log!(Info, $($t)+) }; }

/// Logs at warn level; see [`info!`](crate::info) for fields.
#[macro_export]
macro_rules! warn { ($($t:tt)+) => { $crate::__log!(Warn, $($t)+) }; }

/// Logs at error level; see [`info!`](crate::info) for fields.
#[macro_export]
macro_rules! error { ($($t:tt)+) => { $crate::__log!(Error, $($t)+) }; }
