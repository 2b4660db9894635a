//! Recycled memory for the large buffers a plugin returns.
//!
//! A buffer of a megabyte or more is mapped fresh by malloc (the `weir`
//! binary fixes glibc's mmap threshold at 1 MiB), so copying a plugin's
//! column into one costs a page fault and the kernel zeroing each page
//! before the copy writes it: an 8 MiB int64 column's round trip ran at
//! 4 % of `memcpy` that way, against 39 % into memory already mapped
//! (BENCHMARKS.md, "The plugin boundary"). Blocks here are kept when
//! their buffer is dropped, wherever that happens (usually the sink's
//! thread), and handed to the next copy of the same size class: the pages
//! stay mapped and are written once.
//!
//! Size classes are powers of two from [`POOL_FROM`]; at most
//! [`POOL_IDLE_MAX`] bytes wait idle in the whole process: past it the
//! blocks idle longest go back to the allocator.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use arrow::buffer::{Buffer, MutableBuffer};

/// Buffers from this size on come from the pool.
pub const POOL_FROM: usize = 1 << 20;
/// Bytes of idle blocks the process keeps at most.
pub const POOL_IDLE_MAX: usize = 64 << 20;
/// Arrow's alignment: any value type's, and a cache line's.
const ALIGN: usize = 64;

/// A block of `class` bytes, free.
struct Idle {
    ptr: NonNull<u8>,
    class: usize,
}

// SAFETY: an idle block is memory nobody else points to; the pool hands
// it to one buffer at a time.
#[allow(unsafe_code)]
unsafe impl Send for Idle {}

struct Pool {
    idle: Vec<Idle>,
    idle_bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: Vec::new(),
    idle_bytes: 0,
});

/// The memory behind one pooled [`Buffer`]; back to the pool when the
/// last clone of the buffer is dropped.
struct Block {
    ptr: NonNull<u8>,
    class: usize,
}

// SAFETY: the block's memory is written once, before the buffer that
// reads it exists, and only read after; the pointer is never handed out
// otherwise.
#[allow(unsafe_code)]
unsafe impl Send for Block {}
#[allow(unsafe_code)]
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        give_back(Idle {
            ptr: self.ptr,
            class: self.class,
        });
    }
}

fn layout(class: usize) -> Option<Layout> {
    Layout::from_size_align(class, ALIGN).ok()
}

/// An idle block of `class` bytes, else a new one (`None` if the
/// allocator refuses).
fn take(class: usize) -> Option<NonNull<u8>> {
    if let Ok(mut pool) = POOL.lock() {
        if let Some(i) = pool.idle.iter().rposition(|b| b.class == class) {
            let block = pool.idle.remove(i);
            pool.idle_bytes -= class;
            return Some(block.ptr);
        }
    }
    // SAFETY: the layout's size is at least POOL_FROM, never zero.
    #[allow(unsafe_code)]
    let ptr = unsafe { std::alloc::alloc(layout(class)?) };
    NonNull::new(ptr)
}

/// Keeps `block` idle, making room by freeing the blocks idle longest:
/// the sizes a pipeline uses now matter, not those it used once.
fn give_back(block: Idle) {
    if block.class > POOL_IDLE_MAX {
        return free(block);
    }
    let Ok(mut pool) = POOL.lock() else {
        return free(block);
    };
    let mut freed = Vec::new();
    while pool.idle_bytes + block.class > POOL_IDLE_MAX && !pool.idle.is_empty() {
        let oldest = pool.idle.remove(0);
        pool.idle_bytes -= oldest.class;
        freed.push(oldest);
    }
    pool.idle_bytes += block.class;
    pool.idle.push(block);
    drop(pool);
    freed.into_iter().for_each(free);
}

fn free(block: Idle) {
    if let Some(layout) = layout(block.class) {
        // SAFETY: allocated by `take` with this very layout, and no
        // buffer points to it any more.
        #[allow(unsafe_code)]
        unsafe {
            std::alloc::dealloc(block.ptr.as_ptr(), layout)
        };
    }
}

/// `bytes` copied once into an Arrow buffer aligned for any value type:
/// pooled memory from [`POOL_FROM`] bytes on, else a fresh allocation.
pub fn copy(bytes: &[u8]) -> Buffer {
    if bytes.len() >= POOL_FROM {
        if let Some(class) = bytes.len().checked_next_power_of_two() {
            if let Some(ptr) = take(class) {
                // SAFETY: `ptr` holds `class` >= `bytes.len()` writable
                // bytes no one else uses, and cannot overlap `bytes`,
                // which is borrowed.
                #[allow(unsafe_code)]
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr(), bytes.len());
                }
                let owner = Arc::new(Block { ptr, class });
                // SAFETY: the first `bytes.len()` bytes at `ptr` are
                // initialized, and `owner` keeps them alive and unchanged
                // until the buffer's last clone is gone.
                #[allow(unsafe_code)]
                return unsafe { Buffer::from_custom_allocation(ptr, bytes.len(), owner) };
            }
        }
    }
    let mut buffer = MutableBuffer::new(bytes.len());
    buffer.extend_from_slice(bytes);
    buffer.into()
}

/// Bytes of idle blocks now.
#[cfg(test)]
fn idle_bytes() -> usize {
    POOL.lock().map(|p| p.idle_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the pool is the process's, and tests run in parallel.
    #[test]
    fn a_large_buffer_is_copied_exactly_and_its_memory_reused_within_the_idle_cap() {
        let small = copy(&[1, 2, 3]);
        assert_eq!(small.as_slice(), &[1, 2, 3]);

        let data: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
        let first = copy(&data);
        assert_eq!(first.as_slice(), &data[..]);
        assert_eq!(first.as_ptr() as usize % ALIGN, 0);
        let at = first.as_ptr();
        let clone = first.clone();
        drop(first);
        assert_eq!(clone.as_slice(), &data[..], "alive while a clone is");
        drop(clone);
        assert!(idle_bytes() >= 4 << 20);
        // The same class again takes the idle block (no other unit test
        // copies a megabyte).
        let again = copy(&data[..(3 << 20) - 5]);
        assert_eq!(again.as_slice(), &data[..(3 << 20) - 5]);
        assert_eq!(again.as_ptr(), at);

        // Past the cap, the blocks idle longest go back to the allocator.
        let huge: Vec<Buffer> = (0..3)
            .map(|_| copy(&vec![7u8; (POOL_IDLE_MAX / 2) + 1]))
            .collect();
        drop(huge);
        assert!(idle_bytes() <= POOL_IDLE_MAX);
    }
}
