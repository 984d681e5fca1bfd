//! Ready-to-time workloads for any cell: what each plugin's `cargo bench` measures, built
//! once here so every entry is measured the same way.
//!
//! Each workload allocates everything up front, checks once (untimed) that it does real work
//! — finite, non-zero outputs; a changed state; a non-zero gradient that moves the weights —
//! and then `run` is the timed call.

use crate::cell::Cell;
use crate::train::Optimizer;
use crate::train::optim::{OptimState, clip_global_norm};
use crate::{Rng, Tensors};
use ndarray::{Array2, Array3};
use std::hint::black_box;

fn setup<C: Cell<f32>>(cell: &C, batch: usize) -> (Tensors<f32>, Tensors<f32>) {
    let mut params = Tensors::zeros(cell.param_layout());
    cell.init_params(&mut Rng::new(0), &mut params);
    let mut state = Tensors::zeros(cell.state_layout().batched(batch));
    cell.reset_state(&params, &mut state);
    (params, state)
}

fn normal3(rng: &mut Rng, shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_simple_fn(shape, || rng.normal() as f32)
}

/// One batched step of `batch` sequences (inference, the per-token path).
pub struct StepWork<C: Cell<f32>> {
    cell: C,
    params: Tensors<f32>,
    state: Tensors<f32>,
    x: Array2<f32>,
    y: Array2<f32>,
    scratch: C::Scratch,
}

impl<C: Cell<f32>> StepWork<C> {
    /// Prepares the step and checks it does real work.
    pub fn new(cell: C, batch: usize) -> Self {
        let (params, state) = setup(&cell, batch);
        let d = cell.dims();
        let mut rng = Rng::new(1);
        let x = Array2::from_shape_simple_fn((batch, d.input), || rng.normal() as f32);
        let mut w = StepWork {
            y: Array2::zeros((batch, d.output)),
            cell,
            params,
            state,
            x,
            scratch: Default::default(),
        };
        let before = w.state.data().to_vec();
        w.run();
        assert!(
            w.y.iter().all(|v| v.is_finite()) && w.y.iter().any(|&v| v != 0.0),
            "the step computes nothing"
        );
        assert!(
            w.state.data().is_empty() || w.state.data() != before.as_slice(),
            "the step leaves the state as it was"
        );
        w
    }

    /// The timed call.
    pub fn run(&mut self) {
        self.cell.step(
            black_box(&self.params),
            black_box(&mut self.state),
            black_box(self.x.view()),
            self.y.view_mut(),
            &mut self.scratch,
        );
        black_box(&self.y);
    }
}

/// One full-BPTT training step over a window: forward with tape, the MSE gradient, backward
/// with a zero incoming state gradient, global-norm clipping at 1 and one Adam update.
pub struct TrainWork<C: Cell<f32>> {
    cell: C,
    params: Tensors<f32>,
    state: Tensors<f32>,
    xs: Array3<f32>,
    targets: Array3<f32>,
    ys: Array3<f32>,
    dys: Array3<f32>,
    tape: C::Tape,
    dstate: Tensors<f32>,
    grads: Tensors<f32>,
    opt: OptimState<f32>,
}

impl<C: Cell<f32>> TrainWork<C> {
    /// Prepares a window of `window` steps for `batch` sequences and checks that one update
    /// has a non-zero gradient and moves the weights.
    pub fn new(cell: C, batch: usize, window: usize) -> Self {
        let (params, state) = setup(&cell, batch);
        let d = cell.dims();
        let mut rng = Rng::new(2);
        let xs = normal3(&mut rng, (window, batch, d.input));
        let targets = normal3(&mut rng, (window, batch, d.output)).mapv(f32::tanh);
        let n = params.data().len();
        let mut w = TrainWork {
            ys: Array3::zeros((window, batch, d.output)),
            dys: Array3::zeros((window, batch, d.output)),
            tape: Default::default(),
            dstate: Tensors::zeros_like(&state),
            grads: Tensors::zeros_like(&params),
            opt: OptimState::new(Optimizer::Adam, 1e-3, n),
            cell,
            params,
            state,
            xs,
            targets,
        };
        let before = w.params.data().to_vec();
        let norm = w.run();
        assert!(norm.is_finite() && norm > 0.0, "gradient norm {norm}");
        assert_ne!(
            before.as_slice(),
            w.params.data(),
            "the update leaves the weights as they were"
        );
        w
    }

    /// The timed call; returns the gradient norm before clipping.
    pub fn run(&mut self) -> f64 {
        self.state.fill(0.0);
        self.cell.forward_window(
            &self.params,
            &mut self.state,
            black_box(self.xs.view()),
            self.ys.view_mut(),
            Some(&mut self.tape),
        );
        let scale = 2.0 / self.ys.len() as f32;
        ndarray::Zip::from(&mut self.dys)
            .and(&self.ys)
            .and(&self.targets)
            .for_each(|d, &y, &t| *d = scale * (y - t));
        self.dstate.fill(0.0);
        self.grads.fill(0.0);
        self.cell.backward_window(
            &self.params,
            &self.tape,
            self.dys.view(),
            &mut self.dstate,
            &mut self.grads,
            None,
        );
        let norm = clip_global_norm(self.grads.data_mut(), 1.0);
        self.opt
            .step(self.params.data_mut(), self.grads.data(), None);
        black_box(norm)
    }
}

/// The chunked form over `steps` steps in chunks of `chunk`, for `batch` sequences.
pub struct ChunkedWork<C: Cell<f32>> {
    cell: C,
    params: Tensors<f32>,
    state: Tensors<f32>,
    xs: Array3<f32>,
    ys: Array3<f32>,
    chunk: usize,
    scratch: C::Scratch,
}

impl<C: Cell<f32>> ChunkedWork<C> {
    /// Prepares the pass and checks it does real work.
    pub fn new(cell: C, batch: usize, steps: usize, chunk: usize) -> Self {
        let (params, state) = setup(&cell, batch);
        let d = cell.dims();
        let xs = normal3(&mut Rng::new(3), (steps, batch, d.input));
        let mut w = ChunkedWork {
            ys: Array3::zeros((steps, batch, d.output)),
            cell,
            params,
            state,
            xs,
            chunk,
            scratch: Default::default(),
        };
        w.run();
        assert!(
            w.ys.iter().all(|v| v.is_finite()) && w.ys.iter().any(|&v| v != 0.0),
            "the pass computes nothing"
        );
        w
    }

    /// The timed call.
    pub fn run(&mut self) {
        self.cell.forward_chunked(
            black_box(&self.params),
            &mut self.state,
            black_box(self.xs.view()),
            self.ys.view_mut(),
            self.chunk,
            &mut self.scratch,
        );
        black_box(&self.ys);
    }
}

/// Generates a plugin's standard divan benches over this module's workloads, so every entry's
/// `cargo bench` measures the same things the same way.
///
/// `$cell` is a function `fn(hidden: usize) -> impl Cell<f32>` in scope at the call site. The
/// macro expands to `main` (which runs divan) and three benches, each at batch 1 and 32 and
/// counting tokens as items:
///
/// - `step` — one batched step ([`StepWork`]) at hidden 32/128/512;
/// - `train_window` — one full-BPTT training step over a window of 64 steps ([`TrainWork`])
///   at hidden 32/128/512;
/// - `forward_chunked` — the chunked form ([`ChunkedWork`]) at hidden 128: 256 steps in
///   chunks of 64.
///
/// The calling crate needs `divan` as a (dev-)dependency.
///
/// ```ignore
/// fn cell(hidden: usize) -> MyCell<f32> { /* … */ }
/// mnnn_core::cell_benches!(cell);
/// ```
#[macro_export]
macro_rules! cell_benches {
    ($cell:path) => {
        const BATCHES: [usize; 2] = [1, 32];
        const WINDOW: usize = 64;

        fn main() {
            ::divan::main();
        }

        /// One batched step (inference).
        #[::divan::bench(consts = [32, 128, 512], args = BATCHES)]
        fn step<const H: usize>(bencher: ::divan::Bencher, batch: usize) {
            let mut w = $crate::benchkit::StepWork::new($cell(H), batch);
            bencher
                .counter(::divan::counter::ItemsCount::new(batch))
                .bench_local(|| w.run());
        }

        /// One full-BPTT training step over a window of 64 steps.
        #[::divan::bench(consts = [32, 128, 512], args = BATCHES)]
        fn train_window<const H: usize>(bencher: ::divan::Bencher, batch: usize) {
            let mut w = $crate::benchkit::TrainWork::new($cell(H), batch, WINDOW);
            bencher
                .counter(::divan::counter::ItemsCount::new(WINDOW * batch))
                .bench_local(|| w.run());
        }

        /// The chunked form at hidden 128: 256 steps in chunks of 64.
        #[::divan::bench(args = BATCHES)]
        fn forward_chunked(bencher: ::divan::Bencher, batch: usize) {
            let mut w = $crate::benchkit::ChunkedWork::new($cell(128), batch, 256, 64);
            bencher
                .counter(::divan::counter::ItemsCount::new(256 * batch))
                .bench_local(|| w.run());
        }
    };
}
