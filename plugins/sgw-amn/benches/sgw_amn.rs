//! SGW-AMN (pre = post = hidden, workspace 16, manifold 64) throughput in f32, design mode,
//! input 16, output 4: the per-token step, one full-BPTT training window of 64 steps
//! (forward, backward, clipping, one Adam update) and the chunked form over 256 steps in
//! chunks of 64 — at hidden 32/128/512 and batch 1/32. Items are tokens, so divan reports
//! tokens per second and time / items is the per-token time. The benches are
//! `mnnn_core::cell_benches!` over `mnnn_core::benchkit`'s workloads, shared by every entry.
//!
//! Run with `cargo bench -p mnnn-sgw-amn`.

use mnnn_core::Dims;
use mnnn_sgw_amn::{SgwAmnCell, SgwAmnParams};

fn cell(hidden: usize) -> SgwAmnCell<f32> {
    SgwAmnCell::new(
        &SgwAmnParams {
            pre: hidden,
            workspace: 16,
            post: hidden,
            manifold: 64,
            ..Default::default()
        },
        Dims {
            input: 16,
            output: 4,
        },
    )
}

mnnn_core::cell_benches!(cell);
