//! A weir:plugin@0.2.0 plugin written against the raw bindings and the
//! shared Arrow mapping (`weir-wit-arrow`), the way the SDK will be. Its
//! config is `{ mode = "..." }`:
//!
//! - `copy` (default): every column is lifted into an arrow-rs array
//!   (validated in full, on the guest side), lowered again and returned as
//!   a new batch: the whole type tree crosses the boundary both ways.
//! - `ipc-copy`: the same through the other path a plugin with its own
//!   Arrow can take: the batch as an Arrow IPC stream (`to-ipc`), decoded
//!   into arrow-rs, encoded again and returned as `ipc` (the engine
//!   benchmark sets one against the other).
//! - `pass`: returns the input untouched (a derived output reading nothing).
//! - `count`: keeps a running row count in the host's `state` store and
//!   appends it as an int64 column `total`.
//! - `count-or-fail`: `count`, but every third call fails after its
//!   write to the store (the host must undo the write).
//! - `two-outputs`: declares output ports `a` and `b`, and sends every
//!   batch through both (`b` after `a`), with describe naming both.
//! - `child-length`, `offsets-past-child`, `dictionary-key`,
//!   `decimal-precision`: `copy`, then the first column is damaged that
//!   way before it is returned (a buggy guest's nested output).
//! - `stage`: `copy`, each column handed over by `stage.column` and
//!   returned by its number.
//! - `stage-unknown`: `stage`, but the first column names a number the
//!   call never staged.
//! - `stage-flood`: stages the first column over and over until the host
//!   refuses, and fails with the host's message.

use arrow_schema::{DataType, Field, Schema};
use weir::plugin::types::{
    Batch, Column, ColumnData, Derived, NewBatch, Output, OutputData, PortNames, PortSchema,
};
use weir::plugin::{stage, state};

wit_bindgen::generate!({
    path: "../../../wit/0.2",
    world: "plugin",
    generate_all,
});

weir_wit_arrow::bind!(mod map = crate::weir::plugin::types);

struct ContractV2;

static MODE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn mode_of(config: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
    Ok(value
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("copy")
        .to_string())
}

fn mode() -> String {
    MODE.lock().map(|m| m.clone()).unwrap_or_default()
}

fn schema_of(batch: &Batch) -> Result<Schema, String> {
    weir_wit_arrow::schema_from_wit(&map::schema_from_wit(batch.schema()))
        .map_err(|e| e.to_string())
}

/// One field as a column's type tree (a schema with one root).
fn field_tree(field: &Field) -> weir::plugin::types::Schema {
    map::schema_to_wit(weir_wit_arrow::field_to_wit(field))
}

fn lower(data: &arrow_data::ArrayData) -> Result<ColumnData, String> {
    weir_wit_arrow::array_to_wit(data)
        .map(map::column_to_wit)
        .map_err(|e| e.to_string())
}

/// Damages a lowered column as `mode` says; other modes leave it alone.
fn damage(column: &mut ColumnData, mode: &str) {
    let root = column.root as usize;
    let Some(node) = column.nodes.get_mut(root) else {
        return;
    };
    match mode {
        "child-length" => {
            if let Some(&child) = node.children.first() {
                let child = &mut column.nodes[child as usize];
                child.length = child.length.saturating_sub(1);
            }
        }
        "offsets-past-child" => {
            if let Some(offsets) = node.buffers.get_mut(1) {
                let n = offsets.len();
                if n >= 4 {
                    offsets[n - 4..].copy_from_slice(&1_000_000i32.to_le_bytes());
                }
            }
        }
        "dictionary-key" | "decimal-precision" => {
            if let Some(values) = node.buffers.get_mut(1) {
                values.iter_mut().for_each(|b| *b = 0x7f);
            }
        }
        _ => {}
    }
}

/// Every column through arrow-rs and back.
fn copy(batch: &Batch) -> Result<Output, String> {
    let schema = schema_of(batch)?;
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let data = batch.column(i as u32)?;
        let array = weir_wit_arrow::array_from_wit(map::column_from_wit(data), field.data_type())
            .map_err(|e| format!("column {:?}: {e}", field.name()))?;
        let mut data = lower(&array)?;
        if i == 0 {
            damage(&mut data, &mode());
        }
        if mode().starts_with("stage") {
            data = staged(data, i == 0)?;
        }
        columns.push(Column {
            field: field_tree(field),
            data,
        });
    }
    Ok(Output {
        port: 0,
        data: OutputData::Batch(NewBatch {
            num_rows: batch.num_rows(),
            columns,
        }),
    })
}

/// `data` staged, as the column data that names it, as `stage*` modes
/// want it (`first`: the batch's first column).
fn staged(data: ColumnData, first: bool) -> Result<ColumnData, String> {
    let mode = mode();
    if first && mode == "stage-flood" {
        loop {
            stage::column(&data)?;
        }
    }
    let number = stage::column(&data)?;
    let root = match (first, mode.as_str()) {
        (true, "stage-unknown") => number + 7,
        _ => number,
    };
    Ok(ColumnData {
        nodes: Vec::new(),
        root,
    })
}

/// Every column through arrow-rs and back by way of Arrow IPC streams.
fn ipc_copy(batch: &Batch) -> Result<Output, String> {
    let bytes = batch.to_ipc();
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes.as_slice(), None)
        .map_err(|e| e.to_string())?;
    let schema = reader.schema();
    let mut out = Vec::new();
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).map_err(|e| e.to_string())?;
    for decoded in reader {
        writer
            .write(&decoded.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    Ok(Output {
        port: 0,
        data: OutputData::Ipc(out),
    })
}

fn pass() -> Output {
    Output {
        port: 0,
        data: OutputData::Derived(Derived {
            selection: None,
            columns: vec![],
            drop: vec![],
            rename: vec![],
            project: None,
        }),
    }
}

/// The running count from the host store, plus this batch, as `total`.
fn count(batch: &Batch) -> Result<Output, String> {
    let rows = batch.num_rows();
    let before = state::get(b"rows")
        .map(|v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])))
        .unwrap_or(0);
    let total = before + u64::from(rows);
    state::put(b"rows", &total.to_le_bytes())?;
    let values: Vec<i64> = vec![total as i64; rows as usize];
    let data = arrow_data::ArrayData::try_new(
        DataType::Int64,
        rows as usize,
        None,
        0,
        vec![arrow_buffer::Buffer::from_vec(values)],
        vec![],
    )
    .map_err(|e| e.to_string())?;
    let mut output = pass();
    if let OutputData::Derived(d) = &mut output.data {
        d.columns.push(Column {
            field: field_tree(&Field::new("total", DataType::Int64, false)),
            data: lower(&data)?,
        });
    }
    Ok(output)
}

impl exports::weir::plugin::transform::Guest for ContractV2 {
    fn ports(config: String) -> Result<PortNames, String> {
        let outputs = match mode_of(&config)?.as_str() {
            "two-outputs" => vec!["a".into(), "b".into()],
            _ => vec!["out".into()],
        };
        Ok(PortNames {
            inputs: vec!["in".into()],
            outputs,
        })
    }

    fn init(config: String) -> Result<(), String> {
        let mode = mode_of(&config)?;
        let modes = [
            "copy",
            "ipc-copy",
            "pass",
            "count",
            "count-or-fail",
            "two-outputs",
            "child-length",
            "offsets-past-child",
            "dictionary-key",
            "decimal-precision",
            "stage",
            "stage-unknown",
            "stage-flood",
        ];
        if !modes.contains(&mode.as_str()) {
            return Err(format!("unknown mode {mode:?}"));
        }
        *MODE.lock().map_err(|e| e.to_string())? = mode;
        Ok(())
    }

    fn describe(inputs: Vec<PortSchema>, config: String) -> Result<Vec<PortSchema>, String> {
        let input = inputs
            .into_iter()
            .next()
            .and_then(|p| p.schema)
            .ok_or("no input schema")?;
        let mode = mode_of(&config)?;
        if mode == "two-outputs" {
            return Ok(["a", "b"]
                .map(|name| PortSchema {
                    name: name.into(),
                    schema: Some(input.clone()),
                })
                .to_vec());
        }
        let schema = match mode.as_str() {
            "copy" | "ipc-copy" | "child-length" | "offsets-past-child" | "dictionary-key"
            | "decimal-precision" | "stage" | "stage-unknown" | "stage-flood" => Some(input),
            "count" | "count-or-fail" => {
                let input = weir_wit_arrow::schema_from_wit(&map::schema_from_wit(input))
                    .map_err(|e| e.to_string())?;
                let mut fields: Vec<Field> =
                    input.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new("total", DataType::Int64, false));
                Some(map::schema_to_wit(weir_wit_arrow::schema_to_wit(
                    &Schema::new_with_metadata(fields, input.metadata().clone()),
                )))
            }
            _ => None,
        };
        Ok(vec![PortSchema {
            name: "out".into(),
            schema,
        }])
    }

    fn process(_input: u32, batch: &Batch) -> Result<Vec<Output>, String> {
        if mode() == "two-outputs" {
            let mut b = pass();
            b.port = 1;
            return Ok(vec![pass(), b]);
        }
        Ok(vec![match mode().as_str() {
            "pass" => pass(),
            "ipc-copy" => ipc_copy(batch)?,
            "count" => count(batch)?,
            "count-or-fail" => {
                let counted = count(batch)?;
                if CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 3 == 2 {
                    return Err("every third batch fails after counting it".into());
                }
                counted
            }
            _ => copy(batch)?,
        }])
    }

    fn finish() -> Result<Vec<Output>, String> {
        Ok(vec![])
    }

    fn snapshot() -> Result<Option<Vec<u8>>, String> {
        // Everything lives in the host's store.
        Ok(None)
    }

    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
}

export!(ContractV2);
