//! AMN throughput in f32 (design mode), input width 16, output width 4, manifold 32.
//!
//! * `step`: one [`Cell::step`] (inference) for `B` sequences; items = `B` tokens.
//! * `train_window`: one full-BPTT training step over a window of [`WINDOW`] steps
//!   (forward with tape, backward, global-norm clipping, one Adam update); items =
//!   `WINDOW·B` tokens. The reported time is per window, so the time per token is
//!   `time / (WINDOW·B)` (= `time / (64·B)`), which is what the item throughput shows.
//! * `forward_chunked`: inference over [`CHUNKED_STEPS`] steps in chunks of [`CHUNK`];
//!   items = `CHUNKED_STEPS·B` tokens.
//!
//! Layout of the tables: benchmark → hidden `H` (const) → batch `B` (arg).
//! Run with `cargo bench -p mnnn-amn --bench amn`.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use mnnn_amn::{AmnCell, AmnParams};
use mnnn_core::train::Optimizer;
use mnnn_core::train::optim::{OptimState, clip_global_norm};
use mnnn_core::{Cell, Dims, Rng, Tensors};
use ndarray::{Array2, Array3};

const INPUT: usize = 16;
const OUTPUT: usize = 4;
const MANIFOLD: usize = 32;
const BATCHES: [usize; 2] = [1, 32];
/// Steps per training window (truncated BPTT length).
const WINDOW: usize = 64;
/// Length of the sequence fed to `forward_chunked`.
const CHUNKED_STEPS: usize = 256;
/// Chunk length of `forward_chunked`.
const CHUNK: usize = 64;

fn main() {
    divan::main();
}

/// The cell, initialised parameters and a zero state for `batch` sequences.
fn setup(hidden: usize, batch: usize) -> (AmnCell<f32>, Tensors<f32>, Tensors<f32>) {
    let cell = AmnCell::<f32>::new(
        &AmnParams {
            hidden,
            manifold: MANIFOLD,
            ..Default::default()
        },
        Dims {
            input: INPUT,
            output: OUTPUT,
        },
    );
    let mut params = Tensors::zeros(cell.param_layout());
    cell.init_params(&mut Rng::new(0), &mut params);
    let state = Tensors::zeros(cell.state_layout().batched(batch));
    (cell, params, state)
}

fn normal(rng: &mut Rng) -> f32 {
    rng.normal() as f32
}

/// Inference: one step for `batch` sequences.
#[divan::bench(consts = [32, 128, 512], args = BATCHES)]
fn step<const H: usize>(bencher: Bencher, batch: usize) {
    let (cell, params, mut state) = setup(H, batch);
    let mut rng = Rng::new(1);
    let x = Array2::<f32>::from_shape_simple_fn((batch, INPUT), || normal(&mut rng));
    let mut y = Array2::<f32>::zeros((batch, OUTPUT));
    let mut scratch = Default::default();
    // Untimed check that the step does real work, including the manifold write.
    for _ in 0..3 {
        cell.step(&params, &mut state, x.view(), y.view_mut(), &mut scratch);
    }
    assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v != 0.0));
    let m = state.slice(2);
    assert!(
        m.iter().any(|&v| v != 0.0),
        "the manifold was never written"
    );

    bencher.counter(ItemsCount::new(batch)).bench_local(|| {
        cell.step(
            black_box(&params),
            black_box(&mut state),
            black_box(x.view()),
            black_box(y.view_mut()),
            &mut scratch,
        );
        black_box(&y);
    });
}

/// Training: one full-BPTT step over a window of `WINDOW` steps for `batch` sequences
/// (forward with tape, MSE-loss gradient, backward with zero incoming `dstate`, global-norm
/// clipping at 1, one Adam update with lr 1e-3). Per-token time = time / (64·batch).
#[divan::bench(consts = [32, 128, 512], args = BATCHES)]
fn train_window<const H: usize>(bencher: Bencher, batch: usize) {
    let (cell, mut params, mut state) = setup(H, batch);
    let mut rng = Rng::new(2);
    let xs = Array3::<f32>::from_shape_simple_fn((WINDOW, batch, INPUT), || normal(&mut rng));
    let targets =
        Array3::<f32>::from_shape_simple_fn((WINDOW, batch, OUTPUT), || normal(&mut rng).tanh());
    let mut ys = Array3::<f32>::zeros((WINDOW, batch, OUTPUT));
    let mut dys = Array3::<f32>::zeros((WINDOW, batch, OUTPUT));
    let mut tape = Default::default();
    let mut dstate = Tensors::zeros_like(&state);
    let mut grads = Tensors::zeros_like(&params);
    let mut opt = OptimState::<f32>::new(Optimizer::Adam, 1e-3, params.data().len());
    let scale = 2.0 / (WINDOW * batch * OUTPUT) as f32;

    let mut train = |params: &mut Tensors<f32>| {
        state.fill(0.0);
        cell.forward_window(
            params,
            &mut state,
            black_box(xs.view()),
            ys.view_mut(),
            Some(&mut tape),
        );
        // ∂/∂y of the mean squared error.
        ndarray::Zip::from(&mut dys)
            .and(&ys)
            .and(&targets)
            .for_each(|d, &y, &t| *d = scale * (y - t));
        dstate.fill(0.0);
        grads.fill(0.0);
        cell.backward_window(params, &tape, dys.view(), &mut dstate, &mut grads, None);
        let norm = clip_global_norm(grads.data_mut(), 1.0);
        opt.step(params.data_mut(), grads.data(), None);
        norm
    };
    // Untimed check that the step does real work.
    let before = params.data().to_vec();
    let norm = train(&mut params);
    assert!(norm.is_finite() && norm > 0.0, "gradient norm {norm}");
    assert_ne!(before, params.data(), "Adam left the parameters unchanged");

    bencher
        .counter(ItemsCount::new(WINDOW * batch))
        .bench_local(|| black_box(train(&mut params)));
}

/// Chunked inference: `CHUNKED_STEPS` steps in chunks of `CHUNK`, at hidden 128.
#[divan::bench(args = BATCHES)]
fn forward_chunked(bencher: Bencher, batch: usize) {
    const H: usize = 128;
    let (cell, params, mut state) = setup(H, batch);
    let mut rng = Rng::new(3);
    let xs =
        Array3::<f32>::from_shape_simple_fn((CHUNKED_STEPS, batch, INPUT), || normal(&mut rng));
    let mut ys = Array3::<f32>::zeros((CHUNKED_STEPS, batch, OUTPUT));
    let mut scratch = Default::default();
    // Untimed check that the pass does real work.
    cell.forward_chunked(
        &params,
        &mut state,
        xs.view(),
        ys.view_mut(),
        CHUNK,
        &mut scratch,
    );
    assert!(ys.iter().all(|v| v.is_finite()) && ys.iter().any(|&v| v != 0.0));

    bencher
        .counter(ItemsCount::new(CHUNKED_STEPS * batch))
        .bench_local(|| {
            cell.forward_chunked(
                black_box(&params),
                black_box(&mut state),
                black_box(xs.view()),
                ys.view_mut(),
                CHUNK,
                &mut scratch,
            );
            black_box(&ys);
        });
}
