//! The Arrow ↔ WIT mapping of `weir:plugin@0.2.0`, written once for both
//! sides of the plugin boundary: the host (`weir-plugin-host`) and the
//! Rust SDK (`weir-plugin-sdk`, compiled to wasm32) build on it.
//!
//! WIT has no recursive types, so a schema is a flattened type tree
//! ([`Schema`]: field nodes naming their children by index) and a column
//! a flattened array tree ([`ColumnData`]: array nodes carrying Arrow's
//! buffers). Each side moves its bindgen-generated records into the plain
//! mirrors in [`types`] and calls:
//!
//! - [`schema_to_wit`] / [`schema_from_wit`] for schemas,
//! - [`array_to_wit`] / [`array_from_wit`] for columns.
//!
//! Decoding treats its input as untrusted: a malformed tree or array is an
//! [`Error`] naming the field, never a panic.

mod array;
mod bind;
mod offsets;
mod schema;
mod tree;
pub mod types;

pub use array::{array_from_wit, array_from_wit_unchecked, array_to_wit};
pub use schema::{field_to_wit, schema_from_wit, schema_to_wit, MAX_DEPTH};
pub use types::*;

#[doc(hidden)]
pub mod __private {
    pub use arrow_buffer::Buffer;
}

/// What is wrong with a type tree or an array tree, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Field names from the column down to where the problem is.
    path: Vec<String>,
    message: String,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Error {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// The same error, one level further out (inside field `name`).
    pub(crate) fn within(mut self, name: &str) -> Self {
        self.path.insert(0, name.to_string());
        self
    }

    /// The dotted path to the field at fault ("customer.address.zip"),
    /// empty when the problem is the column or tree itself.
    pub fn path(&self) -> String {
        self.path.join(".")
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "field {:?}: {}", self.path(), self.message)
        }
    }
}

impl std::error::Error for Error {}
