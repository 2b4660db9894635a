//! Kafka records to Arrow: the value decoded by `format`, then the
//! record's own fields (`metadata`) as columns.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, MapBuilder, MapFieldNames, StringArray,
    StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::super::bad::{push, BadRecord, BadRecords, OnBadRecord};
use super::super::schema::{declared, ColumnDecl};
use crate::kafka::avro::AvroDecoder;
use crate::kafka::registry::RegistryConfig;
use crate::kafka::{Format, Raw};
use crate::{Error, Result};

/// A record field offered as a column (`metadata`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Metadata {
    /// `kafka_key`: the key as UTF-8 text.
    Key,
    /// `kafka_topic`.
    Topic,
    /// `kafka_partition` (int32).
    Partition,
    /// `kafka_offset` (int64).
    Offset,
    /// `kafka_timestamp`: the record's timestamp (milliseconds, UTC).
    Timestamp,
    /// `kafka_headers`: `map<utf8, binary>`.
    Headers,
}

impl Metadata {
    fn field(self) -> Field {
        match self {
            Metadata::Key => Field::new("kafka_key", DataType::Utf8, true),
            Metadata::Topic => Field::new("kafka_topic", DataType::Utf8, false),
            Metadata::Partition => Field::new("kafka_partition", DataType::Int32, false),
            Metadata::Offset => Field::new("kafka_offset", DataType::Int64, false),
            Metadata::Timestamp => Field::new(
                "kafka_timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Metadata::Headers => Field::new(
                "kafka_headers",
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(Fields::from(vec![
                            Field::new("keys", DataType::Utf8, false),
                            Field::new("values", DataType::Binary, true),
                        ])),
                        false,
                    )),
                    false,
                ),
                true,
            ),
        }
    }

    fn column(self, raws: &[Raw], kept: &[usize]) -> ArrayRef {
        let rows = kept.iter().map(|&i| &raws[i]);
        match self {
            Metadata::Key => Arc::new(StringArray::from_iter(rows.map(|r| {
                r.key
                    .as_deref()
                    // Checked by `batch`: a key that is not text is a bad record.
                    .and_then(|k| std::str::from_utf8(k).ok().map(str::to_string))
            }))),
            Metadata::Topic => Arc::new(StringArray::from_iter_values(rows.map(|r| &r.topic))),
            Metadata::Partition => {
                Arc::new(Int32Array::from_iter_values(rows.map(|r| r.partition)))
            }
            Metadata::Offset => Arc::new(Int64Array::from_iter_values(rows.map(|r| r.offset))),
            Metadata::Timestamp => Arc::new(
                TimestampMillisecondArray::from_iter(rows.map(|r| r.timestamp_ms))
                    .with_timezone("UTC"),
            ),
            Metadata::Headers => {
                let names = MapFieldNames {
                    entry: "entries".into(),
                    key: "keys".into(),
                    value: "values".into(),
                };
                let mut b =
                    MapBuilder::new(Some(names), StringBuilder::new(), BinaryBuilder::new())
                        .with_values_field(Arc::new(Field::new("values", DataType::Binary, true)));
                for r in rows {
                    for (k, v) in &r.headers {
                        b.keys().append_value(k);
                        b.values().append_option(v.as_deref());
                    }
                    // Can't fail: keys and values were appended in pairs.
                    let _ = b.append(true);
                }
                Arc::new(b.finish())
            }
        }
    }
}

/// The source's schema: the value's columns, then the metadata columns.
pub(super) fn schema(value: SchemaRef, metadata: &[Metadata]) -> SchemaRef {
    let mut fields: Vec<Field> = value.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(metadata.iter().map(|m| m.field()));
    Arc::new(Schema::new(fields))
}

/// Decodes values by `format`.
pub(super) enum ValueDecoder {
    Json(SchemaRef),
    Text(SchemaRef),
    Bytes(SchemaRef),
    Avro(Box<AvroDecoder>),
}

impl ValueDecoder {
    pub(super) fn new(
        node: &str,
        format: Format,
        columns: Option<&[ColumnDecl]>,
        registry: Option<&RegistryConfig>,
        topics: &[String],
    ) -> Result<ValueDecoder> {
        let one = |t: DataType| Arc::new(Schema::new(vec![Field::new("value", t, true)]));
        Ok(match format {
            Format::Json => ValueDecoder::Json(declared(columns.ok_or_else(|| {
                Error::source(
                    node,
                    "a kafka source with format = \"json\" needs `schema`: declare the value's \
                     fields, e.g. schema = [{ name = \"id\", type = \"int64\" }, { name = \
                     \"customer\", type = \"utf8\" }]",
                )
            })?)),
            Format::String => ValueDecoder::Text(one(DataType::Utf8)),
            Format::Bytes => ValueDecoder::Bytes(one(DataType::Binary)),
            Format::Avro => {
                let registry = registry.ok_or_else(|| {
                    Error::source(
                        node,
                        "a kafka source with format = \"avro\" needs `registry = { url = \
                         \"http://…:8081\" }`: the schema registry its records' schema ids \
                         point into",
                    )
                })?;
                ValueDecoder::Avro(Box::new(AvroDecoder::new(node, registry, topics)?))
            }
        })
    }

    pub(super) fn schema(&self) -> SchemaRef {
        match self {
            ValueDecoder::Json(s) | ValueDecoder::Text(s) | ValueDecoder::Bytes(s) => s.clone(),
            ValueDecoder::Avro(a) => a.schema(),
        }
    }

    /// Decodes `raws[i]` for every `i` in `rows` into one batch; `Err`
    /// names the first record it could not.
    fn decode_rows(
        &mut self,
        raws: &[Raw],
        rows: &[usize],
    ) -> std::result::Result<RecordBatch, (usize, String)> {
        match self {
            ValueDecoder::Json(schema) => {
                let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
                    .with_batch_size(rows.len().max(1))
                    .build_decoder()
                    .map_err(|e| (rows[0], e.to_string()))?;
                for &i in rows {
                    let value = raws[i].value.as_deref().unwrap_or(b"{}");
                    decoder.decode(value).map_err(|e| (i, e.to_string()))?;
                    decoder.decode(b"\n").map_err(|e| (i, e.to_string()))?;
                }
                let batch = decoder.flush().map_err(|e| (rows[0], e.to_string()))?;
                Ok(batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
            }
            ValueDecoder::Text(schema) => {
                let mut values = Vec::with_capacity(rows.len());
                for &i in rows {
                    values.push(match raws[i].value.as_deref() {
                        Some(v) => Some(
                            std::str::from_utf8(v)
                                .map_err(|e| (i, format!("not UTF-8 text: {e}")))?,
                        ),
                        None => None,
                    });
                }
                RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values))])
                    .map_err(|e| (rows[0], e.to_string()))
            }
            ValueDecoder::Bytes(schema) => {
                let mut b = BinaryBuilder::new();
                for &i in rows {
                    b.append_option(raws[i].value.as_deref());
                }
                RecordBatch::try_new(schema.clone(), vec![Arc::new(b.finish())])
                    .map_err(|e| (rows[0], e.to_string()))
            }
            ValueDecoder::Avro(a) => a.decode(raws, rows),
        }
    }
}

/// A decoded batch and the records it holds (indices into the polled
/// records: bad ones are left out under `skip` and `dead_letter`).
pub(super) struct Decoded {
    pub batch: RecordBatch,
    pub kept: Vec<usize>,
}

/// Decodes `raws` into one batch of `schema`: all at once, or, when one
/// is bad, record by record so the good ones around it survive in order.
pub(super) fn batch(
    node: &str,
    schema: &SchemaRef,
    decoder: &mut ValueDecoder,
    metadata: &[Metadata],
    raws: &[Raw],
    policy: OnBadRecord,
    bad: &BadRecords,
) -> Result<Decoded> {
    let all: Vec<usize> = (0..raws.len()).collect();
    if raws.is_empty() {
        return Ok(Decoded {
            batch: RecordBatch::new_empty(schema.clone()),
            kept: all,
        });
    }
    let text_keys = metadata.contains(&Metadata::Key);
    let keys_ok = !text_keys || raws.iter().all(|r| key_error(r).is_none());
    let (values, kept) = match decoder.decode_rows(raws, &all) {
        Ok(values) if keys_ok => (values, all),
        _ => salvage(node, decoder, raws, text_keys, policy, bad)?,
    };
    let mut columns = values.columns().to_vec();
    columns.extend(metadata.iter().map(|m| m.column(raws, &kept)));
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::source_from(node, "assembling a batch", e))?;
    Ok(Decoded { batch, kept })
}

/// Record by record: the bad ones reported (or, under `fail`, the first
/// one failing the run), the good ones decoded together.
fn salvage(
    node: &str,
    decoder: &mut ValueDecoder,
    raws: &[Raw],
    text_keys: bool,
    policy: OnBadRecord,
    bad: &BadRecords,
) -> Result<(RecordBatch, Vec<usize>)> {
    let mut good = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let checked = match key_error(raw).filter(|_| text_keys) {
            Some(why) => Err((i, why)),
            None => decoder.decode_rows(raws, &[i]).map(|_| ()),
        };
        if let Err((_, why)) = checked {
            let record = BadRecord::new(
                std::path::Path::new(&raw.topic),
                raw.location(),
                &raw.text(),
                &why,
            );
            if policy == OnBadRecord::Fail {
                return Err(record.into_error(node));
            }
            push(bad, record);
        } else {
            good.push(i);
        }
    }
    let values = decoder
        .decode_rows(raws, &good)
        .map_err(|(i, why)| Error::source(node, format!("{}: {why}", raws[i].location())))?;
    Ok((values, good))
}

/// Why `raw`'s key can't be the `kafka_key` text column, if it can't.
fn key_error(raw: &Raw) -> Option<String> {
    let key = raw.key.as_deref()?;
    std::str::from_utf8(key)
        .err()
        .map(|e| format!("the key is not UTF-8 text ({e}); leave \"key\" out of `metadata`, or read it from a header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(offset: i64, key: &[u8], value: &str) -> Raw {
        Raw {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp_ms: None,
            key: Some(key.to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_key_that_is_not_text_is_a_bad_record_not_a_replaced_character() {
        let value = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let mut decoder = ValueDecoder::Text(value.clone());
        let metadata = [Metadata::Key];
        let schema = super::schema(value, &metadata);
        let raws = [
            raw(0, b"k0", "a"),
            raw(1, b"\xff\xfe", "b"),
            raw(2, b"k2", "c"),
        ];
        let bad = BadRecords::default();
        let out = batch(
            "n",
            &schema,
            &mut decoder,
            &metadata,
            &raws,
            OnBadRecord::Skip,
            &bad,
        )
        .unwrap();
        assert_eq!(out.kept, [0, 2]);
        let keys = out
            .batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!((keys.value(0), keys.value(1)), ("k0", "k2"));
        let reported = crate::source::bad::drain(&bad);
        assert_eq!(reported.len(), 1);
        assert!(
            reported[0].location.contains("offset 1"),
            "{:?}",
            reported[0]
        );
        let failed = batch(
            "n",
            &schema,
            &mut decoder,
            &metadata,
            &raws,
            OnBadRecord::Fail,
            &bad,
        );
        assert!(failed.is_err(), "a bad key passed under fail");
    }
}
