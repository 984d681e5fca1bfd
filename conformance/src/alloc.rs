//! A counting global allocator: per-thread net heap bytes, so the suite can see a model that
//! keeps what it streams.
//!
//! Install it in a test binary (or program) that runs the suite:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;
//! ```
//!
//! Without it the heap-growth check reports that it could not measure, and fails: a property
//! that cannot fail is a defect.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, counting live bytes per thread.
pub struct CountingAllocator;

static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // Const-initialised and without a destructor: touching it never allocates.
    static NET: Cell<i64> = const { Cell::new(0) };
}

fn add(delta: i64) {
    // `try_with` so allocations during thread teardown are simply not counted.
    let _ = NET.try_with(|n| n.set(n.get() + delta));
}

// SAFETY: every call forwards to `System` with the same arguments; the bookkeeping touches
// only a thread-local integer and an atomic flag, neither of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Net bytes this thread has allocated and not freed, if a [`CountingAllocator`] is the
/// global allocator.
pub fn thread_net_bytes() -> Option<i64> {
    // Allocate once so that an installed counter has certainly seen an allocation.
    drop(std::hint::black_box(Box::new(0u8)));
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| NET.with(|n| n.get()))
}
