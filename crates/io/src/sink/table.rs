//! What the database sinks (postgres, sqlite) share: how rows are
//! written, how much a transaction covers, and what a rejected batch does.
//! Each database sink compiles alone (its cargo feature), so this lives
//! beside them, not in either.

use serde::Deserialize;

/// How rows are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Insert every row.
    #[default]
    Append,
    /// Insert, or update the row with the same `key`.
    Upsert,
    /// Replace the whole table with this run's rows, atomically.
    Replace,
}

impl Mode {
    /// Checks the mode against the other keys of a database sink.
    pub(crate) fn check(
        self,
        key: &[String],
        transaction: TransactionScope,
        checkpointing: bool,
    ) -> std::result::Result<(), &'static str> {
        match self {
            Mode::Upsert if key.is_empty() => Err(
                "mode = \"upsert\" needs `key`, the columns that identify a row (e.g. key = [\"id\"])",
            ),
            Mode::Replace if transaction == TransactionScope::Batch => Err(
                "mode = \"replace\" swaps the whole table in when the run succeeds; it needs \
                 transaction = \"run\" (the default)",
            ),
            Mode::Replace if checkpointing => Err(
                "mode = \"replace\" rewrites the table on every run, which a checkpointed \
                 (resumable) pipeline can't do; use \"append\" or \"upsert\"",
            ),
            _ => Ok(()),
        }
    }

    /// The table a run writes into: `table`, or under `replace` the new
    /// table swapped in at commit.
    pub(crate) fn loading_table(self, table: &str) -> String {
        match self {
            Mode::Replace => format!("{table}__weir_new"),
            _ => table.to_string(),
        }
    }
}

/// How much one transaction covers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TransactionScope {
    /// The whole run: committed when it succeeds, rolled back otherwise.
    #[default]
    Run,
    /// Each batch.
    Batch,
}

/// What a database sink does with a batch the database rejects (a
/// constraint violation, a value out of range).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnReject {
    /// Fail the run (with `transaction = "run"`, nothing is committed).
    #[default]
    Fail,
    /// Roll the batch back, log it (table, row, reason) and go on.
    Skip,
}
