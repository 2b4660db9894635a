//! Before/after difference of two versions of a plugin on the same input:
//! what `--canary` reports before promoting, and what `weir dev` prints
//! when it replays recent batches through a rebuilt version.

use std::collections::HashMap;
use std::fmt;

use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::plugin::Emitted;

/// Rows shown per side when outputs differ.
const SAMPLES: usize = 3;

/// The accumulated difference between an old and a new version's outputs.
#[derive(Debug, Default)]
pub struct Diff {
    batches: usize,
    differing_batches: usize,
    rows_in: usize,
    old_rows: usize,
    new_rows: usize,
    old_schema: Option<SchemaRef>,
    new_schema: Option<SchemaRef>,
    only_old: Vec<String>,
    only_new: Vec<String>,
}

/// Each row rendered as `name=value, …`, so rows compare across schemas;
/// a row on an output port other than the first is prefixed `[port N]`.
fn rows(batches: &[Emitted]) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let mut out = Vec::new();
    for Emitted { port, batch } in batches {
        let prefix = match port {
            0 => String::new(),
            p => format!("[port {p}] "),
        };
        let batch = match batch.to_batch() {
            Ok(batch) => batch,
            Err(e) => {
                out.push(format!("{prefix}(rows unreadable: {e})"));
                continue;
            }
        };
        let schema = batch.schema();
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = schema
                .fields()
                .iter()
                .zip(&formatters)
                .map(|(field, f)| match f {
                    Some(f) => format!("{}={}", field.name(), f.value(row)),
                    None => format!("{}=?", field.name()),
                })
                .collect();
            out.push(format!("{prefix}{}", cells.join(", ")));
        }
    }
    out
}

/// The rows of `a` not matched in `b` (as multisets), in `a`'s order.
fn missing_from(a: &[String], b: &[String]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for row in b {
        *counts.entry(row.as_str()).or_default() += 1;
    }
    a.iter()
        .filter(|row| match counts.get_mut(row.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

impl Diff {
    /// Adds one input batch of `rows_in` rows and each version's outputs.
    pub fn add(&mut self, rows_in: usize, old: &[Emitted], new: &[Emitted]) {
        self.batches += 1;
        self.rows_in += rows_in;
        let count = |out: &[Emitted]| out.iter().map(|e| e.batch.num_rows()).sum::<usize>();
        self.old_rows += count(old);
        self.new_rows += count(new);
        let main = |out: &[Emitted]| out.iter().find(|e| e.port == 0).map(|e| e.batch.schema());
        if let Some(schema) = main(old) {
            self.old_schema.get_or_insert(schema);
        }
        if let Some(schema) = main(new) {
            self.new_schema.get_or_insert(schema);
        }
        let (old, new) = (rows(old), rows(new));
        let only_old = missing_from(&old, &new);
        let only_new = missing_from(&new, &old);
        if !only_old.is_empty() || !only_new.is_empty() || old != new {
            self.differing_batches += 1;
        }
        for (sample, rows) in [
            (&mut self.only_old, only_old),
            (&mut self.only_new, only_new),
        ] {
            let room = SAMPLES.saturating_sub(sample.len());
            sample.extend(rows.into_iter().take(room));
        }
    }

    /// Whether the two versions produced the same rows for every batch.
    pub fn is_same(&self) -> bool {
        self.differing_batches == 0
    }

    /// Batches compared so far.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Rows each version emitted: (old, new).
    pub fn rows_out(&self) -> (usize, usize) {
        (self.old_rows, self.new_rows)
    }

    fn columns(&self) -> Vec<String> {
        let (Some(old), Some(new)) = (&self.old_schema, &self.new_schema) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for f in new.fields() {
            match old.field_with_name(f.name()) {
                Err(_) => changes.push(format!("+{} ({})", f.name(), f.data_type())),
                Ok(o) if o.data_type() != f.data_type() => changes.push(format!(
                    "~{} ({} -> {})",
                    f.name(),
                    o.data_type(),
                    f.data_type()
                )),
                Ok(_) => {}
            }
        }
        for f in old.fields() {
            if new.field_with_name(f.name()).is_err() {
                changes.push(format!("-{}", f.name()));
            }
        }
        changes
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let delta = self.new_rows as i64 - self.old_rows as i64;
        writeln!(
            f,
            "  {} batches, {} rows in; rows out: old {}, new {} ({delta:+})",
            self.batches, self.rows_in, self.old_rows, self.new_rows
        )?;
        let columns = self.columns();
        if !columns.is_empty() {
            writeln!(f, "  columns: {}", columns.join(", "))?;
        }
        if self.is_same() {
            return write!(f, "  identical output");
        }
        write!(
            f,
            "  {} of {} batches differ",
            self.differing_batches, self.batches
        )?;
        for (label, rows) in [("old only", &self.only_old), ("new only", &self.only_new)] {
            for row in rows {
                write!(f, "\n    {label}: {row}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};

    use super::*;

    fn batch(ids: &[i64]) -> Emitted {
        Emitted::main(
            RecordBatch::try_from_iter([(
                "id",
                Arc::new(Int64Array::from(ids.to_vec())) as arrow::array::ArrayRef,
            )])
            .unwrap(),
        )
    }

    #[test]
    fn identical_outputs_report_no_difference() {
        let mut diff = Diff::default();
        diff.add(3, &[batch(&[1, 2, 3])], &[batch(&[1, 2, 3])]);
        assert!(diff.is_same());
        assert!(diff.to_string().contains("identical output"));
    }

    #[test]
    fn dropped_rows_and_new_columns_are_named() {
        let mut diff = Diff::default();
        let with_name = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from(vec![1])) as arrow::array::ArrayRef,
            ),
            ("name", Arc::new(StringArray::from(vec!["a"])) as _),
        ])
        .unwrap();
        diff.add(2, &[batch(&[1, 2])], &[Emitted::main(with_name)]);
        let text = diff.to_string();
        assert!(!diff.is_same());
        assert!(text.contains("old 2, new 1 (-1)"), "{text}");
        assert!(text.contains("+name (Utf8)"), "{text}");
        assert!(text.contains("old only: id=2"), "{text}");
    }
}
