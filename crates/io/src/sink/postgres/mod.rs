//! `type = "postgres"`: loads batches into a PostgreSQL table with binary
//! `COPY`.
//!
//! ```toml
//! [sinks.db]
//! type = "postgres"
//! inputs = ["valid"]
//! url = "postgresql://etl@db.internal/analytics"   # default: $DATABASE_URL
//! table = "public.orders"
//! mode = "upsert"            # or "append" (default), or "replace"
//! key = ["order_id"]
//! ```
//!
//! - The table is created from the input schema when missing (`create =
//!   true`, the default), with a primary key on `key` for upserts.
//! - `append` COPYs each batch into the table. `upsert` COPYs it into a
//!   temporary staging table, then `INSERT … SELECT DISTINCT ON (key) …
//!   ON CONFLICT (key) DO UPDATE`: loading the same rows twice leaves the
//!   table as loading them once (within a batch, the last row of a key wins).
//!   `replace` loads the run into a new table (`<table>__weir_new`) and,
//!   when the run succeeds, drops the old one and renames the new one in
//!   the same transaction: readers see the old table or the whole new one,
//!   never half. A re-run of a `replace` pipeline leaves the same table;
//!   a re-run of an `append` one adds its rows again.
//! - `transaction = "run"` (default): one transaction for the whole run,
//!   committed when the run succeeds — like a file sink, a failed run leaves
//!   nothing behind. `transaction = "batch"`: one per batch, visible as it
//!   goes; a connection lost mid-batch is re-established and the batch
//!   loaded again. Each batch's transaction also records (run, batch) in
//!   `weir_loads`, so a batch whose COMMIT went through just before the
//!   connection dropped is recognised and not loaded twice; the run's
//!   records are deleted when it ends.
//!
//! Type mapping: see [`copy::pg_type`] and docs/postgres.md.

mod copy;

pub(crate) use copy::pg_type;

use std::time::Duration;

use ::postgres::{Client, NoTls};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{Sink, SinkContext};
use crate::{Error, Result};
use weir_core::paths::quote_ident as quote;

pub use super::table::{Mode, OnReject, TransactionScope};

/// A `type = "postgres"` sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// `url`: a libpq-style connection string or URL; default
    /// `$DATABASE_URL`. Only TLS-less connections (loopback, private
    /// networks) for now.
    #[serde(default)]
    pub url: Option<String>,
    /// `table`: the target table, optionally schema-qualified.
    pub table: String,
    /// `create`: create the table from the input schema when it doesn't
    /// exist (default true).
    #[serde(default = "yes")]
    pub create: bool,
    /// `mode`: `"append"` (default), `"upsert"` or `"replace"`.
    #[serde(default)]
    pub mode: Mode,
    /// `key`: the columns identifying a row, for `upsert` (and the primary
    /// key of a `replace` table).
    #[serde(default)]
    pub key: Vec<String>,
    /// `transaction`: `"run"` (default) or `"batch"`.
    #[serde(default)]
    pub transaction: TransactionScope,
    /// `json`: text columns holding JSON, loaded as `jsonb`.
    #[serde(default)]
    pub json: Vec<String>,
    /// `on_error`: `"fail"` (default) or `"skip"` for a batch the database
    /// rejects. A lost connection is retried either way.
    #[serde(default)]
    pub on_error: OnReject,
}

fn yes() -> bool {
    true
}

/// How often a lost connection is re-established for one batch.
const RETRIES: u32 = 3;

/// A possibly schema-qualified table name, quoted part by part.
fn quote_table(table: &str) -> String {
    table.split('.').map(quote).collect::<Vec<_>>().join(".")
}

/// A connection string without its password, for messages.
fn describe_target(config: &::postgres::Config) -> String {
    use ::postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

/// A PostgreSQL error with what the server said: message, detail, hint,
/// and where (e.g. "COPY orders, line 42").
fn explain(e: &::postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut text = db.message().to_string();
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    if let Some(at) = db.where_() {
        text.push_str(&format!(" [{at}]"));
    }
    text
}

/// Whether `e` means the connection is gone (rather than the statement
/// failing): the server closed it, or terminated the session.
fn connection_lost(e: &::postgres::Error, client: &Client) -> bool {
    use ::postgres::error::SqlState;
    e.is_closed()
        || client.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::CONNECTION_FAILURE
        )
}

struct PostgresSink {
    node: String,
    config: PostgresSinkConfig,
    connection: ::postgres::Config,
    target: String,
    client: Client,
    /// Set at the first batch: the quoted column list and the statements.
    plan: Option<Plan>,
    /// A run-scoped transaction is open.
    in_run_transaction: bool,
    /// This connection has its upsert staging table.
    stage_ready: bool,
    /// Identifies this run's batches in `weir_loads`.
    run_id: String,
    /// Batches written so far.
    batches: i64,
    rows: u64,
    /// Batches (and their rows) rolled back under `on_error = "skip"`.
    skipped: (u64, u64),
    /// The input schema, when known before the first batch (a `replace`
    /// run without rows still replaces the table, with an empty one).
    input: Option<SchemaRef>,
}

struct Plan {
    schema: SchemaRef,
    /// Per column: loaded as `jsonb`.
    json: Vec<bool>,
    /// `CREATE TABLE IF NOT EXISTS …`, when `create = true` (under
    /// `replace`: the new table, always).
    create: Option<String>,
    copy: String,
    upsert: Option<String>,
}

impl PostgresSinkConfig {
    pub(crate) fn build(&self, ctx: SinkContext<'_>) -> Result<Box<dyn Sink>> {
        let fail = |m: String| Error::sink(ctx.name, m);
        self.mode
            .check(&self.key, self.transaction, ctx.checkpointing)
            .map_err(|m| fail(m.into()))?;
        let url = match &self.url {
            Some(url) => url.clone(),
            None => std::env::var("DATABASE_URL").map_err(|_| {
                fail("no `url` in the manifest and no DATABASE_URL in the environment".into())
            })?,
        };
        let connection: ::postgres::Config = url
            .parse()
            .map_err(|e| fail(format!("`url` is not a PostgreSQL connection string: {e}")))?;
        let target = describe_target(&connection);
        // A server that is restarting gets a few seconds to come back.
        let mut attempt = 0;
        let client = loop {
            match connection.connect(NoTls) {
                Ok(client) => break client,
                Err(e) if attempt == RETRIES => {
                    return Err(fail(format!("can't connect to {target}: {}", explain(&e))))
                }
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(node = %ctx.name, %target, attempt, error = %explain(&e),
                        "can't connect; trying again");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
            }
        };
        Ok(Box::new(PostgresSink {
            node: ctx.name.to_string(),
            config: self.clone(),
            connection,
            target,
            client,
            plan: None,
            in_run_transaction: false,
            stage_ready: false,
            run_id: format!(
                "{}/{}/{}",
                ctx.name,
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ),
            batches: 0,
            rows: 0,
            skipped: (0, 0),
            input: ctx.schema.cloned(),
        }))
    }
}

impl PostgresSink {
    /// The client's error, kept typed (its SQLSTATE is `e.code()`), under
    /// a message with the server's detail, hint and position.
    fn fail(&self, what: &str, e: ::postgres::Error) -> Error {
        Error::Sink {
            node: self.node.clone(),
            message: format!(
                "{} table {}: {what}: {}",
                self.target,
                self.config.table,
                explain(&e)
            ),
            cause: Some(Box::new(e)),
        }
    }

    /// The statements for `schema`.
    fn plan(&self, schema: &SchemaRef) -> Result<Plan> {
        let table = quote_table(&self.config.table);
        let mut definitions = Vec::new();
        for name in &self.config.json {
            if schema.field_with_name(name).is_err() {
                return Err(Error::sink(
                    &self.node,
                    format!("`json` column {name:?} is not in the input"),
                ));
            }
        }
        let json: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| self.config.json.contains(f.name()))
            .collect();
        for (field, json) in schema.fields().iter().zip(&json) {
            let pg = copy::pg_type(field.data_type(), *json).ok_or_else(|| {
                Error::sink(
                    &self.node,
                    format!(
                        "column {:?} is {}, which weir can't load into PostgreSQL{} \
                         (see docs/postgres.md for the type mapping)",
                        field.name(),
                        field.data_type(),
                        if *json {
                            " as json (it must be text)"
                        } else {
                            ""
                        }
                    ),
                )
            })?;
            definitions.push(format!("{} {pg}", quote(field.name())));
        }
        for key in &self.config.key {
            if schema.field_with_name(key).is_err() {
                return Err(Error::sink(
                    &self.node,
                    format!("`key` column {key:?} is not in the input"),
                ));
            }
        }
        let keys: Vec<String> = self.config.key.iter().map(|k| quote(k)).collect();
        if !keys.is_empty() && self.config.mode != Mode::Append {
            definitions.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        }
        let create = match self.config.mode {
            Mode::Replace => {
                let new = quote_table(&self.config.mode.loading_table(&self.config.table));
                Some(format!(
                    "DROP TABLE IF EXISTS {new}; CREATE TABLE {new} ({})",
                    definitions.join(", ")
                ))
            }
            _ => self.config.create.then(|| {
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({})",
                    definitions.join(", ")
                )
            }),
        };
        let table = quote_table(&self.config.mode.loading_table(&self.config.table));
        let columns: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
        let list = columns.join(", ");
        let upsert = (self.config.mode == Mode::Upsert).then(|| {
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !keys.contains(c))
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let action = if updates.is_empty() {
                "NOTHING".to_string()
            } else {
                format!("UPDATE SET {}", updates.join(", "))
            };
            let keys = keys.join(", ");
            format!(
                "INSERT INTO {table} ({list}) SELECT DISTINCT ON ({keys}) {list} FROM weir_stage \
                 ORDER BY {keys}, weir_seq DESC ON CONFLICT ({keys}) DO {action}"
            )
        });
        let into = if upsert.is_some() {
            "weir_stage".to_string()
        } else {
            table
        };
        Ok(Plan {
            schema: schema.clone(),
            json,
            create,
            copy: format!("COPY {into} ({list}) FROM STDIN (FORMAT binary)"),
            upsert,
        })
    }

    /// The session's staging table for upserts (temporary: gone with the
    /// connection; idempotent, since a rolled-back batch may or may not
    /// have created it).
    fn create_stage(&mut self) -> std::result::Result<(), ::postgres::Error> {
        let table = quote_table(&self.config.table);
        self.client.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS weir_stage (LIKE {table} INCLUDING DEFAULTS); \
             ALTER TABLE weir_stage ADD COLUMN IF NOT EXISTS weir_seq bigserial"
        ))
    }

    /// COPYs `data` (an encoded batch) and, for upserts, merges it.
    fn load(&mut self, data: &[u8]) -> std::result::Result<(), ::postgres::Error> {
        use std::io::Write;
        let plan = self.plan.as_ref().expect("planned before loading");
        let (copy, upsert) = (plan.copy.clone(), plan.upsert.clone());
        if upsert.is_some() {
            if !self.stage_ready {
                self.create_stage()?;
                self.stage_ready = true;
            }
            self.client.batch_execute("TRUNCATE weir_stage")?;
        }
        let mut writer = self.client.copy_in(&copy)?;
        // An I/O error here is a lost connection; `finish` reports it.
        let _ = writer.write_all(data);
        writer.finish()?;
        if let Some(upsert) = upsert {
            self.client.batch_execute(&upsert)?;
        }
        Ok(())
    }

    /// Runs `step`; when the connection is lost, reconnects (up to
    /// [`RETRIES`] times, backing off) and runs it again. `step` gets the
    /// attempt number: after the first, it must check what went through.
    fn retrying(
        &mut self,
        what: &str,
        mut step: impl FnMut(&mut Self, u32) -> std::result::Result<(), ::postgres::Error>,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            let e = match step(self, attempt) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !connection_lost(&e, &self.client) || attempt == RETRIES {
                let _ = self.client.batch_execute("ROLLBACK");
                // A staging table created in that transaction is gone.
                self.stage_ready = false;
                return Err(self.fail(what, e));
            }
            attempt += 1;
            tracing::warn!(node = %self.node, target = %self.target, attempt, error = %explain(&e),
                "connection lost; reconnecting");
            std::thread::sleep(Duration::from_millis(200 << attempt));
            match self.connection.connect(NoTls) {
                Ok(client) => {
                    self.client = client;
                    self.stage_ready = false;
                }
                Err(e) if attempt == RETRIES => return Err(self.fail("reconnecting", e)),
                Err(_) => {}
            }
        }
    }

    /// One batch in its own transaction, recorded in `weir_loads`; after a
    /// lost connection the record tells whether its COMMIT went through.
    fn load_in_own_transaction(&mut self, data: &[u8]) -> Result<()> {
        const LOG: &str = "CREATE TABLE IF NOT EXISTS weir_loads \
            (run text, batch bigint, at timestamptz DEFAULT now(), PRIMARY KEY (run, batch))";
        let batch = self.batches;
        let run_id = self.run_id.clone();
        self.retrying("loading a batch", |sink, attempt| {
            let client = &mut sink.client;
            if attempt > 0
                && client
                    .query_opt(
                        "SELECT 1 FROM weir_loads WHERE run = $1 AND batch = $2",
                        &[&run_id, &batch],
                    )?
                    .is_some()
            {
                return Ok(());
            }
            client.batch_execute(LOG)?;
            client.batch_execute("BEGIN")?;
            sink.load(data)?;
            sink.client.execute(
                "INSERT INTO weir_loads (run, batch) VALUES ($1, $2)",
                &[&run_id, &batch],
            )?;
            sink.client.batch_execute("COMMIT")
        })
    }
}

impl PostgresSink {
    /// Encodes and loads one batch in the configured transaction scope.
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut data = Vec::with_capacity(copy::HEADER.len() + batch.get_array_memory_size());
        data.extend_from_slice(copy::HEADER);
        let json = self
            .plan
            .as_ref()
            .map(|p| p.json.clone())
            .unwrap_or_default();
        copy::encode(batch, &json, &mut data).map_err(|e| Error::sink(&self.node, e))?;
        data.extend_from_slice(copy::TRAILER);
        match self.config.transaction {
            TransactionScope::Batch => self.load_in_own_transaction(&data),
            TransactionScope::Run => {
                if !self.in_run_transaction {
                    self.client
                        .batch_execute("BEGIN")
                        .map_err(|e| self.fail("starting the transaction", e))?;
                    self.in_run_transaction = true;
                }
                // A savepoint per batch: a rejected batch can be rolled
                // back alone (on_error = "skip").
                let result = self
                    .client
                    .batch_execute("SAVEPOINT weir_batch")
                    .and_then(|()| self.load(&data))
                    .and_then(|()| self.client.batch_execute("RELEASE SAVEPOINT weir_batch"));
                result.map_err(|e| {
                    if !self.client.is_closed() {
                        let _ = self
                            .client
                            .batch_execute("ROLLBACK TO SAVEPOINT weir_batch");
                        // The staging table may have been created inside it.
                        self.stage_ready = false;
                    }
                    self.fail("loading a batch", e)
                })
            }
        }
    }
}

impl PostgresSink {
    /// Plans for `schema` and creates the table; under `replace`, inside
    /// the run's transaction (the new table appears only with the swap).
    fn start(&mut self, schema: &SchemaRef) -> Result<()> {
        let plan = self.plan(schema)?;
        if self.config.mode == Mode::Replace && !self.in_run_transaction {
            self.client
                .batch_execute("BEGIN")
                .map_err(|e| self.fail("starting the transaction", e))?;
            self.in_run_transaction = true;
        }
        if let Some(create) = plan.create.clone() {
            if self.in_run_transaction {
                self.client
                    .batch_execute(&create)
                    .map_err(|e| self.fail("creating the table", e))?;
            } else {
                self.retrying("creating the table", |sink, _| {
                    sink.client.batch_execute(&create)
                })?;
            }
        }
        self.plan = Some(plan);
        Ok(())
    }

    /// `replace`: the new table takes the old one's place (same
    /// transaction as the load, committed next).
    fn swap_in(&mut self) -> Result<()> {
        if self.plan.is_none() {
            let Some(schema) = self.input.clone() else {
                return Ok(());
            };
            self.start(&schema)?;
        }
        let table = quote_table(&self.config.table);
        let new = quote_table(&self.config.mode.loading_table(&self.config.table));
        let name = self.config.table.rsplit('.').next().unwrap_or_default();
        self.client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {table}; ALTER TABLE {new} RENAME TO {}",
                quote(name)
            ))
            .map_err(|e| self.fail("replacing the table", e))
    }
}

impl Sink for PostgresSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.plan.is_none() {
            self.start(batch.schema_ref())?;
        }
        if self
            .plan
            .as_ref()
            .is_some_and(|p| p.schema.fields() != batch.schema_ref().fields())
        {
            return Err(Error::sink(
                &self.node,
                "the input's schema changed between batches".to_string(),
            ));
        }
        let result = self.write_batch(batch);
        self.batches += 1;
        match result {
            Ok(()) => self.rows += batch.num_rows() as u64,
            Err(e) if self.config.on_error == OnReject::Skip && !self.client.is_closed() => {
                tracing::warn!(node = %self.node, rows = batch.num_rows(), error = %e,
                    "skipped a batch the database rejected (on_error = \"skip\")");
                self.skipped.0 += 1;
                self.skipped.1 += batch.num_rows() as u64;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.config.mode == Mode::Replace {
            self.swap_in()?;
        }
        if self.in_run_transaction {
            self.client
                .batch_execute("COMMIT")
                .map_err(|e| self.fail("committing", e))?;
        }
        if self.config.transaction == TransactionScope::Batch && self.batches > 0 {
            // Every batch is in; its records have served.
            let run_id = self.run_id.clone();
            if let Err(e) = self
                .client
                .execute("DELETE FROM weir_loads WHERE run = $1", &[&run_id])
            {
                tracing::warn!(node = %self.node, error = %explain(&e), "can't clear weir_loads");
            }
        }
        tracing::info!(node = %self.node, target = %self.target, table = %self.config.table,
            rows = self.rows, skipped_batches = self.skipped.0, skipped_rows = self.skipped.1,
            "committed");
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        if self.in_run_transaction {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }

    fn prepare(&mut self) -> Result<weir_core::checkpoint::SinkState> {
        // Rows past the checkpoint's source positions must not stay
        // uncommitted: a crash would lose them. Committed here, they may
        // be loaded again after a crash (at-least-once; upsert absorbs it).
        if self.in_run_transaction {
            self.client
                .batch_execute("COMMIT")
                .map_err(|e| self.fail("committing at a checkpoint", e))?;
            self.in_run_transaction = false;
        }
        Ok(weir_core::checkpoint::SinkState::default())
    }
}
