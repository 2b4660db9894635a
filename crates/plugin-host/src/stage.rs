//! The 0.2 `stage.column` import: a returned column's buffers copied
//! straight out of the plugin's memory, once.
//!
//! A column in an `output` record crosses twice: the guest copies its
//! Arrow buffers into the lists its bindings return, and the host's
//! generated lifting copies them out again (byte by byte into a `Vec`).
//! Here the records are declared by hand with each buffer as a
//! [`WasmList`] — a place in the guest's memory, bounds-checked but not
//! read — and each is copied once into a 64-byte aligned Arrow buffer
//! (recycled memory from a megabyte on: [`crate::pool`]).
//! The linker's entry for `column` is replaced by this one, as
//! [`crate::lend`] does for the other direction; wasmtime type-checks the
//! records against `wit/0.2` when a component links.
//!
//! Staged columns live until the call that staged them returns: the
//! outputs it returns name them by number (a `column-data` with no
//! nodes), and [`Staged::take`] hands them to the output's assembly.

use arrow::buffer::Buffer;
use wasmtime::component::{ComponentType, Lift, Linker, WasmList};
use wasmtime::StoreContextMut;

use crate::bindings::v0_2::{map, stage, types};
use crate::state::HostState;

/// `record column-data` of `wit/0.2`, as lifted in place.
#[derive(ComponentType, Lift)]
#[component(record)]
struct ColumnData {
    nodes: Vec<ArrayNode>,
    root: u32,
}

/// `record array-node` of `wit/0.2`, its buffers left in guest memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct ArrayNode {
    length: u32,
    #[component(name = "null-count")]
    null_count: u32,
    buffers: Vec<WasmList<u8>>,
    children: Vec<u32>,
    dictionary: Option<u32>,
}

/// The columns staged during one call, and the bytes they hold.
pub(crate) struct Staged {
    columns: Vec<weir_wit_arrow::ColumnData>,
    bytes: usize,
    /// The most one call may stage: four times the node's memory limit.
    /// A plugin's outputs all live in its memory when it returns them,
    /// but one array sent to several ports is staged once per port; a
    /// plugin staging the same buffer over and over must still not grow
    /// the host without bound.
    limit: usize,
}

impl Staged {
    pub(crate) fn new(limit: usize) -> Self {
        Staged {
            columns: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// Adds `column`, or says why not.
    fn push(&mut self, column: weir_wit_arrow::ColumnData) -> Result<u32, String> {
        let bytes = column
            .nodes
            .iter()
            .flat_map(|n| &n.buffers)
            .map(Buffer::len)
            .sum();
        self.admit(bytes)?;
        let number = u32::try_from(self.columns.len())
            .map_err(|_| "more than 2^32 columns staged in one call".to_string())?;
        self.bytes += bytes;
        self.columns.push(column);
        Ok(number)
    }

    fn admit(&self, bytes: usize) -> Result<(), String> {
        if self.bytes.saturating_add(bytes) > self.limit {
            return Err(format!(
                "staging {bytes} more bytes passes the {} bytes one call may stage (four \
                 times the node's memory limit; {} staged already)",
                self.limit, self.bytes
            ));
        }
        Ok(())
    }

    /// This call's columns, leaving none: what its outputs may name.
    pub(crate) fn take(&mut self) -> StagedColumns {
        self.bytes = 0;
        StagedColumns(std::mem::take(&mut self.columns))
    }

    /// Forgets this call's columns (a failed call's, or before a call).
    pub(crate) fn clear(&mut self) {
        self.take();
    }
}

/// The columns one call staged, by number.
#[derive(Default)]
pub struct StagedColumns(Vec<weir_wit_arrow::ColumnData>);

impl StagedColumns {
    /// Column `number`'s arrays (shared buffers: a column named twice
    /// costs nothing more).
    pub(crate) fn get(&self, number: u32) -> Result<weir_wit_arrow::ColumnData, String> {
        self.0.get(number as usize).cloned().ok_or_else(|| {
            format!(
                "a returned column names staged column {number}, but the call staged {}",
                self.0.len()
            )
        })
    }
}

/// Replaces the generated `stage.column` of `weir:plugin@0.2.0` in
/// `linker` with the one-copy version.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    crate::lend::shadowing(linker, |linker| {
        linker.instance("weir:plugin/stage@0.2.0")?.func_wrap(
            "column",
            |mut store: StoreContextMut<'_, HostState>, (data,): (ColumnData,)| {
                let copied = copy_out(&mut store, data);
                Ok((copied.and_then(|column| store.data_mut().staged.push(column)),))
            },
        )
    })
}

/// `data`'s buffers copied out of the guest's memory into Arrow buffers;
/// refused before copying when they would pass the call's limit.
fn copy_out(
    store: &mut StoreContextMut<'_, HostState>,
    data: ColumnData,
) -> Result<weir_wit_arrow::ColumnData, String> {
    let bytes: usize = data
        .nodes
        .iter()
        .flat_map(|n| &n.buffers)
        .map(WasmList::len)
        .fold(0, usize::saturating_add);
    store.data().staged.admit(bytes)?;
    let nodes = data
        .nodes
        .into_iter()
        .map(|n| weir_wit_arrow::ArrayNode {
            length: n.length,
            null_count: n.null_count,
            buffers: n
                .buffers
                .iter()
                .map(|b| crate::pool::copy(b.as_le_slice(&*store)))
                .collect(),
            children: n.children,
            dictionary: n.dictionary,
        })
        .collect();
    Ok(weir_wit_arrow::ColumnData {
        nodes,
        root: data.root,
    })
}

/// The generated trait's entry, shadowed by [`link`]'s; it stages the
/// same way from lists the bindings already copied.
impl stage::Host for HostState {
    fn column(&mut self, data: types::ColumnData) -> wasmtime::Result<Result<u32, String>> {
        Ok(self.staged.push(map::column_from_wit(data)))
    }
}
