//! Rows as they travel between nodes: a batch and, when a plugin kept
//! only some of its rows, that selection — not applied yet.
//!
//! A filter on a wide batch reads one column, but applying its selection
//! to the batch copies all of them. [`Rows`] defers that copy to whoever
//! needs the rows: the next plugin filters only the columns it fetches,
//! a chain of selections composes into one (bit operations, no copy), and
//! a sink materializes the batch once, right before writing it. Clones
//! share the materialized batch and the prepared filter, so a fan-out to
//! several consumers filters each column at most once.

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatchOptions};
use arrow::buffer::{BooleanBuffer, MutableBuffer};
use arrow::compute::{FilterBuilder, FilterPredicate};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::bit_util;

/// A batch, and the rows of it that are kept (all of them when no
/// selection is pending).
#[derive(Clone)]
pub struct Rows {
    base: RecordBatch,
    keep: Option<Arc<Keep>>,
}

/// A pending selection over a base batch's rows.
struct Keep {
    mask: BooleanBuffer,
    count: usize,
    /// Built on first use (preparing the filter scans the mask once);
    /// shared with every [`Rows`] over the same rows.
    predicate: Arc<OnceLock<FilterPredicate>>,
    /// The selection applied to every column, once someone asked.
    whole: OnceLock<RecordBatch>,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("columns", &self.base.num_columns())
            .field("base_rows", &self.base.num_rows())
            .field("rows", &self.num_rows())
            .finish()
    }
}

impl From<RecordBatch> for Rows {
    fn from(base: RecordBatch) -> Self {
        Rows { base, keep: None }
    }
}

impl Rows {
    /// The rows of `base` whose bit in `mask` is set (`mask` has one bit
    /// per row of `base`).
    pub fn selected(base: RecordBatch, mask: BooleanBuffer) -> Self {
        debug_assert_eq!(mask.len(), base.num_rows());
        let count = mask.count_set_bits();
        if count == base.num_rows() {
            return Rows::from(base);
        }
        Rows {
            base,
            keep: Some(Arc::new(Keep {
                mask,
                count,
                predicate: Arc::default(),
                whole: OnceLock::new(),
            })),
        }
    }

    /// How many rows are kept.
    pub fn num_rows(&self) -> usize {
        match &self.keep {
            Some(keep) => keep.count,
            None => self.base.num_rows(),
        }
    }

    /// The schema (a selection doesn't change it).
    pub fn schema(&self) -> SchemaRef {
        self.base.schema()
    }

    /// How many columns.
    pub fn num_columns(&self) -> usize {
        self.base.num_columns()
    }

    /// Whether a selection is still pending (the rows are not a batch of
    /// their own yet).
    pub fn is_deferred(&self) -> bool {
        self.keep.is_some()
    }

    /// Column `i` of the kept rows (`None` past the last column): only
    /// this column is filtered.
    pub fn column(&self, i: usize) -> Option<Result<ArrayRef, ArrowError>> {
        let column = self.base.columns().get(i)?;
        Some(match &self.keep {
            None => Ok(column.clone()),
            Some(keep) => match keep.whole.get() {
                Some(whole) => Ok(whole.column(i).clone()),
                None => keep.predicate().filter(column.as_ref()),
            },
        })
    }

    /// The nulls column `i` has among the kept rows.
    pub fn null_count(&self, i: usize) -> usize {
        let column = self.base.column(i);
        match (&self.keep, column.logical_nulls()) {
            (_, None) => 0,
            (None, Some(nulls)) => nulls.null_count(),
            (Some(keep), Some(nulls)) => keep.count - (&keep.mask & nulls.inner()).count_set_bits(),
        }
    }

    /// The kept rows as a batch of their own: the selection applied to
    /// every column, once (later calls and clones share the result).
    pub fn to_batch(&self) -> Result<RecordBatch, ArrowError> {
        let Some(keep) = &self.keep else {
            return Ok(self.base.clone());
        };
        if let Some(whole) = keep.whole.get() {
            return Ok(whole.clone());
        }
        let predicate = keep.predicate();
        let columns = self
            .base
            .columns()
            .iter()
            .map(|c| predicate.filter(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let whole = RecordBatch::try_new_with_options(
            self.base.schema(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(keep.count)),
        )?;
        Ok(keep.whole.get_or_init(|| whole).clone())
    }

    /// The batch the selection (if any) applies to.
    pub fn base(&self) -> &RecordBatch {
        &self.base
    }

    /// The pending selection over [`base`](Self::base)'s rows, if any.
    pub fn mask(&self) -> Option<&BooleanBuffer> {
        self.keep.as_ref().map(|k| &k.mask)
    }

    /// The same selection over `base`, a batch with the same rows as this
    /// one's base (other columns: dropped, renamed, re-stamped).
    pub(crate) fn with_base(&self, base: RecordBatch) -> Rows {
        debug_assert_eq!(base.num_rows(), self.base.num_rows());
        Rows {
            base,
            keep: self.keep.as_ref().map(|k| {
                Arc::new(Keep {
                    mask: k.mask.clone(),
                    count: k.count,
                    predicate: k.predicate.clone(),
                    whole: OnceLock::new(),
                })
            }),
        }
    }

    /// Keeps, of these rows, those whose bit in `mask` is set (one bit per
    /// kept row): composed with the pending selection, nothing copied.
    pub fn keep(self, mask: BooleanBuffer) -> Rows {
        debug_assert_eq!(mask.len(), self.num_rows());
        match &self.keep {
            None => Rows::selected(self.base, mask),
            Some(_) if mask.count_set_bits() == mask.len() => self,
            Some(outer) => {
                let composed = compose(&outer.mask, &mask);
                Rows::selected(self.base, composed)
            }
        }
    }
}

impl Keep {
    fn predicate(&self) -> &FilterPredicate {
        self.predicate.get_or_init(|| {
            let mask = BooleanArray::new(self.mask.clone(), None);
            // Preparing costs a pass over the mask; it pays off from the
            // second column filtered on.
            FilterBuilder::new(&mask).optimize().build()
        })
    }
}

/// The selection `inner` (one bit per set bit of `outer`) expressed over
/// `outer`'s rows.
fn compose(outer: &BooleanBuffer, inner: &BooleanBuffer) -> BooleanBuffer {
    let mut bits = MutableBuffer::from_len_zeroed(outer.len().div_ceil(8));
    let out = bits.as_slice_mut();
    for (j, row) in outer.set_indices().enumerate() {
        if inner.value(j) {
            bit_util::set_bit(out, row);
        }
    }
    BooleanBuffer::new(bits.into(), 0, outer.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::compute::filter_record_batch;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from_iter(
                    (0..20).map(|i| (i % 7 != 3).then_some(i)),
                )) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from_iter_values(
                    (0..20).map(|i| format!("n{i}")),
                )) as _,
            ),
        ])
        .unwrap()
    }

    fn mask(bits: impl IntoIterator<Item = bool>) -> BooleanBuffer {
        BooleanBuffer::from_iter(bits)
    }

    #[test]
    fn a_deferred_selection_materializes_as_the_filter_kernel_would() {
        let keep = mask((0..20).map(|i| i % 3 != 0));
        let rows = Rows::selected(batch(), keep.clone());
        let expected = filter_record_batch(&batch(), &BooleanArray::new(keep, None)).unwrap();
        assert!(rows.is_deferred());
        assert_eq!(rows.num_rows(), expected.num_rows());
        assert_eq!(rows.to_batch().unwrap(), expected);
        for i in 0..2 {
            assert_eq!(&rows.column(i).unwrap().unwrap(), expected.column(i));
            assert_eq!(rows.null_count(i), expected.column(i).null_count());
        }
        assert!(rows.column(2).is_none());
    }

    #[test]
    fn two_selections_compose_into_the_rows_both_filters_keep() {
        let first = mask((0..20).map(|i| i % 2 == 0));
        let rows = Rows::selected(batch(), first.clone());
        let once = filter_record_batch(&batch(), &BooleanArray::new(first, None)).unwrap();
        let second = mask((0..once.num_rows()).map(|j| j % 3 != 1));
        let twice = filter_record_batch(&once, &BooleanArray::new(second.clone(), None)).unwrap();
        let rows = rows.keep(second);
        assert_eq!(rows.num_rows(), twice.num_rows());
        assert_eq!(rows.to_batch().unwrap(), twice);
    }

    #[test]
    fn keeping_every_row_defers_nothing() {
        let rows = Rows::selected(batch(), mask((0..20).map(|_| true)));
        assert!(!rows.is_deferred());
        let rows = Rows::selected(batch(), mask((0..20).map(|i| i < 5)));
        let rows = rows.keep(mask((0..5).map(|_| true)));
        assert_eq!(rows.num_rows(), 5);
        assert_eq!(rows.to_batch().unwrap(), batch().slice(0, 5));
    }

    #[test]
    fn keeping_no_row_is_an_empty_batch_of_the_same_schema() {
        let rows = Rows::selected(batch(), mask((0..20).map(|_| false)));
        assert_eq!(rows.num_rows(), 0);
        let empty = rows.to_batch().unwrap();
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.schema(), batch().schema());
    }
}
