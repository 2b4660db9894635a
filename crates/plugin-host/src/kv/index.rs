//! A run's block index in memory: each block's first key and its place in
//! the file, kept flat (three vectors, not an allocation a block). For
//! 16-byte keys that is ~28 bytes a block where a boxed key per block cost
//! ~64: 100 M keys in 4 KiB blocks are ~15 MB of index, held for as long
//! as the run is open and counted in the store's budget.

/// See the module's documentation.
#[derive(Debug, Default)]
pub(super) struct BlockIndex {
    /// The blocks' first keys, one after another.
    keys: Vec<u8>,
    /// Where each block's first key ends in `keys`.
    key_ends: Vec<u32>,
    /// Where each block starts in the file, and last where the data ends
    /// (the blocks are back to back).
    offsets: Vec<u64>,
}

impl BlockIndex {
    pub(super) fn len(&self) -> usize {
        self.key_ends.len()
    }

    /// Block `i`'s first key.
    pub(super) fn first(&self, i: usize) -> &[u8] {
        let start = match i {
            0 => 0,
            _ => self.key_ends[i - 1] as usize,
        };
        &self.keys[start..self.key_ends[i] as usize]
    }

    /// Block `i`'s offset in the file and length.
    pub(super) fn place(&self, i: usize) -> (u64, u64) {
        (self.offsets[i], self.offsets[i + 1] - self.offsets[i])
    }

    /// Blocks whose first key is `<= key`: the block that may hold `key`
    /// is the one before.
    pub(super) fn partition_point(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.first(mid) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Adds the next block: it starts where the one before ended (or
    /// anywhere, for the first). An error when it doesn't, or when the
    /// first keys pass 4 GiB.
    pub(super) fn push(&mut self, first: &[u8], offset: u64, len: u64) -> Result<(), String> {
        if self.offsets.last().is_some_and(|&end| end != offset) {
            return Err(format!(
                "a block at {offset} that doesn't follow the one before"
            ));
        }
        let end = u32::try_from(self.keys.len() + first.len())
            .map_err(|_| "over 4 GiB of block keys".to_string())?;
        let block_end = offset
            .checked_add(len)
            .ok_or_else(|| "a block past 2^64 bytes".to_string())?;
        if self.offsets.is_empty() {
            self.offsets.push(offset);
        }
        self.keys.extend_from_slice(first);
        self.key_ends.push(end);
        self.offsets.push(block_end);
        Ok(())
    }

    /// Lets go of the room the vectors grew into.
    pub(super) fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.key_ends.shrink_to_fit();
        self.offsets.shrink_to_fit();
    }

    /// Memory the index holds.
    pub(super) fn bytes(&self) -> usize {
        self.keys.capacity() + self.key_ends.capacity() * 4 + self.offsets.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::BlockIndex;

    #[test]
    fn blocks_are_found_by_their_first_keys_and_placed_back_to_back() {
        let mut index = BlockIndex::default();
        index.push(b"b", 0, 10).unwrap();
        index.push(b"d", 10, 5).unwrap();
        index.push(b"f", 15, 7).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!((index.first(1), index.place(1)), (&b"d"[..], (10, 5)));
        assert_eq!(index.place(2), (15, 7));
        let at = |k: &[u8]| index.partition_point(k);
        assert_eq!(
            [at(b"a"), at(b"b"), at(b"c"), at(b"d"), at(b"z")],
            [0, 1, 1, 2, 3]
        );
        assert!(index.push(b"g", 30, 1).is_err(), "a gap");
    }
}
