//! The 0.2 `batch.column` import, lowered straight from the batch's Arrow
//! buffers into the plugin's memory: one copy per buffer.
//!
//! The generated bindings lower a `list<u8>` only from an owned `Vec<u8>`,
//! so serving `column` through them copies every buffer twice (Arrow →
//! `Vec`, `Vec` → guest). Here the records are declared by hand, with
//! each buffer as a `bytes::Bytes` that shares the Arrow buffer (no copy),
//! and the linker's entry for `[method]batch.column` is replaced by one
//! returning them. wasmtime type-checks these records against the WIT
//! when a component is linked, so a drift from `wit/0.2` fails every
//! 0.2 plugin's instantiation, loudly, in the tests.

use bytes::Bytes;
use wasmtime::component::{ComponentType, Linker, Lower, Resource};
use wasmtime::StoreContextMut;

use crate::state::{BatchRep, HostState};

/// `record column-data` of `wit/0.2`.
#[derive(ComponentType, Lower)]
#[component(record)]
struct ColumnData {
    nodes: Vec<ArrayNode>,
    root: u32,
}

/// `record array-node` of `wit/0.2`.
#[derive(ComponentType, Lower)]
#[component(record)]
struct ArrayNode {
    length: u32,
    #[component(name = "null-count")]
    null_count: u32,
    buffers: Vec<Bytes>,
    children: Vec<u32>,
    dictionary: Option<u32>,
}

/// Replaces the generated `[method]batch.column` of `weir:plugin@0.2.0`
/// in `linker` with the one-copy version.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    shadowing(linker, |linker| {
        linker.instance("weir:plugin/types@0.2.0")?.func_wrap(
            "[method]batch.column",
            |store: StoreContextMut<'_, HostState>, (handle, index): (Resource<BatchRep>, u32)| {
                Ok((column(store.data().batch(&handle)?, index),))
            },
        )
    })
}

/// Runs `define` with `linker` allowed to replace what the generated
/// bindings defined (and only then: elsewhere a name defined twice is a
/// mistake).
pub(crate) fn shadowing(
    linker: &mut Linker<HostState>,
    define: impl FnOnce(&mut Linker<HostState>) -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = define(linker);
    linker.allow_shadowing(false);
    result
}

fn column(rep: &BatchRep, index: u32) -> Result<ColumnData, String> {
    let data = column_data(rep, index)?;
    Ok(ColumnData {
        nodes: data
            .nodes
            .into_iter()
            .map(|n| ArrayNode {
                length: n.length,
                null_count: n.null_count,
                buffers: n.buffers.into_iter().map(Bytes::from_owner).collect(),
                children: n.children,
                dictionary: n.dictionary,
            })
            .collect(),
        root: data.root,
    })
}

/// Column `index` of the lent rows as array nodes sharing its buffers
/// (filtered first when a selection is pending: only the columns a plugin
/// fetches pay for it), or the error the plugin is told.
pub(crate) fn column_data(
    rep: &BatchRep,
    index: u32,
) -> Result<weir_wit_arrow::ColumnData, String> {
    let array = rep.column(index)?;
    weir_wit_arrow::array_to_wit(&array.to_data()).map_err(|e| e.to_string())
}
