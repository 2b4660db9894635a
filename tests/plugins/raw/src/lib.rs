//! A plugin written against the raw WIT bindings. `config` is the mode as a
//! JSON string, e.g. `config = { mode = "short-column" }`:
//!
//! - `ipc-echo`: returns the input as an Arrow IPC stream (`to-ipc`).
//! - `short-column`: adds a column one row shorter than the batch.
//! - `bad-offsets`: a new batch whose string offsets decrease.
//! - `offsets-past-end`: a new batch whose offsets point past the data.
//! - `bad-utf8`: a new batch whose string bytes are not UTF-8.
//! - `bad-selection`: selects a row index past the end.
//! - `unsorted-selection`: selection indexes out of order.
//! - `wrong-type`: declares int64 but sends float64 values.
//! - `short-validity`: a validity bitmap too short for the rows.
//! - `no-columns`: a new batch that claims the input's rows but has no
//!   columns.
//! - `bad-zone`: a timestamp column whose zone is not a time zone.
//! - `type-flip`: `describe` says unknown; the first batch's `x` is int64,
//!   every later one's float64.
//! - `tag`: adds a column `tag` holding the config's `tag` on every row
//!   (a well-behaved plugin with no Arrow in it: cheap to build for every
//!   target `weir plugin build` takes).

use exports::weir::plugin::transform::Guest;
use weir::plugin::types::*;

// weir:plugin@0.1.0, the first contract: the host keeps serving it beside
// 0.2, and this plugin keeps that tested.
wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin",
    generate_all,
});

struct Raw;

static MODE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
static TAG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn mode() -> String {
    MODE.lock().map(|m| m.clone()).unwrap_or_default()
}

fn int_column(values: Vec<i64>) -> Column {
    Column {
        data_type: DataType::Int64,
        values: Values::S64(values),
        validity: None,
    }
}

fn string_batch(offsets: Vec<i32>, data: Vec<u8>) -> Output {
    Output::Batch(NewBatch {
        num_rows: (offsets.len() - 1) as u32,
        columns: vec![NamedColumn {
            name: "s".into(),
            column: Column {
                data_type: DataType::Utf8,
                values: Values::Var(VarData { offsets, data }),
                validity: None,
            },
        }],
    })
}

fn derived(selection: Option<Selection>, columns: Vec<NamedColumn>) -> Output {
    Output::Derived(Derived {
        selection,
        columns,
        drop: vec![],
        rename: vec![],
        project: None,
    })
}

impl Guest for Raw {
    fn init(config: String) -> Result<(), String> {
        let v: serde_json::Value = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let m = v["mode"]
            .as_str()
            .ok_or("config needs a string `mode`")?
            .to_string();
        *MODE.lock().map_err(|e| e.to_string())? = m;
        *TAG.lock().map_err(|e| e.to_string())? = v["tag"].as_str().unwrap_or_default().to_string();
        Ok(())
    }

    fn describe(_input: Schema, _config: String) -> Result<Option<Schema>, String> {
        Ok(None)
    }

    fn process(input: &Batch) -> Result<Vec<Output>, String> {
        let rows = input.num_rows();
        Ok(vec![match mode().as_str() {
            "ipc-echo" => Output::Ipc(input.to_ipc()),
            "tag" => {
                let tag = TAG.lock().map(|t| t.clone()).unwrap_or_default();
                let offsets = (0..=rows as i32).map(|i| i * tag.len() as i32).collect();
                let column = Column {
                    data_type: DataType::Utf8,
                    values: Values::Var(VarData {
                        offsets,
                        data: tag.repeat(rows as usize).into_bytes(),
                    }),
                    validity: None,
                };
                derived(
                    None,
                    vec![NamedColumn {
                        name: "tag".into(),
                        column,
                    }],
                )
            }
            "short-column" => derived(
                None,
                vec![NamedColumn {
                    name: "extra".into(),
                    column: int_column(vec![0; rows.saturating_sub(1) as usize]),
                }],
            ),
            "bad-offsets" => string_batch(vec![0, 3, 1], b"abc".to_vec()),
            "offsets-past-end" => string_batch(vec![0, 2, 40], b"abc".to_vec()),
            "bad-utf8" => string_batch(vec![0, 2], vec![0xff, 0xfe]),
            "bad-selection" => derived(Some(Selection::Indices(vec![0, rows + 5])), vec![]),
            "unsorted-selection" => derived(Some(Selection::Indices(vec![1, 0])), vec![]),
            "wrong-type" => derived(
                None,
                vec![NamedColumn {
                    name: "extra".into(),
                    column: Column {
                        data_type: DataType::Int64,
                        values: Values::F64(vec![0.5; rows as usize]),
                        validity: None,
                    },
                }],
            ),
            "short-validity" => derived(
                None,
                vec![NamedColumn {
                    name: "extra".into(),
                    column: Column {
                        data_type: DataType::Int64,
                        values: Values::S64(vec![1; rows as usize]),
                        validity: Some(vec![0xff]),
                    },
                }],
            ),
            "no-columns" => Output::Batch(NewBatch {
                num_rows: rows,
                columns: vec![],
            }),
            "bad-zone" => Output::Batch(NewBatch {
                num_rows: rows,
                columns: vec![NamedColumn {
                    name: "t".into(),
                    column: Column {
                        data_type: DataType::Timestamp(TimestampType {
                            unit: TimeUnit::Microsecond,
                            timezone: Some("Mars/Olympus".into()),
                        }),
                        values: Values::S64(vec![0; rows as usize]),
                        validity: None,
                    },
                }],
            }),
            "type-flip" => {
                let first = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                let column = if first {
                    int_column(vec![1; rows as usize])
                } else {
                    Column {
                        data_type: DataType::Float64,
                        values: Values::F64(vec![1.5; rows as usize]),
                        validity: None,
                    }
                };
                Output::Batch(NewBatch {
                    num_rows: rows,
                    columns: vec![NamedColumn {
                        name: "x".into(),
                        column,
                    }],
                })
            }
            other => return Err(format!("unknown mode {other:?}")),
        }])
    }

    fn finish() -> Result<Vec<Output>, String> {
        Ok(vec![])
    }

    fn snapshot() -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }

    fn restore(_state: Vec<u8>) -> Result<(), String> {
        Err("stateless".into())
    }
}

export!(Raw);
