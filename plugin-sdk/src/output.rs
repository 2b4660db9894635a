use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};

use crate::convert::{batch_to_wit, named_column_to_wit};
use crate::wit::weir::plugin::types as wit;
use crate::{Error, Result};

/// One output batch of a transform, and the output port it leaves by
/// (the first, unless [`Output::to`] says otherwise).
///
/// Most transforms describe their output relative to the input —
/// [`Output::pass`], [`Output::keep`], [`Output::with_column`],
/// [`Output::drop_column`] — so only what changed crosses back to the host.
/// A transform that builds new rows returns [`Output::batch`].
#[derive(Debug, Clone)]
pub struct Output {
    port: usize,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// The input, with rows selected and columns added, replaced or dropped.
    Derived {
        /// Rows to keep; `None` keeps all.
        keep: Option<Keep>,
        /// Columns to add (new name) or replace (existing name), each as
        /// long as the input.
        columns: Vec<(String, ArrayRef)>,
        /// Names of input columns to remove.
        drop: Vec<String>,
        /// Columns to rename: (old name, new name).
        rename: Vec<(String, String)>,
        /// The final columns, in order (after the other changes).
        project: Option<Vec<String>>,
    },
    /// A whole new batch.
    Batch(RecordBatch),
}

/// Which rows of the input to keep.
#[derive(Debug, Clone)]
enum Keep {
    /// Keep rows where the mask is true (null counts as false).
    Mask(BooleanArray),
    /// Keep these row indexes (strictly increasing).
    Indices(Vec<u32>),
}

impl Output {
    /// The input unchanged.
    pub fn pass() -> Self {
        Output {
            port: 0,
            body: Body::Derived {
                keep: None,
                columns: Vec::new(),
                drop: Vec::new(),
                rename: Vec::new(),
                project: None,
            },
        }
    }

    /// The input rows where `mask` is true; null counts as false.
    pub fn keep(mask: &BooleanArray) -> Self {
        Output::pass().select(Keep::Mask(mask.clone()))
    }

    /// The input rows at `indices` (strictly increasing).
    pub fn keep_indices(indices: Vec<u32>) -> Self {
        Output::pass().select(Keep::Indices(indices))
    }

    /// A whole new batch.
    pub fn batch(batch: RecordBatch) -> Self {
        Output {
            port: 0,
            body: Body::Batch(batch),
        }
    }

    /// Sends this output through output port `port`: an index into the
    /// outputs [`Transform::ports`](crate::Transform::ports) declares.
    pub fn to(mut self, port: usize) -> Self {
        self.port = port;
        self
    }

    fn select(mut self, selection: Keep) -> Self {
        if let Body::Derived { keep, .. } = &mut self.body {
            *keep = Some(selection);
        }
        self
    }

    /// Adds a column called `name`, or replaces the input column of that
    /// name in place. `array` has one value per input row.
    pub fn with_column(mut self, name: impl Into<String>, array: ArrayRef) -> Self {
        if let Body::Derived { columns, .. } = &mut self.body {
            columns.push((name.into(), array));
        }
        self
    }

    /// Renames the input column `from` to `to`, keeping its data and place.
    pub fn rename_column(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        if let Body::Derived { rename, .. } = &mut self.body {
            rename.push((from.into(), to.into()));
        }
        self
    }

    /// Keeps exactly these columns, in this order (applied after drops,
    /// renames and added columns). No data crosses the boundary.
    pub fn project(mut self, names: Vec<String>) -> Self {
        if let Body::Derived { project, .. } = &mut self.body {
            *project = Some(names);
        }
        self
    }

    /// Removes the input column called `name`.
    pub fn drop_column(mut self, name: impl Into<String>) -> Self {
        if let Body::Derived { drop, .. } = &mut self.body {
            drop.push(name.into());
        }
        self
    }

    pub(crate) fn into_wit(self) -> Result<wit::Output> {
        let port = u32::try_from(self.port).map_err(|_| Error::msg("no such output port"))?;
        let data = match self.body {
            Body::Derived {
                keep,
                columns,
                drop,
                rename,
                project,
            } => {
                let selection = keep.map(|k| match k {
                    Keep::Indices(i) => wit::Selection::Indices(i),
                    Keep::Mask(mask) => wit::Selection::Mask(mask_bits(&mask)),
                });
                let columns = columns
                    .iter()
                    .map(|(name, array)| named_column_to_wit(name, array))
                    .collect::<Result<Vec<_>>>()?;
                wit::OutputData::Derived(wit::Derived {
                    selection,
                    columns,
                    drop,
                    rename,
                    project,
                })
            }
            Body::Batch(batch) => wit::OutputData::Batch(batch_to_wit(&batch)?),
        };
        Ok(wit::Output { port, data })
    }

    pub(crate) fn batch_into_wit(batch: RecordBatch) -> Result<wit::Output> {
        if batch.num_columns() == 0 {
            return Err(Error::msg("an output batch needs at least one column"));
        }
        Ok(wit::Output {
            port: 0,
            data: wit::OutputData::Batch(batch_to_wit(&batch)?),
        })
    }
}

/// The mask's true-and-valid bits, as an offset-0 bitmap.
fn mask_bits(mask: &BooleanArray) -> Vec<u8> {
    let values = mask.values();
    match mask.nulls().filter(|n| n.null_count() > 0) {
        Some(nulls) => (values & nulls.inner()).sliced().as_slice().to_vec(),
        None => values.sliced().as_slice().to_vec(),
    }
}
