//! Avro values in the Confluent wire format (magic byte 0, a 4-byte
//! big-endian schema id, the Avro body), decoded and encoded by
//! arrow-avro straight to and from Arrow columns.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};

use super::registry::{Registry, RegistryConfig};
use super::Raw;
use crate::{Error, Result};

/// Decodes framed records whose writer schemas the registry holds, all
/// read as one reader schema.
pub(crate) struct AvroDecoder {
    registry: Registry,
    reader: AvroSchema,
    store: SchemaStore,
    decoder: Decoder,
    schema: SchemaRef,
}

/// The schema id of a Confluent-framed value.
pub(crate) fn frame_id(value: &[u8]) -> Option<u32> {
    match value {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

impl AvroDecoder {
    pub(crate) fn new(
        node: &str,
        config: &RegistryConfig,
        topics: &[String],
    ) -> Result<AvroDecoder> {
        let fail = |e: String| Error::source(node, format!("registry: {e}"));
        let mut registry = Registry::new(config).map_err(fail)?;
        let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
        let reader = match &config.reader_schema {
            Some(schema) => schema.clone(),
            None => {
                let subject = match (&config.subject, topics) {
                    (Some(s), _) => s.clone(),
                    (None, [topic]) if !topic.starts_with('^') => format!("{topic}-value"),
                    _ => {
                        return Err(Error::source(
                            node,
                            "registry: with several topics (or a pattern), name the reader \
                             schema's `subject` or give `reader_schema`",
                        ))
                    }
                };
                let (id, schema) = registry.latest(&subject).map_err(fail)?;
                store
                    .set(Fingerprint::Id(id), AvroSchema::new(schema.clone()))
                    .map_err(|e| fail(e.to_string()))?;
                schema
            }
        };
        let reader = AvroSchema::new(reader);
        let decoder = build(&reader, &store).map_err(fail)?;
        let schema = decoder.schema();
        Ok(AvroDecoder {
            registry,
            reader,
            store,
            decoder,
            schema,
        })
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Fetches the writer schemas of `rows` the store lacks.
    fn learn(&mut self, raws: &[Raw], rows: &[usize]) -> std::result::Result<(), (usize, String)> {
        let mut grew = false;
        for &i in rows {
            let Some(id) = raws[i].value.as_deref().and_then(frame_id) else {
                continue;
            };
            if self.store.lookup(&Fingerprint::Id(id)).is_some() {
                continue;
            }
            let schema = self.registry.schema(id).map_err(|e| (i, e))?;
            self.store
                .set(Fingerprint::Id(id), AvroSchema::new(schema))
                .map_err(|e| (i, e.to_string()))?;
            grew = true;
        }
        if grew {
            self.rebuild().map_err(|e| (rows[0], e))?;
        }
        Ok(())
    }

    fn rebuild(&mut self) -> std::result::Result<(), String> {
        self.decoder = build(&self.reader, &self.store)?;
        Ok(())
    }

    /// Decodes `raws[i]` for each `i` in `rows`; `Err` names the first
    /// record it could not (the decoder starts clean after one).
    pub(crate) fn decode(
        &mut self,
        raws: &[Raw],
        rows: &[usize],
    ) -> std::result::Result<RecordBatch, (usize, String)> {
        self.learn(raws, rows)?;
        let result = self.decode_known(raws, rows);
        if result.is_err() {
            // A half-decoded record must not leak into the next call.
            self.rebuild()
                .map_err(|e| (rows.first().copied().unwrap_or(0), e))?;
        }
        result
    }

    fn decode_known(
        &mut self,
        raws: &[Raw],
        rows: &[usize],
    ) -> std::result::Result<RecordBatch, (usize, String)> {
        let mut batches = Vec::new();
        for &i in rows {
            let value = raws[i].value.as_deref().ok_or((
                i,
                "no value (a tombstone); an Avro record needs one".to_string(),
            ))?;
            if frame_id(value).is_none() {
                return Err((
                    i,
                    "not in the Confluent wire format (magic byte 0, then a 4-byte schema id)"
                        .into(),
                ));
            }
            let mut at = 0;
            let mut stalled = false;
            while at < value.len() {
                let used = self
                    .decoder
                    .decode(&value[at..])
                    .map_err(|e| (i, e.to_string()))?;
                at += used;
                if at < value.len() {
                    // A full batch, or a record of another writer schema
                    // after rows of the last one: the decoder switches
                    // only between batches.
                    if used == 0 && stalled {
                        let left = value.len() - at;
                        return Err((i, format!("{left} bytes after the Avro record")));
                    }
                    stalled = used == 0;
                    batches.extend(self.decoder.flush().map_err(|e| (i, e.to_string()))?);
                }
            }
            if self.decoder.batch_is_full() {
                batches.extend(self.decoder.flush().map_err(|e| (i, e.to_string()))?);
            }
        }
        let last = rows.last().copied().unwrap_or(0);
        batches.extend(self.decoder.flush().map_err(|e| (last, e.to_string()))?);
        arrow::compute::concat_batches(&self.schema, &batches).map_err(|e| (last, e.to_string()))
    }
}

fn build(reader: &AvroSchema, store: &SchemaStore) -> std::result::Result<Decoder, String> {
    ReaderBuilder::new()
        .with_batch_size(8192)
        .with_reader_schema(reader.clone())
        .with_writer_schema_store(store.clone())
        .build_decoder()
        .map_err(|e| format!("the Avro schema: {e}"))
}
