//! LSTM and GRU throughput in f32 at PyTorch's comparison sizes: input 16, hidden 128, a
//! linear read-out to 4 outputs, batch 1 and 32, over one window of 1024 steps — forward
//! alone, and forward + backward (full BPTT through the window, gradients of every weight and
//! of the inputs). Items are tokens (steps × sequences), so divan's throughput is tokens/s.
//! `benches/torch_rnn.py` runs the same work in PyTorch.
//!
//! Run with `cargo bench -p mnnn-rnn` (one thread, to compare with `benches/torch_rnn.py
//! --threads 1`), and `RAYON_NUM_THREADS=2 cargo bench -p mnnn-rnn`, where the LSTM's steps
//! at batch 1 take two threads (to compare with `--threads 2`); everything else runs on the
//! calling thread.

use divan::Bencher;
use divan::counter::ItemsCount;
use mnnn_core::cell::{Cell, Dims};
use mnnn_core::{Rng, Tensors, init};
use mnnn_rnn::{Kind, RnnCell, RnnParams, Tape};
use ndarray::Array3;

const STEPS: usize = 1024;
const INPUT: usize = 16;
const HIDDEN: usize = 128;
const OUTPUT: usize = 4;

fn main() {
    divan::main();
}

struct Work {
    cell: RnnCell,
    p: Tensors<f32>,
    grads: Tensors<f32>,
    state: Tensors<f32>,
    dstate: Tensors<f32>,
    xs: Array3<f32>,
    ys: Array3<f32>,
    dys: Array3<f32>,
    dxs: Array3<f32>,
    tape: Tape<f32>,
}

impl Work {
    fn new(kind: Kind, b: usize) -> Self {
        let dims = Dims {
            input: INPUT,
            output: OUTPUT,
        };
        let p = RnnParams {
            hidden: HIDDEN,
            layers: 1,
        };
        let cell = RnnCell::new(kind, &p, dims);
        let mut params = Tensors::zeros(Cell::<f32>::param_layout(&cell));
        let mut rng = Rng::new(1);
        cell.init_params(&mut rng, &mut params);
        let state = Tensors::zeros(Cell::<f32>::state_layout(&cell).batched(b));
        let mut xs = Array3::zeros((STEPS, b, INPUT));
        init::normal(&mut rng, xs.as_slice_mut().unwrap(), 1.0);
        Work {
            grads: Tensors::zeros_like(&params),
            dstate: Tensors::zeros_like(&state),
            p: params,
            state,
            xs,
            ys: Array3::zeros((STEPS, b, OUTPUT)),
            dys: Array3::from_elem((STEPS, b, OUTPUT), 1.0),
            dxs: Array3::zeros((STEPS, b, INPUT)),
            tape: Tape::default(),
            cell,
        }
    }

    fn forward(&mut self, record: bool) {
        self.state.fill(0.0);
        let tape = record.then_some(&mut self.tape);
        self.cell.forward_window(
            &self.p,
            &mut self.state,
            self.xs.view(),
            self.ys.view_mut(),
            tape,
        );
    }

    fn forward_backward(&mut self) {
        self.forward(true);
        self.grads.fill(0.0);
        self.dstate.fill(0.0);
        self.cell.backward_window(
            &self.p,
            &self.tape,
            self.dys.view(),
            &mut self.dstate,
            &mut self.grads,
            Some(self.dxs.view_mut()),
        );
    }
}

const KINDS: [&str; 2] = ["lstm", "gru"];

fn kind(name: &str) -> Kind {
    if name == "lstm" {
        Kind::Lstm
    } else {
        Kind::Gru
    }
}

/// Inference over the window (no tape: what `predict_batch` runs).
#[divan::bench(args = KINDS, consts = [1, 32], sample_count = 10)]
fn forward<const B: usize>(bencher: Bencher, name: &str) {
    let mut w = Work::new(kind(name), B);
    bencher
        .counter(ItemsCount::new(STEPS * B))
        .bench_local(|| w.forward(false));
}

/// Forward with the tape, then backward through the whole window.
#[divan::bench(args = KINDS, consts = [1, 32], sample_count = 10)]
fn forward_backward<const B: usize>(bencher: Bencher, name: &str) {
    let mut w = Work::new(kind(name), B);
    bencher
        .counter(ItemsCount::new(STEPS * B))
        .bench_local(|| w.forward_backward());
}
