use std::cell::OnceCell;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use crate::convert::{array_from_wit, schema_ref_from_wit};
use crate::wit::weir::plugin::types as wit;
use crate::{Error, Result};

/// An input batch, owned by the host.
///
/// Columns are fetched on demand: each call to [`Batch::array`] or
/// [`Batch::column`] copies that one column into the plugin, so a plugin
/// pays only for what it reads. Fetch a column once and keep the array if
/// you need it twice.
pub struct Batch<'a> {
    inner: &'a wit::Batch,
    schema: OnceCell<SchemaRef>,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(inner: &'a wit::Batch) -> Self {
        Batch {
            inner,
            schema: OnceCell::new(),
        }
    }

    /// The batch's schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema
            .get_or_init(|| {
                // The host lifts every schema it sends from arrow-rs; one
                // this SDK can't read is a host bug, reported as a trap.
                schema_ref_from_wit(self.inner.schema()).unwrap_or_else(|e| panic!("{e}"))
            })
            .clone()
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.inner.num_rows() as usize
    }

    /// Index of the column called `name`, or an error naming the columns
    /// that exist.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        let schema = self.schema();
        schema.index_of(name).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::msg(format!(
                "no column {name:?} in the input; it has {}",
                names.join(", ")
            ))
        })
    }

    /// Column `index` as an arrow-rs array, of any Arrow type.
    pub fn array_at(&self, index: usize) -> Result<ArrayRef> {
        let schema = self.schema();
        let field = schema.fields().get(index).ok_or_else(|| {
            Error::msg(format!(
                "column index {index} out of range: the batch has {} columns",
                schema.fields().len()
            ))
        })?;
        let data = self.inner.column(index as u32).map_err(Error::from)?;
        array_from_wit(data, field.data_type())
            .map_err(|e| Error::msg(format!("column {:?}: {e}", field.name())))
    }

    /// The column called `name` as an arrow-rs array.
    pub fn array(&self, name: &str) -> Result<ArrayRef> {
        self.array_at(self.index_of(name)?)
    }

    /// The column called `name`, or — when no column is — the struct
    /// field `name` spells as a path (`customer.country`), null wherever a
    /// struct above it is. Only the top-level column crosses the boundary.
    pub fn array_by_path(&self, name: &str) -> Result<ArrayRef> {
        match name.split_once('.') {
            Some((top, rest)) if self.index_of(name).is_err() => {
                let mut array = self.array(top)?;
                for part in rest.split('.') {
                    array = crate::path::child(&array, part)
                        .map_err(|e| Error::msg(format!("{name:?}: {e}")))?;
                }
                Ok(array)
            }
            _ => self.array(name),
        }
    }

    /// The column called `name` as a concrete array type, e.g.
    /// `batch.column::<Float64Array>("amount")?`.
    pub fn column<A: Array + Clone + 'static>(&self, name: &str) -> Result<A> {
        let array = self.array(name)?;
        array.as_any().downcast_ref::<A>().cloned().ok_or_else(|| {
            Error::msg(format!(
                "column {name:?} is {}, not the array type the plugin asked for",
                array.data_type()
            ))
        })
    }

    /// The whole batch as an arrow-rs record batch (every column crosses the
    /// boundary; prefer [`Batch::array`] when you read only some).
    pub fn record_batch(&self) -> Result<RecordBatch> {
        let schema = self.schema();
        let columns = (0..schema.fields().len())
            .map(|i| self.array_at(i))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// The event-time watermark travelling with this batch, in microseconds
    /// since the UNIX epoch.
    pub fn watermark(&self) -> Option<i64> {
        self.inner.watermark()
    }

    /// Whether this empty batch marks the end of its input port: its
    /// producers sent all of their data. A node with several input ports
    /// gets one per port as it ends (a join learns that its table is
    /// complete); a node with one input port gets
    /// [`Transform::finish`](crate::Transform::finish) instead. A refreshed
    /// table (`refresh_ms`) sends each new version after that end and ends
    /// the port again: the new version replaces the old.
    pub fn port_ended(&self) -> bool {
        self.inner.port_ended()
    }
}
