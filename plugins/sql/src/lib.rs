//! `sql`: a per-batch SQL query over the node's input, run by Apache
//! DataFusion inside the plugin's sandbox.
//!
//! ```toml
//! [transforms.enrich]
//! plugin = "sql"
//! inputs = ["orders"]
//! config = { query = """
//!   SELECT id, lower(trim(name)) AS name, amount / 100.0 AS amount_eur,
//!          CASE WHEN status >= 500 THEN 'error' ELSE 'ok' END AS outcome
//!   FROM input WHERE status IN (200, 304) AND path LIKE '/api/%'
//! """ }
//! ```
//!
//! The query reads one table, `input`: each batch in turn. Projections,
//! computed columns, CASE, casts, WHERE, string, regex, date and math
//! functions, struct fields and UNNEST work row by row; a query that would
//! combine rows across batches (GROUP BY, windows, DISTINCT, ORDER BY,
//! LIMIT) is refused by `describe`, so `weir check` reports it with the
//! manifest line.
//!
//! DataFusion is on arrow 59 and weir on 60, so batches cross as Arrow IPC
//! (`to-ipc` in, an `ipc` output back), and schemas through serde.

mod query;

use std::cell::RefCell;
use std::io::Cursor;

use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamDecoder;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;

use query::Query;
use weir::plugin::types::{Batch, Output, OutputData, PortNames, PortSchema};

wit_bindgen::generate!({
    path: "../../wit/0.2",
    world: "plugin",
    generate_all,
});

weir_wit_arrow::bind!(mod map = crate::weir::plugin::types);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `SELECT ... FROM input ...`
    query: String,
}

fn config(json: &str) -> Result<Config, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// The query text, and its plan for the input schema seen so far.
struct Node {
    sql: String,
    query: Option<Query>,
}

thread_local! {
    static NODE: RefCell<Option<Node>> = const { RefCell::new(None) };
}

/// A WIT schema as DataFusion's Arrow: through the shared mapping (arrow
/// 60), then serde (the format both arrow-schema versions share).
fn schema_from_wit(schema: weir::plugin::types::Schema) -> Result<Schema, String> {
    let schema = weir_wit_arrow::schema_from_wit(&map::schema_from_wit(schema))
        .map_err(|e| e.to_string())?;
    let json = serde_json::to_value(&schema).map_err(|e| e.to_string())?;
    serde_json::from_value(json).map_err(|e| format!("an input type DataFusion can't take: {e}"))
}

fn schema_to_wit(schema: &Schema) -> Result<weir::plugin::types::Schema, String> {
    let json = serde_json::to_value(schema).map_err(|e| e.to_string())?;
    let schema: arrow_schema_60::Schema =
        serde_json::from_value(json).map_err(|e| format!("a result type weir can't take: {e}"))?;
    Ok(map::schema_to_wit(weir_wit_arrow::schema_to_wit(&schema)))
}

/// The input batch, decoded from the host's IPC stream (buffers are
/// sliced from the one received allocation where aligned).
fn read_batch(batch: &Batch) -> Result<RecordBatch, String> {
    let mut buffer = Buffer::from_vec(batch.to_ipc());
    let mut decoder = StreamDecoder::new();
    let mut out = None;
    while !buffer.is_empty() {
        if let Some(b) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            out = Some(b);
        }
    }
    out.ok_or_else(|| "the host's IPC stream held no batch".to_string())
}

fn write_batches(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, String> {
    let mut writer =
        StreamWriter::try_new(Cursor::new(Vec::new()), schema).map_err(|e| e.to_string())?;
    for b in batches {
        writer.write(b).map_err(|e| e.to_string())?;
    }
    writer
        .into_inner()
        .map(Cursor::into_inner)
        .map_err(|e| e.to_string())
}

struct Sql;

impl exports::weir::plugin::transform::Guest for Sql {
    fn ports(config_json: String) -> Result<PortNames, String> {
        config(&config_json)?;
        Ok(PortNames {
            inputs: vec![query::INPUT.into()],
            outputs: vec!["out".into()],
        })
    }

    fn init(config_json: String) -> Result<(), String> {
        let config = config(&config_json)?;
        NODE.with(|n| {
            *n.borrow_mut() = Some(Node {
                sql: config.query,
                query: None,
            })
        });
        Ok(())
    }

    fn describe(inputs: Vec<PortSchema>, config_json: String) -> Result<Vec<PortSchema>, String> {
        let config = config(&config_json)?;
        let schema = match inputs.into_iter().next().and_then(|p| p.schema) {
            Some(input) => {
                let input = Arc::new(schema_from_wit(input)?);
                let query = Query::plan(&config.query, input)?;
                Some(schema_to_wit(&query.output())?)
            }
            None => None,
        };
        Ok(vec![PortSchema {
            name: "out".into(),
            schema,
        }])
    }

    fn process(_input: u32, batch: &Batch) -> Result<Vec<Output>, String> {
        let batch = read_batch(batch)?;
        NODE.with(|n| {
            let mut node = n.borrow_mut();
            let node = node.as_mut().ok_or("process before init")?;
            let stale = node
                .query
                .as_ref()
                .is_none_or(|q| q.input().as_ref() != batch.schema().as_ref());
            if stale {
                node.query = Some(Query::plan(&node.sql, batch.schema())?);
            }
            let Some(query) = node.query.as_ref() else {
                return Ok(vec![]);
            };
            let results = query.run(batch)?;
            if results.is_empty() {
                return Ok(vec![]);
            }
            Ok(vec![Output {
                port: 0,
                data: OutputData::Ipc(write_batches(&query.output(), &results)?),
            }])
        })
    }

    fn finish() -> Result<Vec<Output>, String> {
        Ok(vec![])
    }

    fn snapshot() -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }

    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

export!(Sql);
