//! MNEMOSYNE speed: the chunked memory operator at d = 64, one head, b = 64 (the figure
//! compared with `pytorch_chunked.py`), and the whole cell's step, chunked forward and
//! training window through [`mnnn_core::benchkit`].

use divan::{Bencher, black_box};
use mnnn_core::Rng;
use mnnn_mnemosyne::reference::unit_rows;
use mnnn_mnemosyne::standalone::{Form, linear_memory};
use ndarray::Array2;

fn main() {
    divan::main();
}

const D: usize = 64;
const T: usize = 16384;
const CHUNK: usize = 64;

fn stream() -> (Array2<f32>, Array2<f32>, Array2<f32>, Vec<f32>) {
    let mut rng = Rng::new(1);
    let mut unit = || unit_rows(&mut rng, T, D).mapv(|v| v as f32);
    let (q, k) = (unit(), unit());
    let v = Array2::from_shape_fn((T, D), |_| rng.normal() as f32);
    let theta = (0..T).map(|_| rng.uniform_in(0.05, 0.5) as f32).collect();
    (q, k, v, theta)
}

fn memory(bencher: Bencher, form: Form) {
    let (q, k, v, theta) = stream();
    let w0 = Array2::<f32>::zeros((D, D));
    bencher
        .counter(divan::counter::ItemsCount::new(T))
        .bench(|| {
            let (o, w) =
                linear_memory(q.view(), k.view(), v.view(), &theta, w0.view(), CHUNK, form);
            // Real work: the reads and the final memory are not zero.
            assert!(o[[T - 1, 0]] != 0.0 && w.iter().any(|&x| x != 0.0));
            black_box((o, w))
        });
}

/// The mini-batch dual form, one sequence.
#[divan::bench]
fn linear_dual_b64(bencher: Bencher) {
    memory(bencher, Form::Dual);
}

/// The exact delta-rule chunked form, one sequence.
#[divan::bench]
fn linear_delta_b64(bencher: Bencher) {
    memory(bencher, Form::Delta);
}

fn cell(memory: &str) -> mnnn_mnemosyne::MnemosyneCell<f32> {
    let p: mnnn_mnemosyne::MnemosyneParams =
        ron::from_str(&format!("(memory: \"{memory}\")")).expect("params");
    mnnn_mnemosyne::MnemosyneCell::new(
        &p,
        mnnn_core::Dims {
            input: 16,
            output: 4,
        },
    )
}

const MEMORIES: [&str; 3] = ["linear", "ttt_linear", "mlp"];

/// The default stack (2 blocks × 2 heads of 32, chunk 16, momentum, forget gate, surprise
/// gate, sidecar 8): one decode step for one sequence.
#[divan::bench(args = MEMORIES)]
fn cell_step(bencher: Bencher, memory: &str) {
    let mut w = mnnn_core::benchkit::StepWork::new(cell(memory), 1);
    bencher
        .counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| w.run());
}

/// The default stack's chunked forward over 256 tokens, batch 4.
#[divan::bench(args = MEMORIES)]
fn cell_chunked(bencher: Bencher, memory: &str) {
    let mut w = mnnn_core::benchkit::ChunkedWork::new(cell(memory), 4, 256, 16);
    bencher
        .counter(divan::counter::ItemsCount::new(1024usize))
        .bench_local(|| w.run());
}

/// One training step (forward, meta-gradient backward, Adam) over a 64-token window, batch 4.
#[divan::bench(args = MEMORIES)]
fn cell_train_window(bencher: Bencher, memory: &str) {
    let mut w = mnnn_core::benchkit::TrainWork::new(cell(memory), 4, 64);
    bencher
        .counter(divan::counter::ItemsCount::new(256usize))
        .bench_local(|| w.run());
}
