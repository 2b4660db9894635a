//! What a transform node does when a batch fails: `on_error` = fail, skip
//! or dead_letter, with poison-row isolation by bisection.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};

use super::node::LiveTransform;
use crate::graph::dead_letter_schema;
use crate::plugin::{Emitted, Rows};
use crate::{Error, FailureKind, Result};

/// `rows` with the error, node and time appended.
pub fn dead_letter_batch(node: &str, rows: &RecordBatch, error: &str) -> Result<RecordBatch> {
    let n = rows.num_rows();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![error; n])));
    columns.push(Arc::new(StringArray::from(vec![node; n])));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC"),
    ));
    RecordBatch::try_new(dead_letter_schema(&rows.schema()), columns)
        .map_err(|e| Error::sink_from(node, "building a dead-letter batch", e))
}

/// The outcome of processing one batch under a failure policy.
#[derive(Default)]
pub struct Outcome {
    /// Outputs for downstream, in input order, each with its port.
    pub outputs: Vec<Emitted>,
    /// Rows that failed, with their error (dead_letter only).
    pub dead: Vec<(RecordBatch, String)>,
    /// The first failure, if any.
    pub failure: Option<Error>,
}

fn message(e: &Error) -> String {
    match e {
        Error::Plugin { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn isolable(e: &Error) -> bool {
    // A limit (time, memory) belongs to the batch as a whole: halving it
    // would only repeat the expensive failure. Errors, traps and malformed
    // outputs may come from single rows.
    !matches!(
        e,
        Error::Plugin {
            kind: FailureKind::Limit,
            ..
        }
    )
}

/// Where a batch goes in: the input port it came in on, and its index
/// (which names it in errors).
#[derive(Clone, Copy)]
pub struct At {
    pub port: usize,
    pub index: u64,
}

/// Runs `batch`; on failure, recovers the instance and, when `isolate`,
/// bisects to find the failing rows: every other row is processed and
/// kept, in order.
pub fn process(
    name: &str,
    node: &mut LiveTransform,
    rows: &Rows,
    at: At,
    isolate: bool,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    match node.t.instance.process_port(at.port, rows, at.index) {
        Ok(outputs) => outcome.outputs = outputs,
        Err(e) => {
            node.t.instance.recover()?;
            // Halves and dead letters are batches of their own.
            let batch = &rows.to_batch().map_err(|cause| Error::Plugin {
                node: name.to_string(),
                batch: crate::BatchRef::Batch(at.index),
                kind: FailureKind::Malformed,
                message: format!("applying the upstream selection to a failed batch: {cause}"),
            })?;
            if isolate && isolable(&e) && batch.num_rows() > 1 {
                let mid = batch.num_rows() / 2;
                bisect(node, &batch.slice(0, mid), at, &mut outcome)?;
                bisect(
                    node,
                    &batch.slice(mid, batch.num_rows() - mid),
                    at,
                    &mut outcome,
                )?;
            } else {
                outcome.dead.push((batch.clone(), message(&e)));
            }
            outcome.failure = Some(e);
        }
    }
    Ok(outcome)
}

fn bisect(
    node: &mut LiveTransform,
    batch: &RecordBatch,
    at: At,
    outcome: &mut Outcome,
) -> Result<()> {
    match node
        .t
        .instance
        .process_port(at.port, &Rows::from(batch.clone()), at.index)
    {
        Ok(outputs) => outcome.outputs.extend(outputs),
        Err(e) => {
            node.t.instance.recover()?;
            if batch.num_rows() <= 1 || !isolable(&e) {
                outcome.dead.push((batch.clone(), message(&e)));
            } else {
                let mid = batch.num_rows() / 2;
                bisect(node, &batch.slice(0, mid), at, outcome)?;
                bisect(node, &batch.slice(mid, batch.num_rows() - mid), at, outcome)?;
            }
        }
    }
    Ok(())
}
