//! The host side of `weir:plugin@0.2.0`'s imports: the `batch` resource
//! (every Arrow type, through the shared `weir-wit-arrow` mapping), `log`
//! (the same budget as 0.1's), the `state` store and `compute`.

use arrow::datatypes::{Field, Schema, SchemaRef};
use wasmtime::component::Resource;

use crate::bindings::log as log_v0_1;
use crate::bindings::v0_2::{compute, log, map, state, types};
use crate::state::{BatchRep, HostState};

/// The schema of `batch` as the 0.2 bindings carry it.
pub(crate) fn schema_of(schema: &SchemaRef) -> types::Schema {
    map::schema_to_wit(weir_wit_arrow::schema_to_wit(schema))
}

impl types::Host for HostState {}

impl types::HostBatch for HostState {
    fn schema(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<types::Schema> {
        Ok(schema_of(&self.batch(&handle)?.rows().schema()))
    }

    fn num_rows(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<u32> {
        Ok(u32::try_from(self.batch(&handle)?.rows().num_rows()).unwrap_or(u32::MAX))
    }

    /// Not reached: [`crate::lend`] serves `column` in one copy instead;
    /// the generated trait still asks for it.
    fn column(
        &mut self,
        handle: Resource<BatchRep>,
        index: u32,
    ) -> wasmtime::Result<Result<types::ColumnData, String>> {
        let rep = self.batch(&handle)?;
        Ok(crate::lend::column_data(rep, index).map(map::column_to_wit))
    }

    fn to_ipc(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<Vec<u8>> {
        crate::state::ipc_bytes(&self.batch(&handle)?.whole()?)
    }

    fn watermark(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<Option<i64>> {
        Ok(self.batch(&handle)?.watermark())
    }

    fn port_ended(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<bool> {
        Ok(self.batch(&handle)?.port_ended())
    }

    fn drop(&mut self, handle: Resource<BatchRep>) -> wasmtime::Result<()> {
        // Batches are only ever lent as borrows; see the 0.1 resource.
        let _ = handle;
        Ok(())
    }
}

impl log::Host for HostState {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => log_v0_1::Level::Trace,
            log::Level::Debug => log_v0_1::Level::Debug,
            log::Level::Info => log_v0_1::Level::Info,
            log::Level::Warn => log_v0_1::Level::Warn,
            log::Level::Error => log_v0_1::Level::Error,
        };
        log_v0_1::Host::log(self, level, message, fields)
    }
}

/// A run of the state store that can't be read (a disk error, a damaged
/// file): the call traps, naming it; the batch's failure policy applies.
fn state_unreadable(e: String) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the node's state store can't be read: {e}"))
}

impl state::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        self.kv.get(&key).map_err(state_unreadable)
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(self.kv.put(key, value))
    }

    fn put_with_ttl(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(self.kv.put_with_ttl(key, value, ttl_ms))
    }

    fn delete(&mut self, key: Vec<u8>) -> wasmtime::Result<()> {
        self.kv.delete(&key).map_err(wasmtime::Error::msg)
    }

    fn scan(&mut self, start: Vec<u8>, limit: u32) -> wasmtime::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.kv.scan(&start, limit).map_err(state_unreadable)
    }

    fn insert_new(
        &mut self,
        keys: Vec<u8>,
        ends: Vec<u32>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.kv.insert_new(&keys, &ends, ttl_ms))
    }
}

impl compute::Host for HostState {
    fn matches(
        &mut self,
        handle: Resource<BatchRep>,
        predicate: String,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let rep = self.batch(&handle)?;
        Ok(crate::compute::matches(rep.rows(), &predicate))
    }

    fn evaluate(
        &mut self,
        handle: Resource<BatchRep>,
        name: String,
        expression: String,
    ) -> wasmtime::Result<Result<types::Column, String>> {
        let rep = self.batch(&handle)?;
        Ok(
            crate::compute::evaluate(rep.rows(), &expression).and_then(|array| {
                let field = Field::new(name, array.data_type().clone(), true);
                let data =
                    weir_wit_arrow::array_to_wit(&array.to_data()).map_err(|e| e.to_string())?;
                Ok(types::Column {
                    field: map::schema_to_wit(weir_wit_arrow::schema_to_wit(&Schema::new(vec![
                        field,
                    ]))),
                    data: map::column_to_wit(data),
                })
            }),
        )
    }
}
