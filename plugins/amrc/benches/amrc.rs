//! AMRC throughput in f32, design mode, input 16, output 4: the per-token step, one
//! full-BPTT training window of 64 steps (forward, backward, clipping, one Adam update) and
//! the chunked form over 256 steps in chunks of 64 — at hidden 32/128/512 and batch 1/32.
//! Items are tokens, so divan reports tokens per second and time / items is the per-token
//! time. The benches are `mnnn_core::cell_benches!` over `mnnn_core::benchkit`'s workloads,
//! shared by every entry.
//!
//! Run with `cargo bench -p mnnn-amrc`.

use mnnn_amrc::{AmrcCell, AmrcParams};
use mnnn_core::Dims;

fn cell(hidden: usize) -> AmrcCell<f32> {
    AmrcCell::new(
        &AmrcParams {
            hidden,
            ..Default::default()
        },
        Dims {
            input: 16,
            output: 4,
        },
    )
}

mnnn_core::cell_benches!(cell);
