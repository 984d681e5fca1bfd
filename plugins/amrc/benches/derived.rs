//! AMRC's hand-written backward against the one core derives from [`AmrcTape`], in f32,
//! design mode, hidden 128, batch 32, input 16, output 4, a window of 64 steps: the backward
//! pass alone (over a tape recorded once), and the forward window with its tape plus the
//! backward. Items are tokens (64 · 32 per iteration).
//!
//! Run with `cargo bench -p mnnn-amrc --bench derived`.

use mnnn_amrc::{AmrcCell, AmrcParams, AmrcTape};
use mnnn_core::autodiff::Derived;
use mnnn_core::{Cell, Dims, Rng, Tensors};
use ndarray::Array3;

const HIDDEN: usize = 128;
const BATCH: usize = 32;
const WINDOW: usize = 64;

fn main() {
    divan::main();
}

fn hand() -> AmrcCell<f32> {
    let params = AmrcParams {
        hidden: HIDDEN,
        ..Default::default()
    };
    AmrcCell::new(
        &params,
        Dims {
            input: 16,
            output: 4,
        },
    )
}

fn derived() -> Derived<AmrcTape<f32>> {
    Derived(AmrcTape(hand()))
}

/// Parameters, a start state, inputs and output gradients for `cell`, and a recorded tape.
struct Work<C: Cell<f32>> {
    cell: C,
    params: Tensors<f32>,
    state: Tensors<f32>,
    xs: Array3<f32>,
    ys: Array3<f32>,
    dys: Array3<f32>,
    tape: C::Tape,
    grads: Tensors<f32>,
}

impl<C: Cell<f32>> Work<C> {
    fn new(cell: C) -> Self {
        let mut rng = Rng::new(1);
        let mut params = Tensors::zeros(cell.param_layout());
        cell.init_params(&mut rng, &mut params);
        let state = Tensors::zeros(cell.state_layout().batched(BATCH));
        let d = cell.dims();
        let mut normal =
            |w| Array3::from_shape_simple_fn((WINDOW, BATCH, w), || rng.normal() as f32);
        let (xs, dys) = (normal(d.input), normal(d.output));
        let grads = Tensors::zeros_like(&params);
        let mut w = Work {
            cell,
            params,
            state,
            xs,
            ys: Array3::zeros((WINDOW, BATCH, d.output)),
            dys,
            tape: C::Tape::default(),
            grads,
        };
        w.forward();
        w.backward();
        w
    }

    fn forward(&mut self) {
        let mut s = self.state.clone();
        let (xs, ys) = (self.xs.view(), self.ys.view_mut());
        self.cell
            .forward_window(&self.params, &mut s, xs, ys, Some(&mut self.tape));
    }

    fn backward(&mut self) {
        let mut ds = Tensors::zeros_like(&self.state);
        let (p, dys) = (&self.params, self.dys.view());
        self.cell
            .backward_window(p, &self.tape, dys, &mut ds, &mut self.grads, None);
    }
}

fn tokens() -> divan::counter::ItemsCount {
    divan::counter::ItemsCount::new(WINDOW * BATCH)
}

/// The backward pass alone, hand-written.
#[divan::bench]
fn backward_hand(bencher: divan::Bencher) {
    let mut w = Work::new(hand());
    bencher.counter(tokens()).bench_local(|| w.backward());
}

/// The backward pass alone, derived by core's tape.
#[divan::bench]
fn backward_derived(bencher: divan::Bencher) {
    let mut w = Work::new(derived());
    bencher.counter(tokens()).bench_local(|| w.backward());
}

/// Forward window with its tape, then the backward: hand-written.
#[divan::bench]
fn window_hand(bencher: divan::Bencher) {
    let mut w = Work::new(hand());
    bencher.counter(tokens()).bench_local(|| {
        w.forward();
        w.backward();
    });
}

/// Forward window with its tape, then the backward: derived.
#[divan::bench]
fn window_derived(bencher: divan::Bencher) {
    let mut w = Work::new(derived());
    bencher.counter(tokens()).bench_local(|| {
        w.forward();
        w.backward();
    });
}
