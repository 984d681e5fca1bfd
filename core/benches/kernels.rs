//! Benchmarks of the hot numeric kernels (`tanh`, `y += x·W` for one row and for several).
//!
//! Run with `cargo bench -p mnnn-core --bench kernels`.

use divan::{Bencher, black_box};
use mnnn_core::kernels::{gemm_rows_acc_f32, gemv_acc_f32, tanh_f32};
use ndarray::{ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

fn main() {
    divan::main();
}

/// Deterministic inputs spread over [-6, 6] (the range the recurrent cells see, plus saturation).
fn inputs(len: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_u32;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 12.0 - 6.0
        })
        .collect()
}

/// `kernels::tanh_f32` over a slice.
#[divan::bench(args = [128, 4096])]
fn tanh_f32_kernel(bencher: Bencher, len: usize) {
    let xs = inputs(len);
    bencher
        .with_inputs(|| xs.clone())
        .bench_local_refs(|v| tanh_f32(black_box(v.as_mut_slice())));
}

/// The platform libm `tanhf`, element by element, for comparison.
#[divan::bench(args = [128, 4096])]
fn tanh_f32_libm(bencher: Bencher, len: usize) {
    let xs = inputs(len);
    bencher.with_inputs(|| xs.clone()).bench_local_refs(|v| {
        for x in black_box(v.as_mut_slice()) {
            *x = x.tanh();
        }
    });
}

/// `kernels::gemv_acc_f32` for the (inputs, outputs) shapes the recurrent cells use.
#[divan::bench(
    args = [(16, 128), (128, 4), (128, 128), (32, 32), (512, 512), (16, 32), (32, 4), (128, 1), (512, 1)],
    sample_size = 64,
)]
fn gemv_f32(bencher: Bencher, (rows, cols): (usize, usize)) {
    let x = inputs(rows);
    let w = inputs(rows * cols);
    let mut y = vec![0.0_f32; cols];
    bencher.bench_local(|| {
        gemv_acc_f32(black_box(&mut y), black_box(&x), black_box(&w));
    });
}

/// The (inputs, outputs, rows) cases of the several-rows benchmarks: a sequence's input
/// projection, a batch of recurrent steps, one step, a wide layer, and a narrow head.
const GEMM_CASES: [(usize, usize, usize); 5] = [
    (16, 128, 2048),
    (128, 128, 32),
    (128, 128, 1),
    (512, 512, 32),
    (128, 4, 2048),
];

/// `kernels::gemm_rows_acc_f32`: all rows in one call.
#[divan::bench(args = GEMM_CASES, sample_size = 16)]
fn gemm_rows_f32(bencher: Bencher, (k, n, rows): (usize, usize, usize)) {
    let (x, w) = (inputs(rows * k), inputs(k * n));
    let mut y = vec![0.0_f32; rows * n];
    bencher.bench_local(|| {
        gemm_rows_acc_f32(black_box(&mut y), black_box(&x), black_box(&w), rows);
    });
}

/// `kernels::gemv_acc_f32` once per row (the same results, bit for bit).
#[divan::bench(args = GEMM_CASES, sample_size = 16)]
fn gemm_rows_f32_by_gemv(bencher: Bencher, (k, n, rows): (usize, usize, usize)) {
    let (x, w) = (inputs(rows * k), inputs(k * n));
    let mut y = vec![0.0_f32; rows * n];
    bencher.bench_local(|| {
        let y = black_box(&mut y);
        for (yr, xr) in y.chunks_exact_mut(n).zip(black_box(&x).chunks_exact(k)) {
            gemv_acc_f32(yr, xr, black_box(&w));
        }
    });
}

/// `ndarray::linalg::general_mat_mul` (matrixmultiply), `Y = 1·X·W + 1·Y`, for comparison.
#[divan::bench(args = GEMM_CASES, sample_size = 16)]
fn gemm_rows_f32_ndarray(bencher: Bencher, (k, n, rows): (usize, usize, usize)) {
    let (x, w) = (inputs(rows * k), inputs(k * n));
    let mut y = vec![0.0_f32; rows * n];
    bencher.bench_local(|| {
        let x = ArrayView2::from_shape((rows, k), black_box(&x[..])).unwrap();
        let w = ArrayView2::from_shape((k, n), black_box(&w[..])).unwrap();
        let mut y = ArrayViewMut2::from_shape((rows, n), black_box(&mut y[..])).unwrap();
        general_mat_mul(1.0, &x, &w, 1.0, &mut y);
    });
}
