//! `ttl_ms`: keys that expire, for endless streams. The seen keys are
//! kept in generations by the watermark at which they were first seen; a
//! generation spans an eighth of the TTL, and is dropped whole once the
//! watermark is `ttl_ms` past its end. So a key is forgotten between
//! `ttl_ms` and `ttl_ms × 1.125` of event time after its first row (its
//! clock starts at the watermark of the batch it arrives in, and a later
//! duplicate doesn't restart it); a row with a forgotten key is new again.
//! Without a watermark nothing expires. Without `ttl_ms` there is one
//! generation, forever.

use std::collections::VecDeque;

use weir_plugin_sdk::prelude::*;

use crate::ints::IntSet;
use crate::Seen;

/// Keys first seen from watermark `start` on (`None`: before any
/// watermark, or restored from a state that didn't say).
pub(crate) struct Generation {
    pub(crate) start: Option<i64>,
    pub(crate) seen: Seen,
}

/// The seen keys, newest generation last.
pub(crate) struct Generations {
    gens: VecDeque<Generation>,
    /// `ttl_ms` in µs (`None`: keys never expire).
    ttl: Option<i64>,
    watermark: Option<i64>,
}

impl Generations {
    /// One empty generation of int keys.
    pub(crate) fn new(ttl_ms: Option<u64>) -> Generations {
        Generations {
            gens: VecDeque::from([Generation {
                start: None,
                seen: Seen::Int(IntSet::default()),
            }]),
            ttl: ttl_ms.map(|ms| i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)),
            watermark: None,
        }
    }

    /// The one generation, when there is just one.
    pub(crate) fn only(&self) -> Option<&Seen> {
        match self.gens.len() {
            1 => self.gens.front().map(|g| &g.seen),
            _ => None,
        }
    }

    /// Every generation's keys.
    pub(crate) fn sets(&self) -> impl Iterator<Item = &Seen> {
        self.gens.iter().map(|g| &g.seen)
    }

    /// Whether no key was seen (in any generation).
    pub(crate) fn is_empty(&self) -> bool {
        self.gens.iter().all(|g| g.seen.is_empty())
    }

    /// Starts over with `seen` (the key type changed before any key came).
    pub(crate) fn reset(&mut self, seen: Seen) {
        let start = self.gens.back().and_then(|g| g.start);
        self.gens = VecDeque::from([Generation { start, seen }]);
    }

    /// The generation new keys go to, and the older ones to look in.
    pub(crate) fn split(&mut self) -> (&mut Seen, &[Generation]) {
        let gens = self.gens.make_contiguous();
        let (newest, older) = gens
            .split_last_mut()
            .expect("there is always a newest generation");
        (&mut newest.seen, older)
    }

    /// The watermark moved to `watermark`: a new generation starts when
    /// the newest is a span old, and those wholly past the TTL go; how
    /// many keys went.
    pub(crate) fn advance(&mut self, watermark: Option<i64>) -> usize {
        let (Some(ttl), Some(w)) = (self.ttl, watermark) else {
            return 0;
        };
        if self.watermark.is_some_and(|old| old >= w) {
            return 0;
        }
        self.watermark = Some(w);
        let span = (ttl / 8).max(1);
        for g in self.gens.iter_mut().filter(|g| g.start.is_none()) {
            g.start = Some(w);
        }
        let newest_start = self.gens.back().and_then(|g| g.start).unwrap_or(w);
        if w >= newest_start.saturating_add(span) {
            let seen = self
                .gens
                .back()
                .map_or(Seen::Int(IntSet::default()), |g| g.seen.empty_like());
            self.gens.push_back(Generation {
                start: Some(w),
                seen,
            });
        }
        let mut forgotten = 0;
        while self.gens.len() > 1
            && self
                .gens
                .front()
                .and_then(|g| g.start)
                .is_some_and(|s| s.saturating_add(span).saturating_add(ttl) <= w)
        {
            forgotten += self.gens.pop_front().map_or(0, |g| g.seen.len());
        }
        forgotten
    }

    /// The generations and the watermark, for a snapshot.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, seen: impl Fn(&Seen, &mut Vec<u8>)) {
        put_opt(out, self.watermark);
        out.extend_from_slice(&(self.gens.len() as u32).to_le_bytes());
        for g in &self.gens {
            put_opt(out, g.start);
            let mut bytes = Vec::new();
            seen(&g.seen, &mut bytes);
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
    }

    /// Generations from [`encode`](Self::encode)'s bytes, each set read
    /// by `seen`; kept as generations under a TTL, else merged into one.
    pub(crate) fn decode(
        bytes: &[u8],
        ttl_ms: Option<u64>,
        seen: impl Fn(&[u8]) -> Result<Seen>,
    ) -> Result<Generations> {
        let bad = || Error::msg("dedupe: the state to restore is damaged");
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8]> {
            let head = rest.get(..n).ok_or_else(bad)?;
            rest = &rest[n..];
            Ok(head)
        };
        let watermark = get_opt(&mut take)?;
        let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?);
        let mut gens = VecDeque::new();
        for _ in 0..count {
            let start = get_opt(&mut take)?;
            let len = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
            let len = usize::try_from(len).map_err(|_| bad())?;
            gens.push_back(Generation {
                start,
                seen: seen(take(len)?)?,
            });
        }
        if !rest.is_empty() || gens.is_empty() {
            return Err(bad());
        }
        let mut out = Generations::new(ttl_ms);
        out.watermark = watermark;
        out.gens = gens;
        if out.ttl.is_none() {
            out.merge()?;
        }
        Ok(out)
    }

    /// A state of one generation (from a version without generations).
    pub(crate) fn from_seen(seen: Seen, ttl_ms: Option<u64>) -> Generations {
        let mut out = Generations::new(ttl_ms);
        out.reset(seen);
        out
    }

    /// Every generation into one (`ttl_ms` was removed: keep everything).
    fn merge(&mut self) -> Result<()> {
        let Some(mut all) = self.gens.pop_back() else {
            return Ok(());
        };
        while let Some(g) = self.gens.pop_front() {
            all.seen.absorb(g.seen)?;
        }
        all.start = None;
        self.gens.push_back(all);
        Ok(())
    }
}

fn put_opt(out: &mut Vec<u8>, v: Option<i64>) {
    out.push(u8::from(v.is_some()));
    out.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
}

fn get_opt<'a>(take: &mut impl FnMut(usize) -> Result<&'a [u8]>) -> Result<Option<i64>> {
    let has = take(1)?[0];
    let v = i64::from_le_bytes(
        take(8)?
            .try_into()
            .map_err(|_| Error::msg("dedupe: the state to restore is damaged"))?,
    );
    match has {
        0 => Ok(None),
        1 => Ok(Some(v)),
        _ => Err(Error::msg("dedupe: the state to restore is damaged")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1000;

    /// Inserts `keys` under watermark `w`; which were new.
    fn feed(gens: &mut Generations, w: i64, keys: &[i64]) -> Vec<bool> {
        gens.advance(Some(w * MS));
        let (Seen::Int(newest), older) = gens.split() else {
            panic!("int keys")
        };
        newest
            .insert_all(keys, None, |k| {
                older
                    .iter()
                    .any(|g| matches!(&g.seen, Seen::Int(s) if s.contains(k)))
            })
            .iter()
            .collect()
    }

    #[test]
    fn a_key_is_a_duplicate_within_its_ttl_and_new_again_once_past_it() {
        let mut gens = Generations::new(Some(800));
        assert_eq!(feed(&mut gens, 0, &[1, 2, 1]), [true, true, false]);
        // Within the TTL, in later generations: still duplicates, and a
        // duplicate doesn't restart the key's clock.
        assert_eq!(feed(&mut gens, 300, &[1, 3]), [false, true]);
        assert_eq!(feed(&mut gens, 700, &[2, 1]), [false, false]);
        // 800 ms plus at most a span (100 ms) after the first row: gone.
        assert_eq!(feed(&mut gens, 900, &[1, 2, 3]), [true, true, false]);
        assert_eq!(feed(&mut gens, 1250, &[3]), [true]);
        assert!(gens.gens.len() <= 10, "{} generations", gens.gens.len());
    }

    #[test]
    fn without_a_watermark_or_a_ttl_nothing_expires() {
        let mut forever = Generations::new(None);
        for w in [0, 1_000_000, 9_000_000] {
            assert_eq!(feed(&mut forever, w, &[5]), [w == 0]);
        }
        assert_eq!(forever.gens.len(), 1);
        let mut no_watermark = Generations::new(Some(1));
        for _ in 0..3 {
            no_watermark.advance(None);
            let (Seen::Int(s), _) = no_watermark.split() else {
                panic!()
            };
            s.insert(Some(5));
        }
        assert_eq!(no_watermark.gens.len(), 1);
    }

    #[test]
    fn generations_survive_a_snapshot_and_merge_when_the_ttl_is_removed() {
        let mut gens = Generations::new(Some(800));
        feed(&mut gens, 0, &[1]);
        feed(&mut gens, 500, &[2]);
        let mut bytes = Vec::new();
        let int_set = |seen: &Seen, out: &mut Vec<u8>| {
            if let Seen::Int(s) = seen {
                s.encode(out)
            }
        };
        let read = |b: &[u8]| {
            IntSet::decode(b)
                .map(Seen::Int)
                .ok_or_else(|| Error::msg("damaged"))
        };
        gens.encode(&mut bytes, int_set);
        let mut back = Generations::decode(&bytes, Some(800), read).unwrap();
        assert_eq!(back.gens.len(), gens.gens.len());
        // Key 1 expires on schedule after the restore; key 2 doesn't yet.
        assert_eq!(feed(&mut back, 950, &[1, 2]), [true, false]);
        let merged = Generations::decode(&bytes, None, read).unwrap();
        assert_eq!(merged.gens.len(), 1);
        assert_eq!(merged.only().map(Seen::len), Some(2));
        assert!(Generations::decode(&bytes[..bytes.len() - 1], None, read).is_err());
    }
}
