//! What every fuzz target shares: an allocator that makes one oversized
//! allocation a finding. A few hundred bytes that make weir ask for
//! gigabytes (a lying length trusted before it is checked) are a
//! denial-of-service on a real machine; without a sanitizer, libFuzzer only
//! sees such an input as a slow rise in memory and blames whichever input
//! is running when it looks.

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation a fuzz input may cause: 2 GiB, what one
/// Parquet page (its sizes are i32) or one Arrow buffer behind i32 offsets
/// can legitimately need. arrow-rs reserves a page's stated uncompressed
/// size before decompressing it; such a reservation is address space, not
/// memory, until data fills it (docs/fuzzing.md).
pub const LIMIT: usize = 2 << 30;

/// [`System`], aborting with a backtrace on an allocation over [`LIMIT`]
/// (libFuzzer then saves the input as a crash).
pub struct Capped;

fn check(size: usize) {
    if size > LIMIT {
        // Small allocations from here (the backtrace) pass the check.
        let trace = std::backtrace::Backtrace::force_capture();
        eprintln!("weir-fuzz: one allocation of {size} bytes (the limit is {LIMIT})\n{trace}");
        std::process::abort();
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// check only reads the requested size.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

/// Runs one target on one input (and links this crate's allocator in).
pub fn run(target: fn(&[u8]), data: &[u8]) {
    target(data)
}
