//! AMN (manifold 32) throughput in f32, design mode, input 16, output 4: the per-token step, one
//! full-BPTT training window of 64 steps (forward, backward, clipping, one Adam update) and
//! the chunked form over 256 steps in chunks of 64 — at hidden 32/128/512 and batch 1/32.
//! Items are tokens, so divan reports tokens per second and time / items is the per-token
//! time. The workloads are `mnnn_core::benchkit`'s, shared by every entry.
//!
//! Run with `cargo bench -p mnnn-amn`.

use divan::Bencher;
use divan::counter::ItemsCount;
use mnnn_amn::{AmnCell, AmnParams};
use mnnn_core::Dims;
use mnnn_core::benchkit::{ChunkedWork, StepWork, TrainWork};

const BATCHES: [usize; 2] = [1, 32];
const WINDOW: usize = 64;

fn main() {
    divan::main();
}

fn cell(hidden: usize) -> AmnCell<f32> {
    AmnCell::new(
        &AmnParams {
            hidden,
            manifold: 32,
            ..Default::default()
        },
        Dims {
            input: 16,
            output: 4,
        },
    )
}

/// One batched step (inference).
#[divan::bench(consts = [32, 128, 512], args = BATCHES)]
fn step<const H: usize>(bencher: Bencher, batch: usize) {
    let mut w = StepWork::new(cell(H), batch);
    bencher
        .counter(ItemsCount::new(batch))
        .bench_local(|| w.run());
}

/// One full-BPTT training step over a window of 64 steps.
#[divan::bench(consts = [32, 128, 512], args = BATCHES)]
fn train_window<const H: usize>(bencher: Bencher, batch: usize) {
    let mut w = TrainWork::new(cell(H), batch, WINDOW);
    bencher
        .counter(ItemsCount::new(WINDOW * batch))
        .bench_local(|| w.run());
}

/// The chunked form at hidden 128: 256 steps in chunks of 64.
#[divan::bench(args = BATCHES)]
fn forward_chunked(bencher: Bencher, batch: usize) {
    let mut w = ChunkedWork::new(cell(128), batch, 256, 64);
    bencher
        .counter(ItemsCount::new(256 * batch))
        .bench_local(|| w.run());
}
