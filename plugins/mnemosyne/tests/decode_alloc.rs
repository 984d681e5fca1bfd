//! Decoding allocates per call, never per token: a counting allocator sees the same number
//! of allocations for a 16-token and a 512-token `predict`.

use mnnn_core::{Entry, Inputs, IoSpec};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; the count is a const-initialised thread-local
// integer, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = CALLS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = CALLS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations(f: impl FnOnce()) -> u64 {
    let before = CALLS.with(Cell::get);
    f();
    CALLS.with(Cell::get) - before
}

#[test]
fn decoding_allocates_nothing_per_token() {
    for params in [
        None,
        Some("(memory: \"linear\", chunk: 1, momentum: false, gate: \"none\")"),
        Some("(memory: \"ttt_linear\", chunk: 4)"),
    ] {
        let entry = Entry::of::<mnnn_mnemosyne::Mnemosyne>();
        let mut m = entry
            .create::<f32>(params, &IoSpec::regression(3, 1), 0)
            .unwrap();
        let xs = |n: usize| Inputs::Real(ndarray::Array2::from_elem((n, 3), 0.5f32));
        let (short, long) = (xs(16), xs(512));
        m.predict(&short).unwrap();
        let a = allocations(|| {
            m.predict(&short).unwrap();
        });
        let b = allocations(|| {
            m.predict(&long).unwrap();
        });
        assert_eq!(
            a, b,
            "{params:?}: {a} allocations for 16 tokens, {b} for 512"
        );
    }
}
