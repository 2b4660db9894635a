use std::fmt;

/// A plugin error: a message the host reports with the node's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(message.to_string())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::msg(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::msg(e)
    }
}

impl From<String> for Error {
    fn from(e: String) -> Self {
        Error(e)
    }
}

impl From<&str> for Error {
    fn from(e: &str) -> Self {
        Error(e.to_string())
    }
}

/// Returns early with an [`Error`] made by `format!`:
/// `bail!("column {name:?} is missing")`.
#[macro_export]
macro_rules! bail {
    ($($message:tt)+) => {
        return ::std::result::Result::Err($crate::Error::msg(::std::format!($($message)+)))
    };
}

/// Returns early with an [`Error`] unless `condition` holds:
/// `ensure!(rate > 0.0, "rate must be positive, got {rate}")`.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            $crate::bail!($($message)+);
        }
    };
}
