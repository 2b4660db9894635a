//! Rows to Kafka records: the topic, partition, key and headers from
//! columns, the value by `format`.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_avro::schema::{AvroSchema, FingerprintStrategy, SCHEMA_METADATA_KEY};
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_avro::writer::{Encoder, WriterBuilder};

use super::KafkaSinkConfig;
use crate::kafka::registry::Registry;
use crate::kafka::Format;
use crate::{Error, Result};

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rec {
    pub topic: Arc<str>,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Turns batches into records; built at the first batch (the schema
/// decides the value's columns and, for Avro, the registered schema).
pub(crate) struct RecordEncoder {
    node: String,
    topic: Option<Arc<str>>,
    topic_column: Option<usize>,
    partition_column: Option<usize>,
    key: Vec<usize>,
    headers: Vec<(String, usize)>,
    /// The columns the value is made of.
    value_columns: Vec<usize>,
    value_schema: SchemaRef,
    value: ValueEncoder,
}

enum ValueEncoder {
    Json,
    Text,
    Bytes,
    Avro(Box<Encoder>),
}

fn column(node: &str, schema: &Schema, name: &str, key: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| {
        Error::sink(
            node,
            format!(
                "`{key}` names column {name:?}, which the input does not have (it has {:?})",
                schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
            ),
        )
    })
}

impl RecordEncoder {
    pub(crate) fn new(
        node: &str,
        config: &KafkaSinkConfig,
        schema: &SchemaRef,
    ) -> Result<RecordEncoder> {
        let topic_column = config
            .topic_column
            .as_deref()
            .map(|c| column(node, schema, c, "topic_column"))
            .transpose()?;
        let partition_column = config
            .partition_column
            .as_deref()
            .map(|c| column(node, schema, c, "partition_column"))
            .transpose()?;
        let key = config
            .key
            .iter()
            .map(|c| column(node, schema, c, "key"))
            .collect::<Result<Vec<_>>>()?;
        let headers = config
            .headers
            .iter()
            .map(|c| Ok((c.clone(), column(node, schema, c, "headers")?)))
            .collect::<Result<Vec<_>>>()?;
        // The topic and partition columns route the record; the rest is
        // the value (the key columns too: a consumer reading the value
        // alone sees the whole row).
        let routing: Vec<usize> = topic_column.into_iter().chain(partition_column).collect();
        let value_columns: Vec<usize> = match (config.format, &config.value_column) {
            (_, Some(name)) => vec![column(node, schema, name, "value_column")?],
            (Format::String | Format::Bytes, None) => {
                let rest: Vec<usize> = (0..schema.fields().len())
                    .filter(|i| {
                        !routing.contains(i)
                            && !key.contains(i)
                            && !headers.iter().any(|(_, h)| h == i)
                    })
                    .collect();
                if rest.len() != 1 {
                    return Err(Error::sink(
                        node,
                        format!(
                            "format = \"{}\" writes one column as the value, and {} are left \
                             after key, headers and routing: name it with `value_column`",
                            if config.format == Format::String {
                                "string"
                            } else {
                                "bytes"
                            },
                            rest.len()
                        ),
                    ));
                }
                rest
            }
            _ => (0..schema.fields().len())
                .filter(|i| !routing.contains(i))
                .collect(),
        };
        let value_schema = Arc::new(
            schema
                .project(&value_columns)
                .map_err(|e| Error::sink_from(node, "the value's columns", e))?,
        );
        let value = match config.format {
            Format::Json => ValueEncoder::Json,
            Format::String => {
                if !matches!(
                    value_schema.field(0).data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) {
                    return Err(Error::sink(
                        node,
                        format!(
                            "format = \"string\": column {:?} is {}, not text",
                            value_schema.field(0).name(),
                            value_schema.field(0).data_type()
                        ),
                    ));
                }
                ValueEncoder::Text
            }
            Format::Bytes => {
                if !matches!(
                    value_schema.field(0).data_type(),
                    DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                ) {
                    return Err(Error::sink(
                        node,
                        format!(
                            "format = \"bytes\": column {:?} is {}, not binary",
                            value_schema.field(0).name(),
                            value_schema.field(0).data_type()
                        ),
                    ));
                }
                ValueEncoder::Bytes
            }
            Format::Avro => {
                ValueEncoder::Avro(Box::new(avro_encoder(node, config, &value_schema)?))
            }
        };
        Ok(RecordEncoder {
            node: node.to_string(),
            topic: config.topic.as_deref().map(Arc::from),
            topic_column,
            partition_column,
            key,
            headers,
            value_columns,
            value_schema,
            value,
        })
    }

    /// The records of `batch`, in row order.
    pub(crate) fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Rec>> {
        let rows = batch.num_rows();
        let fail =
            |what: &str, e: &dyn std::fmt::Display| Error::sink(&self.node, format!("{what}: {e}"));
        let values = batch
            .project(&self.value_columns)
            .map_err(|e| fail("the value's columns", &e))?;
        let values = RecordBatch::try_new(self.value_schema.clone(), values.columns().to_vec())
            .map_err(|e| fail("the value's columns", &e))?;
        let encoded: Vec<Option<Vec<u8>>> = match &mut self.value {
            ValueEncoder::Json => json_rows(&values).map_err(|e| fail("encoding JSON", &e))?,
            ValueEncoder::Text | ValueEncoder::Bytes => raw_rows(values.column(0).as_ref()),
            ValueEncoder::Avro(encoder) => {
                encoder
                    .encode(&values)
                    .map_err(|e| fail("encoding Avro", &e))?;
                encoder.flush().iter().map(|b| Some(b.to_vec())).collect()
            }
        };
        let options = FormatOptions::default();
        let text = |i: usize| ArrayFormatter::try_new(batch.column(i).as_ref(), &options);
        let topics = self.topic_column.map(|i| batch.column(i).clone());
        let partitions = match self.partition_column {
            Some(i) => Some(
                // Not `safe`: a partition out of int32's range is an
                // error, never a null the partitioner would overrule.
                arrow::compute::cast_with_options(
                    batch.column(i),
                    &DataType::Int32,
                    &arrow::compute::CastOptions {
                        safe: false,
                        ..Default::default()
                    },
                )
                .map_err(|e| fail("partition_column", &e))?,
            ),
            None => None,
        };
        let key = match self.key.as_slice() {
            [] => None,
            [one] => Some(raw_or_text(batch.column(*one).as_ref())),
            many => {
                let keys = batch
                    .project(many)
                    .map_err(|e| fail("the key's columns", &e))?;
                Some(json_rows(&keys).map_err(|e| fail("encoding the key", &e))?)
            }
        };
        let header_text = self
            .headers
            .iter()
            .map(|(name, i)| Ok((name.clone(), raw_or_text(batch.column(*i).as_ref()))))
            .collect::<Result<Vec<_>>>()?;
        let _ = text;
        let mut out = Vec::with_capacity(rows);
        if encoded.len() != rows {
            // A value per row, or the rows would go out misaligned.
            return Err(fail(
                "encoding values",
                &format!("{} values for {rows} rows", encoded.len()),
            ));
        }
        for (row, value) in encoded.into_iter().enumerate() {
            let topic = match (&topics, &self.topic) {
                (Some(t), _) => {
                    let t = raw_or_text_at(t.as_ref(), row).ok_or_else(|| {
                        fail("topic_column", &format!("row {row} has no topic (null)"))
                    })?;
                    let name = String::from_utf8(t).map_err(|_| {
                        fail(
                            "topic_column",
                            &format!("row {row}'s topic is not UTF-8 text"),
                        )
                    })?;
                    Arc::from(name.as_str())
                }
                (None, Some(t)) => t.clone(),
                (None, None) => {
                    return Err(fail("topic", &"neither `topic` nor `topic_column` is set"))
                }
            };
            out.push(Rec {
                topic,
                partition: partitions.as_ref().and_then(|p| {
                    let p = p.as_primitive::<arrow::datatypes::Int32Type>();
                    p.is_valid(row).then(|| p.value(row))
                }),
                key: key.as_ref().and_then(|k| k[row].clone()),
                value,
                headers: header_text
                    .iter()
                    .filter_map(|(name, v)| v[row].clone().map(|v| (name.clone(), v)))
                    .collect(),
            });
        }
        Ok(out)
    }
}

/// Each row as a JSON object (nulls left out, as arrow-json writes them).
fn json_rows(
    batch: &RecordBatch,
) -> std::result::Result<Vec<Option<Vec<u8>>>, arrow::error::ArrowError> {
    let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    let bytes = writer.into_inner();
    // A JSON text holds no raw newline (strings escape it): one line per row.
    let rows: Vec<Option<Vec<u8>>> = bytes
        .split(|b| *b == b'\n')
        .take(batch.num_rows())
        .map(|line| Some(line.to_vec()))
        .collect();
    Ok(rows)
}

/// Text and binary columns as their bytes.
fn raw_rows(array: &dyn Array) -> Vec<Option<Vec<u8>>> {
    (0..array.len()).map(|i| raw_or_text_at(array, i)).collect()
}

/// A column's values as bytes: text and binary as they are, anything
/// else as arrow prints it (`42`, `2024-01-02T03:04:05`).
fn raw_or_text(array: &dyn Array) -> Vec<Option<Vec<u8>>> {
    (0..array.len()).map(|i| raw_or_text_at(array, i)).collect()
}

fn raw_or_text_at(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    if array.is_null(i) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).as_bytes().to_vec(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).as_bytes().to_vec(),
        DataType::Utf8View => array.as_string_view().value(i).as_bytes().to_vec(),
        DataType::Binary => array.as_binary::<i32>().value(i).to_vec(),
        DataType::LargeBinary => array.as_binary::<i64>().value(i).to_vec(),
        DataType::BinaryView => array.as_binary_view().value(i).to_vec(),
        _ => {
            let options = FormatOptions::default();
            match ArrayFormatter::try_new(array, &options) {
                Ok(f) => f.value(i).to_string().into_bytes(),
                Err(_) => return None,
            }
        }
    })
}

/// An encoder of Confluent-framed Avro with the schema registered (or
/// named by `registry.schema_id`).
fn avro_encoder(node: &str, config: &KafkaSinkConfig, schema: &SchemaRef) -> Result<Encoder> {
    let fail = |e: String| Error::sink(node, format!("registry: {e}"));
    let registry_config = config.registry.as_ref().ok_or_else(|| {
        Error::sink(
            node,
            "a kafka sink with format = \"avro\" needs `registry = { url = \"http://…:8081\" }`",
        )
    })?;
    let mut registry = Registry::new(registry_config).map_err(fail)?;
    let mut arrow_schema = schema.as_ref().clone();
    let id = match registry_config.schema_id {
        Some(id) => {
            let json = registry.schema(id).map_err(fail)?;
            arrow_schema
                .metadata
                .insert(SCHEMA_METADATA_KEY.to_string(), json);
            id
        }
        None => {
            let subject = match (&registry_config.subject, &config.topic) {
                (Some(s), _) => s.clone(),
                (None, Some(topic)) => format!("{topic}-value"),
                (None, None) => {
                    return Err(Error::sink(
                        node,
                        "registry: with `topic_column`, name the value schema's `subject`",
                    ))
                }
            };
            let avro = AvroSchema::try_from(&arrow_schema)
                .map_err(|e| fail(format!("no Avro schema for the input's columns: {e}")))?;
            registry
                .register(&subject, &avro.json_string)
                .map_err(fail)?
        }
    };
    WriterBuilder::new(arrow_schema)
        .with_fingerprint_strategy(FingerprintStrategy::Id(id))
        .build_encoder::<AvroSoeFormat>()
        .map_err(|e| fail(format!("the Avro encoder: {e}")))
}
