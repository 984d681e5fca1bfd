//! The program's allocator: the conformance suite's per-thread counter, plus the process's
//! live heap and its peak, so `mnnn compare` can give each row the peak of its own run.
//!
//! Chosen over a child process per run because the figure is then the heap the model's run
//! needed, in bytes, on every platform, with no re-spawn of the program or transfer of data
//! between processes; resident-set marks (`VmHWM`) only ever rise for a process, count pages
//! the allocator keeps after frees, and exist only on Linux.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// [`mnnn_conformance::CountingAllocator`] with a process-wide live count and peak.
pub struct PeakAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
}

const INNER: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

// SAFETY: every call forwards to the counting allocator (itself `System`) with the same
// arguments; the bookkeeping only touches two atomics, which never allocate.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { INNER.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { INNER.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { INNER.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Sets the peak to the bytes live now and returns them.
pub fn reset() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The most live heap bytes since the last [`reset`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The probe `mnnn compare` reads each solo run's peak with.
pub const PROBE: mnnn_zoo::compare::MemoryProbe = mnnn_zoo::compare::MemoryProbe { reset, peak };

#[cfg(test)]
mod tests {
    use super::*;

    /// The peak is the run's own: what an earlier, larger allocation held does not carry
    /// over once it is freed and the mark reset. (The unit tests run with the system
    /// allocator, so this drives the counters directly.)
    #[test]
    fn a_reset_forgets_what_earlier_runs_held() {
        let base = reset();
        grew(500 << 20);
        shrank(500 << 20);
        assert!(peak() >= base + (500 << 20));
        let (_, mib) = PROBE.measure(|| {
            grew(3 << 20);
            shrank(3 << 20);
        });
        assert!((3.0..4.0).contains(&mib), "{mib}");
    }
}
