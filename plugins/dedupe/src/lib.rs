//! `dedupe`: keeps the first row of each key, across all batches.
//!
//! ```toml
//! [transforms.unique]
//! plugin = "plugins/dedupe.wasm"
//! inputs = ["orders"]
//! config = { key = ["id"] }   # one or more columns; nulls compare equal
//! ```
//!
//! `ttl_ms = 86400000` (optional): forget a key that long after its first
//! row, in event time (the watermark), so an endless stream's key set
//! stays bounded; see `ttl.rs` for the exact rule.
//!
//! `store = "host"` (optional): keep the seen keys in the host's state
//! store instead of the plugin's memory — for key sets larger than memory
//! and cheap checkpoints (only new keys are written); see `host.rs`. The
//! default, `"memory"`, is the fastest while the keys fit. Switching a
//! running node to `"host"` moves its keys over; back to `"memory"` is
//! refused (it would forget them).
//!
//! A key may be any type — decimals, dictionaries (by value), structs,
//! lists — and a struct's field by path (`key = ["customer.id"]`).
//!
//! Only the key columns cross the boundary; the answer is a selection.
//! The set of seen keys is the plugin's state: it is handed to a successor
//! version on hot reload (`snapshot` / `restore`).

use arrow_row::{RowConverter, SortField};
// FxHash: std's SipHash guards against hash flooding, at several times
// the cost per key; a plugin's key set is bounded by its memory limit.
use rustc_hash::FxHashSet as HashSet;
use weir_plugin_sdk::arrow_array::cast::AsArray;
use weir_plugin_sdk::arrow_array::types::Int64Type;
use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::serde_json;
use weir_plugin_sdk::state::Store;

/// The `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `key`: the columns that identify a row.
    key: Vec<String>,
    /// `ttl_ms`: forget a key this long (event time) after its first row.
    #[serde(default)]
    ttl_ms: Option<u64>,
    /// `store`: where the seen keys are kept.
    #[serde(default)]
    store: Store,
}


mod host;
mod ints;
mod ttl;

use host::HostSeen;

use ints::IntSet;
use ttl::{Generation, Generations};

/// Seen keys: a fast path for one int64 column, row-encoded bytes otherwise.
enum Seen {
    Int(IntSet),
    Rows(HashSet<Box<[u8]>>),
}

impl Seen {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        match self {
            Seen::Int(s) => s.len(),
            Seen::Rows(s) => s.len(),
        }
    }

    /// An empty set of the same kind of key.
    fn empty_like(&self) -> Seen {
        match self {
            Seen::Int(_) => Seen::Int(IntSet::default()),
            Seen::Rows(_) => Seen::Rows(HashSet::default()),
        }
    }

    /// Adds every key of `other` (of the same kind).
    fn absorb(&mut self, other: Seen) -> Result<()> {
        match (self, other) {
            (Seen::Int(all), Seen::Int(some)) => {
                for k in some.values() {
                    all.insert(Some(k));
                }
                if some.has_null() {
                    all.insert(None);
                }
            }
            (Seen::Rows(all), Seen::Rows(some)) => all.extend(some),
            (all, some) if some.is_empty() || all.is_empty() => {
                if all.is_empty() {
                    *all = some;
                }
            }
            _ => return Err(Error::msg("dedupe: the state mixes key types")),
        }
        Ok(())
    }
}

/// Whether an older generation holds int key `k`.
fn in_older_int(older: &[Generation], k: Option<i64>) -> bool {
    older
        .iter()
        .any(|g| matches!(&g.seen, Seen::Int(s) if s.contains(k)))
}

/// Whether an older generation holds row key `row`.
fn in_older_row(older: &[Generation], row: &[u8]) -> bool {
    older
        .iter()
        .any(|g| matches!(&g.seen, Seen::Rows(s) if s.contains(row)))
}

struct Dedupe {
    key: Vec<String>,
    ttl_ms: Option<u64>,
    seen: Generations,
    converter: Option<RowConverter>,
    dropped: u64,
    /// `store = "host"`.
    host: Option<HostSeen>,
    /// Memory store: whether the host store was checked for keys a
    /// `store = "host"` version left there.
    checked: bool,
}

/// The key columns' rows in Arrow's row encoding (one byte string a
/// row, comparable and hashable as bytes), with the converter made once.
fn row_keys(
    converter: &mut Option<RowConverter>,
    columns: &[weir_plugin_sdk::arrow_array::ArrayRef],
) -> Result<arrow_row::Rows> {
    let converter = match converter {
        Some(c) => c,
        None => converter.insert(RowConverter::new(
            columns
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect(),
        )?),
    };
    Ok(converter.convert_columns(columns)?)
}

fn check_keys(input: &Schema, key: &[String]) -> Result<()> {
    for k in key {
        weir_plugin_sdk::path::field(input, k)
            .ok_or_else(|| Error::msg(format!("dedupe: key column {k:?} is not in the input")))?;
    }
    Ok(())
}

impl Dedupe {
    fn keep_mask(&mut self, input: &Batch<'_>) -> Result<BooleanArray> {
        let columns = self
            .key
            .iter()
            .map(|k| input.array_by_path(k))
            .collect::<Result<Vec<_>>>()?;
        if let ([column], (Seen::Int(seen), older)) = (columns.as_slice(), self.seen.split()) {
            if column.data_type() == &DataType::Int64 {
                let values = column.as_primitive::<Int64Type>();
                let keep = if older.is_empty() {
                    seen.insert_all(values.values(), values.nulls(), |_| false)
                } else {
                    seen.insert_all(values.values(), values.nulls(), |k| in_older_int(older, k))
                };
                return Ok(BooleanArray::new(keep, None));
            }
        }
        // General case: switch (once) to row-encoded keys.
        if let (Seen::Int(_), _) = self.seen.split() {
            if !self.seen.is_empty() {
                return Err(Error::msg("dedupe: the key column changed type mid-stream"));
            }
            self.seen.reset(Seen::Rows(HashSet::default()));
        }
        let rows = row_keys(&mut self.converter, &columns)?;
        let (Seen::Rows(seen), older) = self.seen.split() else {
            return Err(Error::msg("dedupe: internal state mismatch"));
        };
        Ok(rows
            .iter()
            .map(|r| Some(!in_older_row(older, r.as_ref()) && seen.insert(r.as_ref().into())))
            .collect())
    }
}

impl Transform for Dedupe {
    type Config = Config;

    fn new(config: Config) -> Result<Self> {
        if config.key.is_empty() {
            return Err(Error::msg("dedupe: `key` must name at least one column"));
        }
        if config.ttl_ms == Some(0) {
            return Err(Error::msg(
                "dedupe: `ttl_ms` must be above 0 (leave it out to keep keys forever)",
            ));
        }
        Ok(Dedupe {
            key: config.key,
            ttl_ms: config.ttl_ms,
            seen: Generations::new(config.ttl_ms),
            converter: None,
            dropped: 0,
            host: (config.store == Store::Host).then(|| HostSeen::new(config.ttl_ms)),
            checked: false,
        })
    }

    fn describe(input: &Schema, config: &Config) -> Result<Option<Schema>> {
        check_keys(input, &config.key)?;
        Ok(Some(input.clone()))
    }

    fn process(&mut self, input: &Batch<'_>) -> Result<Vec<Output>> {
        check_keys(&input.schema(), &self.key)?;
        let keep = match &mut self.host {
            Some(host) => {
                let columns = self
                    .key
                    .iter()
                    .map(|k| input.array_by_path(k))
                    .collect::<Result<Vec<_>>>()?;
                host.keep_mask(&columns)?
            }
            None => {
                if !self.checked {
                    self.checked = true;
                    if host::store_has_keys()? {
                        return Err(Error::msg(
                            "dedupe: the seen keys are in the host state store (a version with \
                             store = \"host\" ran before); keep store = \"host\", or this \
                             version would let their duplicates through",
                        ));
                    }
                }
                let forgotten = self.seen.advance(input.watermark());
                if forgotten > 0 {
                    debug!(count = forgotten; "forgot keys past their ttl_ms");
                }
                self.keep_mask(input)?
            }
        };
        let kept = keep.true_count();
        self.dropped += (keep.len() - kept) as u64;
        if kept == keep.len() {
            return Ok(vec![Output::pass()]);
        }
        Ok(vec![Output::keep(&keep)])
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        info!(count = self.dropped; "dropped duplicate rows");
        Ok(Vec::new())
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        if self.host.is_some() {
            // The host store is the state; it is in the snapshot anyway.
            return Ok(None);
        }
        // Without `ttl_ms`, the one generation in the format of the
        // versions before generations, which they restore.
        if let (None, Some(seen)) = (self.ttl_ms, self.seen.only()) {
            return Ok(Some(encode(seen)));
        }
        let mut out = MAGIC_GENERATIONS.to_vec();
        self.seen
            .encode(&mut out, |seen, out| out.extend_from_slice(&encode(seen)));
        Ok(Some(out))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let seen = match state.strip_prefix(MAGIC_GENERATIONS) {
            Some(rest) => Generations::decode(rest, self.ttl_ms, decode)?,
            None => Generations::from_seen(decode(state)?, self.ttl_ms),
        };
        match &mut self.host {
            Some(host) => {
                let moved = host.take_in(&seen)?;
                info!(count = moved; "moved the seen keys into the host state store");
            }
            None => self.seen = seen,
        }
        Ok(())
    }
}

/// The snapshot's first bytes: a checkpoint holds the whole key set every
/// interval, so it is packed (8 bytes an int key, length + bytes a row
/// key) rather than JSON — several times smaller and faster both ways.
const MAGIC: &[u8; 4] = b"WDD1";
/// An int key set with its bitmaps (`ints::IntSet::encode`); versions
/// before it restore from `WDD1` and JSON still.
const MAGIC_INTS: &[u8; 4] = b"WDD2";
/// Generations of keys with their watermarks (`ttl_ms`), each set as
/// `encode` writes it.
const MAGIC_GENERATIONS: &[u8; 4] = b"WDG1";

fn encode(seen: &Seen) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    match seen {
        Seen::Int(set) => {
            out = MAGIC_INTS.to_vec();
            set.encode(&mut out);
        }
        // Row bytes depend only on the key types, which a successor with
        // the same config shares.
        Seen::Rows(set) => {
            out.push(1);
            out.extend_from_slice(&(set.len() as u64).to_le_bytes());
            for row in set {
                out.extend_from_slice(&(row.len() as u32).to_le_bytes());
                out.extend_from_slice(row);
            }
        }
    }
    out
}

fn decode(state: &[u8]) -> Result<Seen> {
    let bad = || Error::msg("dedupe: the state to restore is damaged");
    if let Some(ints) = state.strip_prefix(MAGIC_INTS) {
        return IntSet::decode(ints).map(Seen::Int).ok_or_else(bad);
    }
    let Some(rest) = state.strip_prefix(MAGIC) else {
        return decode_json(state);
    };
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head.to_vec())
    };
    let mut rest = rest;
    let tag = take(&mut rest, 1)?[0];
    match tag {
        0 => {
            let has_null = take(&mut rest, 1)?[0] == 1;
            let _count = take(&mut rest, 8)?;
            if rest.len() % 8 != 0 {
                return Err(bad());
            }
            let values = rest
                .chunks_exact(8)
                .map(|chunk| chunk.try_into().map(i64::from_le_bytes).map_err(|_| bad()))
                .collect::<Result<Vec<i64>>>()?;
            Ok(Seen::Int(IntSet::from_values(&values, has_null)))
        }
        1 => {
            let count = u64::from_le_bytes(take(&mut rest, 8)?.try_into().map_err(|_| bad())?);
            let mut set: HashSet<Box<[u8]>> = HashSet::default();
            for _ in 0..count {
                let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().map_err(|_| bad())?);
                set.insert(take(&mut rest, len as usize)?.into_boxed_slice());
            }
            Ok(Seen::Rows(set))
        }
        _ => Err(bad()),
    }
}

/// The JSON state of earlier versions, so a hot reload from one still
/// keeps its keys.
fn decode_json(state: &[u8]) -> Result<Seen> {
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum State {
        Int(Vec<Option<i64>>),
        Rows(Vec<Vec<u8>>),
    }
    Ok(match serde_json::from_slice::<State>(state)? {
        State::Int(v) => {
            let values: Vec<i64> = v.iter().flatten().copied().collect();
            Seen::Int(IntSet::from_values(&values, v.contains(&None)))
        }
        State::Rows(v) => Seen::Rows(v.into_iter().map(Vec::into_boxed_slice).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_state_round_trips_int_and_row_keys_and_reads_the_old_json() {
        let mut ints = IntSet::default();
        for k in [Some(-3), None, Some(i64::MAX)] {
            ints.insert(k);
        }
        let Seen::Int(back) = decode(&encode(&Seen::Int(ints))).unwrap() else {
            panic!("not ints")
        };
        let mut values: Vec<i64> = back.values().collect();
        values.sort_unstable();
        assert_eq!(values, [-3, i64::MAX]);
        assert!(back.has_null() && back.len() == 3);
        let rows: HashSet<Box<[u8]>> = [b"a".to_vec(), Vec::new()]
            .into_iter()
            .map(Vec::into_boxed_slice)
            .collect();
        let Seen::Rows(back) = decode(&encode(&Seen::Rows(rows.clone()))).unwrap() else {
            panic!("not rows")
        };
        assert_eq!(back, rows);
        let Seen::Int(old) = decode(br#"{"int": [1, null]}"#).unwrap() else {
            panic!("not ints")
        };
        assert_eq!(old.values().collect::<Vec<_>>(), [1]);
        assert!(old.has_null());
        assert!(decode(b"WDD1\x00\x00\x01").is_err());
        // The packed form of the version before the bitmaps: null flag,
        // count, then 8 bytes a key.
        let mut wdd1 = b"WDD1\x00\x01".to_vec();
        wdd1.extend_from_slice(&3u64.to_le_bytes());
        for k in [7i64, -2] {
            wdd1.extend_from_slice(&k.to_le_bytes());
        }
        let Seen::Int(older) = decode(&wdd1).unwrap() else {
            panic!("not ints")
        };
        let mut values: Vec<i64> = older.values().collect();
        values.sort_unstable();
        assert_eq!(values, [-2, 7]);
        assert!(older.has_null() && older.len() == 3);
        assert!(decode(b"WDD2\x02").is_err());
    }
}

weir_plugin_sdk::export!(Dedupe);
