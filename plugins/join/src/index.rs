//! The table side of a stream–table join: its rows, and where each key's
//! rows are.

use arrow_row::{RowConverter, Rows, SortField};
use rustc_hash::FxHashMap as HashMap;
use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::Int64Type;
use weir_plugin_sdk::arrow_array::Int64Array;
use weir_plugin_sdk::prelude::*;

/// Where a key's table rows are: a span of [`Index::rows`].
type Span = (u32, u32);

/// Key → span: one int64 key by value (the common `id` case, without
/// row-encoding every probe), any other keys row-encoded.
enum Lookup {
    Int(HashMap<i64, Span>),
    Rows(RowConverter, HashMap<Box<[u8]>, Span>),
}

/// A stream batch's keys, ready to look up.
pub(crate) enum Probe<'a> {
    Int(&'a Int64Array),
    Rows(Rows, &'a [ArrayRef]),
}

/// The table once complete: its rows, and where each key's rows are.
pub(crate) struct Index {
    pub(crate) table: RecordBatch,
    lookup: Lookup,
    /// Table row numbers grouped by key, in table order within a key.
    rows: Vec<u32>,
    /// Some key has more than one row (the output may have more rows than
    /// the stream's batch).
    pub(crate) fans_out: bool,
}

/// Groups `keys` (row, key) into spans of a row array, rows in order
/// within a key; and whether a key has several rows.
fn spans<K: std::hash::Hash + Eq + Clone>(keys: &[(u32, K)]) -> (HashMap<K, Span>, Vec<u32>, bool) {
    let mut spans: HashMap<K, Span> = HashMap::default();
    for (_, k) in keys {
        spans.entry(k.clone()).or_default().1 += 1;
    }
    let mut start = 0;
    for span in spans.values_mut() {
        span.0 = start;
        start += span.1;
    }
    let fans_out = spans.values().any(|&(_, n)| n > 1);
    // Each span's start serves as its cursor while filling, then is put back.
    let mut rows = vec![0; keys.len()];
    for (row, k) in keys {
        if let Some(span) = spans.get_mut(k) {
            rows[span.0 as usize] = *row;
            span.0 += 1;
        }
    }
    for span in spans.values_mut() {
        span.0 -= span.1;
    }
    (spans, rows, fans_out)
}

impl Index {
    pub(crate) fn build(table: RecordBatch, keys: &[usize]) -> Result<Index> {
        let columns: Vec<ArrayRef> = keys.iter().map(|&k| table.column(k).clone()).collect();
        let valid = |i: usize| columns.iter().all(|c| c.is_valid(i));
        let n = table.num_rows();
        let (lookup, rows, fans_out) = match columns.as_slice() {
            [one] if one.data_type() == &DataType::Int64 => {
                let ints = one.as_primitive::<Int64Type>();
                let keyed: Vec<(u32, i64)> = (0..n)
                    .filter(|&i| valid(i))
                    .map(|i| (i as u32, ints.value(i)))
                    .collect();
                let (map, rows, fans_out) = spans(&keyed);
                (Lookup::Int(map), rows, fans_out)
            }
            _ => {
                let fields = columns
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect();
                let converter = RowConverter::new(fields)?;
                let encoded = converter.convert_columns(&columns)?;
                let keyed: Vec<(u32, Box<[u8]>)> = (0..n)
                    .filter(|&i| valid(i))
                    .map(|i| (i as u32, encoded.row(i).as_ref().into()))
                    .collect();
                let (map, rows, fans_out) = spans(&keyed);
                (Lookup::Rows(converter, map), rows, fans_out)
            }
        };
        Ok(Index {
            table,
            lookup,
            rows,
            fans_out,
        })
    }

    /// Distinct keys in the table.
    pub(crate) fn keys(&self) -> usize {
        match &self.lookup {
            Lookup::Int(map) => map.len(),
            Lookup::Rows(_, map) => map.len(),
        }
    }

    /// A stream batch's key `columns`, ready for [`matches`](Self::matches).
    pub(crate) fn probe<'a>(&self, columns: &'a [ArrayRef]) -> Result<Probe<'a>> {
        Ok(match &self.lookup {
            Lookup::Int(_) => Probe::Int(
                columns
                    .first()
                    .and_then(|c| c.as_primitive_opt::<Int64Type>())
                    .ok_or_else(|| {
                        Error::msg("join: the stream's key is no longer int64, the table's is")
                    })?,
            ),
            Lookup::Rows(converter, _) => Probe::Rows(converter.convert_columns(columns)?, columns),
        })
    }

    /// The table rows matching the stream's row `row` (a null key: none).
    pub(crate) fn matches(&self, probe: &Probe<'_>, row: usize) -> &[u32] {
        let span = match (&self.lookup, probe) {
            (Lookup::Int(map), Probe::Int(keys)) if keys.is_valid(row) => map.get(&keys.value(row)),
            (Lookup::Rows(_, map), Probe::Rows(rows, columns))
                if columns.iter().all(|c| c.is_valid(row)) =>
            {
                map.get(rows.row(row).as_ref())
            }
            _ => None,
        };
        span.map_or(&[], |&(start, len)| {
            &self.rows[start as usize..(start + len) as usize]
        })
    }
}
