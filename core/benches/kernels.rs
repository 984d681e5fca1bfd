//! Benchmarks of the hot numeric kernels (`tanh`, `y += x·W` for one row and for several, the
//! small matrix product `gemm`).
//!
//! Run with `cargo bench -p mnnn-core --bench kernels`.

use divan::{Bencher, black_box};
use mnnn_core::kernels::{Path, gemm_rows_acc_f32, gemm_with, gemv_acc_f32, tanh_f32};
use mnnn_core::{Scalar, s};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

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

/// The matrix products of the chunked memories, `(m, k, n, layout)`: `nn` plain, `tn` with
/// `a` a transposed view (`kᵀ·x`), `nt` with `b` one (`q·kᵀ`); then two large squares, where
/// `kernels::gemm` hands over to ndarray.
const PRODUCTS: [(usize, usize, usize, &str); 9] = [
    (16, 32, 128, "nn"),
    (64, 64, 64, "nn"),
    (32, 16, 32, "tn"),
    (64, 64, 64, "tn"),
    (64, 64, 64, "nt"),
    (1, 64, 64, "nn"),
    (64, 64, 128, "nn"),
    (256, 256, 256, "nn"),
    (512, 512, 512, "nn"),
];

/// Operands of one product: `a` and `b` stored so that the views of `layout` are `m × k` and
/// `k × n`, and `c`.
struct Operands<S> {
    a: Array2<S>,
    b: Array2<S>,
    c: Array2<S>,
    layout: &'static str,
}

impl<S: Scalar> Operands<S> {
    fn new((m, k, n, layout): (usize, usize, usize, &'static str)) -> Self {
        let a_dim = if layout == "tn" { (k, m) } else { (m, k) };
        let b_dim = if layout == "nt" { (n, k) } else { (k, n) };
        let from = |(r, c): (usize, usize)| {
            let v = inputs(r * c);
            Array2::from_shape_fn((r, c), |(i, j)| S::from_f64(f64::from(v[i * c + j]) / 6.0))
        };
        Operands {
            a: from(a_dim),
            b: from(b_dim),
            c: Array2::zeros((m, n)),
            layout,
        }
    }

    fn views(&mut self) -> (ArrayView2<'_, S>, ArrayView2<'_, S>, ArrayViewMut2<'_, S>) {
        let a = if self.layout == "tn" {
            self.a.t()
        } else {
            self.a.view()
        };
        let b = if self.layout == "nt" {
            self.b.t()
        } else {
            self.b.view()
        };
        (a, b, self.c.view_mut())
    }
}

/// `kernels::gemm_with` on the selected path (no hand-over to ndarray), `c = a·b + 0.5·c`.
#[divan::bench(types = [f32, f64], args = PRODUCTS, sample_size = 8)]
fn gemm_kernel<S: Scalar>(bencher: Bencher, shape: (usize, usize, usize, &'static str)) {
    let mut ops = Operands::<S>::new(shape);
    let path = Path::selected();
    bencher.bench_local(|| {
        let (a, b, c) = ops.views();
        gemm_with(path, S::one(), black_box(a), black_box(b), s(0.5), c);
    });
}

/// `kernels::gemm_with` on the portable path.
#[divan::bench(types = [f32], args = PRODUCTS, sample_size = 8)]
fn gemm_portable<S: Scalar>(bencher: Bencher, shape: (usize, usize, usize, &'static str)) {
    let mut ops = Operands::<S>::new(shape);
    bencher.bench_local(|| {
        let (a, b, c) = ops.views();
        gemm_with(
            Path::Portable,
            S::one(),
            black_box(a),
            black_box(b),
            s(0.5),
            c,
        );
    });
}

/// `ndarray::linalg::general_mat_mul` on the same views, for comparison.
#[divan::bench(types = [f32, f64], args = PRODUCTS, sample_size = 8)]
fn gemm_ndarray<S: Scalar>(bencher: Bencher, shape: (usize, usize, usize, &'static str)) {
    let mut ops = Operands::<S>::new(shape);
    bencher.bench_local(|| {
        let (a, b, mut c) = ops.views();
        general_mat_mul(S::one(), &black_box(a), &black_box(b), s(0.5), &mut c);
    });
}
