//! `store = "host"`: the open windows live in the host's state store
//! rather than the plugin's memory. Memory stays within the node's budget
//! however many groups are open (the store spills to disk), and a
//! checkpoint writes only the groups a batch touched since the one
//! before, where the memory store snapshots every open group every time.
//!
//! One entry per (window, group): the key is the window start (8 bytes,
//! ordered as the signed number) followed by the group's key values; the
//! value is the group's accumulators. A batch reads each group it touches
//! once and writes it back once. Emitting scans the store from its first
//! key while window starts are closed, a page at a time: keys are encoded
//! so that byte order is (window start, key) order, the order the memory
//! store emits. The plugin itself keeps only the set of open window
//! starts.

use std::collections::{BTreeMap, BTreeSet};

use weir_plugin_sdk::prelude::*;
use weir_plugin_sdk::state;

use crate::keys::Key;
use crate::{Acc, Exact};

/// Entries read per `scan` call.
const PAGE: u32 = 4096;

/// A closed (or moved) group: window start, key values, accumulators.
pub(crate) type Group = (i64, Vec<Key>, Vec<Acc>);

/// The open windows of a `store = "host"` aggregate.
#[derive(Default)]
pub(crate) struct HostWindows {
    /// Starts of the windows with groups in the store.
    starts: BTreeSet<i64>,
}

impl HostWindows {
    pub(crate) fn new(starts: impl IntoIterator<Item = i64>) -> HostWindows {
        HostWindows {
            starts: starts.into_iter().collect(),
        }
    }

    /// Starts of the windows with groups in the store, oldest first.
    pub(crate) fn starts(&self) -> Vec<i64> {
        self.starts.iter().copied().collect()
    }

    /// The accumulators of group `key` of the window at `start`, if the
    /// store has them.
    pub(crate) fn load(&self, start: i64, key: &[Key]) -> Result<Option<Vec<Acc>>> {
        if !self.starts.contains(&start) {
            return Ok(None);
        }
        state::get(&store_key(start, key))
            .map(|v| decode_accs(&v))
            .transpose()
    }

    /// Writes back the groups a batch touched.
    pub(crate) fn save(&mut self, groups: BTreeMap<(i64, Vec<Key>), Vec<Acc>>) -> Result<()> {
        let mut value = Vec::new();
        for ((start, key), accs) in groups {
            value.clear();
            encode_accs(&accs, &mut value);
            state::put(&store_key(start, &key), &value)?;
            self.starts.insert(start);
        }
        Ok(())
    }

    /// Takes every group of the windows `closed` says are complete (all
    /// of them when `closed` is always true) out of the store, in (window
    /// start, key) order, handing them to `each` a page at a time: the
    /// plugin's memory holds one page, not a whole window.
    pub(crate) fn take(
        &mut self,
        closed: impl Fn(i64) -> bool,
        mut each: impl FnMut(Vec<Group>) -> Result<()>,
    ) -> Result<()> {
        if !self.starts.first().is_some_and(|s| closed(*s)) {
            return Ok(());
        }
        // Deleted once every page is read: a write between two pages
        // would have the store order its table again for the next one.
        let mut taken = state::Keys::default();
        let mut from = Vec::new();
        loop {
            let page = state::scan(&from, PAGE);
            let full = page.len() == PAGE as usize;
            let mut groups = Vec::with_capacity(page.len());
            let mut open_window = false;
            for (key, value) in page {
                let (start, group) = decode_key(&key)?;
                if !closed(start) {
                    open_window = true;
                    break;
                }
                groups.push((start, group, decode_accs(&value)?));
                taken.push(&key)?;
                from = key;
                from.push(0);
            }
            if !groups.is_empty() {
                each(groups)?;
            }
            if open_window || !full {
                break;
            }
        }
        for key in taken.iter() {
            state::delete(key);
        }
        self.starts.retain(|s| !closed(*s));
        Ok(())
    }

    /// Moves groups the plugin kept in its own memory (a `store =
    /// "memory"` version's) into the store; how many.
    pub(crate) fn take_in(&mut self, groups: Vec<Group>) -> Result<usize> {
        let moved = groups.len();
        let map = groups.into_iter().map(|(s, k, a)| ((s, k), a)).collect();
        self.save(map)?;
        Ok(moved)
    }
}

/// The store key of group `key` in the window at `start`, ordered as
/// (start, key) is: each number big-endian with its sign bit flipped,
/// each key value after its kind's tag (in `Key`'s order), a string with
/// its zero bytes escaped and ended by two zeros.
fn store_key(start: i64, key: &[Key]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 9 * key.len());
    out.extend_from_slice(&flip64(start).to_be_bytes());
    for k in key {
        match k {
            Key::Null => out.push(0),
            Key::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Key::Int(v) => {
                out.push(2);
                out.extend_from_slice(&flip64(*v).to_be_bytes());
            }
            Key::Str(s) => {
                out.push(3);
                for &b in s.as_bytes() {
                    match b {
                        0 => out.extend_from_slice(&[0, 0xff]),
                        b => out.push(b),
                    }
                }
                out.extend_from_slice(&[0, 0]);
            }
            Key::Decimal(v) => {
                out.push(4);
                out.extend_from_slice(&((*v as u128) ^ (1 << 127)).to_be_bytes());
            }
            Key::Date(d) => {
                out.push(5);
                out.extend_from_slice(&((*d as u32) ^ (1 << 31)).to_be_bytes());
            }
        }
    }
    out
}

/// An i64 as the u64 that orders like it.
fn flip64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn damaged() -> Error {
    Error::msg("aggregate: a window's entry in the host state store is damaged")
}

/// Reads fixed-size fields off the front of an entry.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or_else(damaged)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes::<1>()?[0])
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.bytes()?))
    }

    fn i128(&mut self) -> Result<i128> {
        Ok(i128::from_le_bytes(self.bytes()?))
    }

    fn f64(&mut self) -> Result<Exact> {
        Ok(Exact(f64::from_bits(u64::from_le_bytes(self.bytes()?))))
    }

    /// An optional value: a presence byte, then the value.
    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(damaged()),
        }
    }
}

fn decode_key(bytes: &[u8]) -> Result<(i64, Vec<Key>)> {
    let mut r = Reader(bytes);
    let unflip = |v: u64| (v ^ (1 << 63)) as i64;
    let start = unflip(u64::from_be_bytes(r.bytes()?));
    let mut key = Vec::new();
    while !r.0.is_empty() {
        key.push(match r.u8()? {
            0 => Key::Null,
            1 => Key::Bool(r.u8()? != 0),
            2 => Key::Int(unflip(u64::from_be_bytes(r.bytes()?))),
            3 => {
                let mut s = Vec::new();
                loop {
                    match r.u8()? {
                        0 => match r.u8()? {
                            0 => break,
                            0xff => s.push(0),
                            _ => return Err(damaged()),
                        },
                        b => s.push(b),
                    }
                }
                Key::Str(String::from_utf8(s).map_err(|_| damaged())?)
            }
            4 => Key::Decimal((u128::from_be_bytes(r.bytes()?) ^ (1 << 127)) as i128),
            5 => Key::Date((u32::from_be_bytes(r.bytes()?) ^ (1 << 31)) as i32),
            _ => return Err(damaged()),
        });
    }
    Ok((start, key))
}

fn encode_accs(accs: &[Acc], out: &mut Vec<u8>) {
    /// A tag, then an optional value: a presence byte and its bytes.
    fn opt<const N: usize>(out: &mut Vec<u8>, tag: u8, v: Option<[u8; N]>) {
        out.push(tag);
        match v {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&b);
            }
        }
    }
    let float = |v: &Option<Exact>| v.map(|f| f.0.to_bits().to_le_bytes());
    for acc in accs {
        match acc {
            Acc::Count(n) => {
                out.push(0);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Acc::SumInt(v) => opt(out, 1, v.map(i64::to_le_bytes)),
            Acc::SumFloat(v) => opt(out, 2, float(v)),
            Acc::MinInt(v) => opt(out, 3, v.map(i64::to_le_bytes)),
            Acc::MinFloat(v) => opt(out, 4, float(v)),
            Acc::MaxInt(v) => opt(out, 5, v.map(i64::to_le_bytes)),
            Acc::MaxFloat(v) => opt(out, 6, float(v)),
            Acc::Avg(sum, n) => {
                out.push(7);
                out.extend_from_slice(&sum.0.to_bits().to_le_bytes());
                out.extend_from_slice(&n.to_le_bytes());
            }
            Acc::SumDecimal(v) => opt(out, 8, v.map(i128::to_le_bytes)),
            Acc::MinDecimal(v) => opt(out, 9, v.map(i128::to_le_bytes)),
            Acc::MaxDecimal(v) => opt(out, 10, v.map(i128::to_le_bytes)),
            Acc::AvgDecimal(sum, n) => {
                out.push(11);
                out.extend_from_slice(&sum.to_le_bytes());
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
    }
}

fn decode_accs(bytes: &[u8]) -> Result<Vec<Acc>> {
    let mut r = Reader(bytes);
    let mut accs = Vec::new();
    while !r.0.is_empty() {
        accs.push(match r.u8()? {
            0 => Acc::Count(r.i64()?),
            1 => Acc::SumInt(r.opt(Reader::i64)?),
            2 => Acc::SumFloat(r.opt(Reader::f64)?),
            3 => Acc::MinInt(r.opt(Reader::i64)?),
            4 => Acc::MinFloat(r.opt(Reader::f64)?),
            5 => Acc::MaxInt(r.opt(Reader::i64)?),
            6 => Acc::MaxFloat(r.opt(Reader::f64)?),
            7 => Acc::Avg(r.f64()?, r.i64()?),
            8 => Acc::SumDecimal(r.opt(Reader::i128)?),
            9 => Acc::MinDecimal(r.opt(Reader::i128)?),
            10 => Acc::MaxDecimal(r.opt(Reader::i128)?),
            11 => Acc::AvgDecimal(r.i128()?, r.i64()?),
            _ => return Err(damaged()),
        });
    }
    Ok(accs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_as_start_then_key_and_round_trip() {
        let s = |v: &str| Key::Str(v.into());
        let mut groups = vec![
            (i64::MIN, vec![Key::Null]),
            (-1_000, vec![s("β"), Key::Int(-3)]),
            (-1_000, vec![s("β"), Key::Int(2)]),
            (0, vec![Key::Bool(true), Key::Decimal(-12_345), Key::Date(-1)]),
            (0, vec![Key::Bool(true), Key::Decimal(7), Key::Date(19_000)]),
            (1_000, vec![]),
            (1_000, vec![s("")]),
            (1_000, vec![s("a")]),
            (1_000, vec![s("a\0")]),
            (1_000, vec![s("a\0b")]),
            (1_000, vec![s("a\u{1}")]),
            (1_000, vec![s("ab"), Key::Null]),
            (1_000, vec![s("ab"), Key::Int(i64::MIN)]),
            (i64::MAX, vec![s("b")]),
        ];
        groups.sort();
        let encoded: Vec<Vec<u8>> = groups.iter().map(|(s, k)| store_key(*s, k)).collect();
        for (w, g) in encoded.windows(2).zip(groups.windows(2)) {
            assert!(w[0] < w[1], "{:?} !< {:?}", g[0], g[1]);
        }
        for ((start, key), bytes) in groups.iter().zip(&encoded) {
            assert_eq!(&decode_key(bytes).unwrap(), &(*start, key.clone()));
        }
        // Cut inside its one string key: never a shorter valid key.
        for cut in 9..encoded[9].len() {
            assert!(decode_key(&encoded[9][..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn accumulators_round_trip_bit_exact_and_cut_entries_are_errors() {
        let accs = vec![
            Acc::Count(7),
            Acc::SumInt(None),
            Acc::SumFloat(Some(Exact(f64::from_bits(0x7ff8_0000_0000_0001)))),
            Acc::MinInt(Some(-4)),
            Acc::MinFloat(Some(Exact(-0.0))),
            Acc::MaxInt(Some(i64::MAX)),
            Acc::MaxFloat(None),
            Acc::Avg(Exact(0.1 + 0.2), 2),
            Acc::SumDecimal(Some(-(10i128.pow(37)))),
            Acc::MinDecimal(None),
            Acc::MaxDecimal(Some(5)),
            Acc::AvgDecimal(99, 3),
        ];
        let mut bytes = Vec::new();
        encode_accs(&accs, &mut bytes);
        let back = decode_accs(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{accs:?}"));
        let bits = |a: &Acc| match a {
            Acc::SumFloat(Some(f)) | Acc::MinFloat(Some(f)) | Acc::Avg(f, _) => f.0.to_bits(),
            _ => 0,
        };
        assert!(accs.iter().zip(&back).all(|(a, b)| bits(a) == bits(b)));
        for cut in 0..bytes.len() {
            let decoded = decode_accs(&bytes[..cut]);
            // A cut between two accumulators decodes to fewer of them.
            assert!(decoded.map_or(true, |d| d.len() < accs.len()));
        }
    }
}
