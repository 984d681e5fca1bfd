//! The few matrix chores both cells share, on flat row-major buffers.

use mnnn_core::Scalar;
use mnnn_core::buf::{mat, mat_mut};
use mnnn_core::kernels::gemm;

/// `y += x · w` for `rows` rows: `x` is `rows × k`, `w` is `k × n`, `y` is `rows × n`. Each
/// row comes out bit for bit as it would alone, so a batch computes exactly what its
/// sequences compute one by one.
#[inline]
pub(crate) fn mul_acc<S: Scalar>(y: &mut [S], x: &[S], w: &[S], rows: usize, k: usize, n: usize) {
    debug_assert_eq!((y.len(), x.len(), w.len()), (rows * n, rows * k, k * n));
    S::gemm_rows_acc(y, x, w, rows);
}

/// `y = x · w` (overwriting `y`), shapes as [`mul_acc`].
pub(crate) fn mul<S: Scalar>(y: &mut [S], x: &[S], w: &[S], rows: usize, k: usize, n: usize) {
    gemm(
        S::one(),
        mat(x, rows, k),
        mat(w, k, n),
        S::zero(),
        mat_mut(y, rows, n),
    );
}

/// `g += xᵀ · d`: the weight gradient of `y = x · w` over all rows at once (`x` is
/// `rows × k`, `d` is `rows × n`, `g` is `k × n`).
pub(crate) fn mul_t_acc<S: Scalar>(g: &mut [S], x: &[S], d: &[S], rows: usize, k: usize, n: usize) {
    gemm(
        S::one(),
        mat(x, rows, k).t(),
        mat(d, rows, n),
        S::one(),
        mat_mut(g, k, n),
    );
}

/// Adds `bias` to every row of `y`.
pub(crate) fn add_rows<S: Scalar>(y: &mut [S], bias: &[S]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += *b;
        }
    }
}

/// `g += Σ_rows d` (the gradient of a bias added to every row).
pub(crate) fn sum_rows_acc<S: Scalar>(g: &mut [S], d: &[S]) {
    for row in d.chunks_exact(g.len()) {
        for (v, x) in g.iter_mut().zip(row) {
            *v += *x;
        }
    }
}
