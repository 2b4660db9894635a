//! Write [weir](https://github.com/weir-rs/weir) transform plugins in Rust.
//!
//! A plugin is a type that implements [`Transform`], exported with
//! [`export!`]. weir hands it each input [`Batch`]; the plugin reads only the
//! columns it needs, as arrow-rs arrays, and answers with [`Output`]s: "keep
//! these rows", "add or replace these columns", "drop these", or whole new
//! record batches. The host assembles derived outputs from the input's
//! untouched columns, so a filter that reads one column of a wide batch pays
//! for one column.
//!
//! ```no_run
//! use weir_plugin_sdk::prelude::*;
//!
//! /// Keeps the rows whose `column` is greater than `min`.
//! struct AtLeast { column: String, min: f64 }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { column: String, min: f64 }
//!
//! impl Transform for AtLeast {
//!     type Config = Config;
//!
//!     fn new(config: Config) -> Result<Self> {
//!         Ok(AtLeast { column: config.column, min: config.min })
//!     }
//!
//!     fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
//!         let values = input.column::<Float64Array>(&self.column)?;
//!         let keep: BooleanArray = values.iter().map(|v| Some(v.is_some_and(|v| v >= self.min))).collect();
//!         Ok(vec![Output::keep(&keep)])
//!     }
//! }
//!
//! weir_plugin_sdk::export!(AtLeast);
//! ```
//!
//! Build it with `weir plugin build DIR`, which produces a WebAssembly
//! component implementing the `weir:plugin/transform` interface.
#![deny(missing_docs)]

// The generated bindings name this crate by its public path, as plugins see it.
extern crate self as weir_plugin_sdk;

mod batch;
mod convert;
mod export;
mod failure;
pub mod log;
mod output;
pub mod path;
pub mod state;
pub mod text;
pub mod time;

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_schema;
pub use batch::Batch;
pub use failure::{Error, Result};
pub use output::Output;
pub use serde;
pub use serde_json;

/// The generated bindings of `wit/plugin.wit`. Plugin authors never need
/// these; they are public only for the [`export!`] macro.
#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit/0.2",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
        default_bindings_module: "weir_plugin_sdk::wit",
        runtime_path: "weir_plugin_sdk::__private::wit_bindgen::rt",
        generate_all,
    });
}

/// `stage.column` bound a second time, with borrowed parameters: a
/// column's Arrow buffers are handed to the host as they lie in memory,
/// where the bindings above would first copy them into owned lists.
mod staging {
    wit_bindgen::generate!({
        path: "../wit/0.2",
        inline: "package weir:sdk; world staging { import weir:plugin/stage@0.2.0; }",
        world: "weir:sdk/staging",
        ownership: Borrowing { duplicate_if_necessary: true },
        generate_all,
    });

    pub(crate) use self::weir::plugin::{stage, types};
}

#[doc(hidden)]
pub mod __private {
    pub use crate::export::*;
    pub use wit_bindgen;
}

/// Everything a plugin usually needs, in one import.
pub mod prelude {
    pub use crate::{bail, debug, ensure, error, info, trace, warn};
    pub use crate::{Batch, Error, Output, Ports, Result, Transform};
    pub use arrow_array::cast::AsArray;
    pub use arrow_array::{
        Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array,
        Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch, StringArray,
        TimestampMicrosecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
    };
    pub use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
    pub use serde::Deserialize;
}

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use serde::de::DeserializeOwned;

/// A transform: what a plugin implements.
///
/// weir creates one value per pipeline node with [`Transform::new`], calls
/// [`Transform::process`] for every input batch in order, and
/// [`Transform::finish`] once at end of input.
pub trait Transform: Sized + 'static {
    /// The node's `config` table from the manifest. Use
    /// `#[serde(deny_unknown_fields)]` so a typo is an error at start-up.
    type Config: DeserializeOwned;

    /// Builds the transform from its config. An error rejects the node
    /// before any data moves.
    fn new(config: Self::Config) -> Result<Self>;

    /// The output schema for an input schema, without data, so `weir check`
    /// can verify the whole pipeline. Return an error when the input can't
    /// work (a configured column is missing or has the wrong type). The
    /// default, `Ok(None)`, means "unknown until data flows".
    fn describe(input: &Schema, config: &Self::Config) -> Result<Option<Schema>> {
        let _ = (input, config);
        Ok(None)
    }

    /// Transforms one batch into zero, one or many outputs.
    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>>;

    /// The node's named input and output ports under `config`. The
    /// default is one input, `in`, and one output, `out`. A node with
    /// several inputs is wired by name in the manifest
    /// (`inputs = { orders = "clean", customers = "customers" }`), and
    /// each further output is read as `"node.port"` downstream.
    fn ports(config: &Self::Config) -> Ports {
        let _ = config;
        Ports::default()
    }

    /// Each output port's schema (by index into [`Ports::outputs`]) given
    /// each input port's (`None`: not known before data). The default
    /// answers the first output port with [`Transform::describe`] of the
    /// first input, and leaves the others unknown.
    fn describe_ports(
        inputs: &[Option<Schema>],
        config: &Self::Config,
    ) -> Result<Vec<Option<Schema>>> {
        let first = match inputs.first() {
            Some(Some(input)) => Self::describe(input, config)?,
            _ => None,
        };
        let mut out = vec![None; Self::ports(config).outputs.len().max(1)];
        out[0] = first;
        Ok(out)
    }

    /// One batch from input port `port` (an index into [`Ports::inputs`]).
    /// The default hands it to [`Transform::process`]: a one-input
    /// transform implements only that.
    fn process_port(&mut self, port: usize, input: &Batch<'_>) -> Result<Vec<Output>> {
        let _ = port;
        self.process(input)
    }

    /// End of input: returns whatever the transform held back.
    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }

    /// State to hand to a successor version on hot reload, or `None` for a
    /// stateless transform.
    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Takes over the state from [`Transform::snapshot`] of a predecessor.
    /// The default refuses, so the successor starts fresh.
    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let _ = state;
        Err(Error::msg("this transform does not restore state"))
    }
}

/// A node's port names, in order: what [`Transform::ports`] declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// Input ports; a batch's port is its index here.
    pub inputs: Vec<String>,
    /// Output ports; [`Output::to`] takes an index here.
    pub outputs: Vec<String>,
}

impl Ports {
    /// Ports with these names.
    pub fn new(inputs: &[&str], outputs: &[&str]) -> Self {
        Ports {
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Default for Ports {
    /// One input, `in`, and one output, `out`.
    fn default() -> Self {
        Ports::new(&["in"], &["out"])
    }
}

/// Exports a [`Transform`] implementation as the plugin's entry point.
///
/// Use it exactly once per plugin crate, at the crate root.
///
/// `export!(MyPlugin, state = field)` also makes `field` (any
/// `Serialize + Deserialize` type) the state handed to a successor version
/// on hot reload: weir serializes it from the old version and restores it
/// into the new one after `new`, so nothing is lost across a swap. It
/// replaces the trait's `snapshot` / `restore`.
#[macro_export]
macro_rules! export {
    ($transform:ty) => {
        $crate::__export_with!(
            $transform,
            || $crate::__private::snapshot::<$transform>(),
            |state: &[u8]| $crate::__private::restore::<$transform>(state)
        );
    };
    ($transform:ty, state = $field:ident) => {
        $crate::__export_with!(
            $transform,
            || $crate::__private::snapshot_field::<$transform, _>(|t| &t.$field),
            |state: &[u8]| $crate::__private::restore_field::<$transform, _>(state, |t, v| t
                .$field =
                v)
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_with {
    ($transform:ty, $snapshot:expr, $restore:expr) => {
        #[doc(hidden)]
        struct __WeirPluginExport;

        impl $crate::wit::exports::weir::plugin::transform::Guest for __WeirPluginExport {
            fn ports(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                $crate::wit::weir::plugin::types::PortNames,
                ::std::string::String,
            > {
                $crate::__private::ports::<$transform>(&config)
            }
            fn init(
                config: ::std::string::String,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::init::<$transform>(&config)
            }
            fn describe(
                inputs: ::std::vec::Vec<$crate::wit::weir::plugin::types::PortSchema>,
                config: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::wit::weir::plugin::types::PortSchema>,
                ::std::string::String,
            > {
                $crate::__private::describe::<$transform>(inputs, &config)
            }
            fn process(
                port: u32,
                input: &$crate::wit::weir::plugin::types::Batch,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::wit::weir::plugin::types::Output>,
                ::std::string::String,
            > {
                $crate::__private::process::<$transform>(port, input)
            }
            fn finish() -> ::std::result::Result<
                ::std::vec::Vec<$crate::wit::weir::plugin::types::Output>,
                ::std::string::String,
            > {
                $crate::__private::finish::<$transform>()
            }
            fn snapshot() -> ::std::result::Result<
                ::std::option::Option<::std::vec::Vec<u8>>,
                ::std::string::String,
            > {
                ($snapshot)()
            }
            fn restore(
                state: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                ($restore)(&state)
            }
        }

        $crate::wit::__export_plugin!(__WeirPluginExport);
    };
}
