//! The few matrix chores both cells share, on flat row-major buffers.
//!
//! The products of the forward pass run core's tiled kernel on the selected path whatever
//! their size ([`gemm_with`] never hands a product to another library): the kernel sums every
//! output in the same order whatever the number of rows and the row's position, so a batch
//! computes bit for bit what its sequences compute one by one, a window what its steps compute
//! one at a time, and a window what its chunks compute. The backward pass's products over a
//! whole window need no such property and take [`gemm`], which picks the faster product.

use mnnn_core::Scalar;
use mnnn_core::buf::{mat, mat_mut};
use mnnn_core::kernels::{Path, gemm, gemm_with};

/// `y = β·y + x · w` on the row-exact kernel: `x` is `rows × k`, `w` is `k × n`, `y` is
/// `rows × n`; with `β = 0`, `y` is not read.
#[inline]
fn exact<S: Scalar>(beta: S, y: &mut [S], x: &[S], w: &[S], rows: usize, k: usize, n: usize) {
    let ran = gemm_with(
        Path::selected(),
        S::one(),
        mat(x, rows, k),
        mat(w, k, n),
        beta,
        mat_mut(y, rows, n),
    );
    debug_assert!(ran, "the selected path is one the CPU has");
}

/// `y += x · w` for `rows` rows: `x` is `rows × k`, `w` is `k × n`, `y` is `rows × n`. Each
/// row comes out bit for bit as it would alone.
#[inline]
pub(crate) fn mul_acc<S: Scalar>(y: &mut [S], x: &[S], w: &[S], rows: usize, k: usize, n: usize) {
    exact(S::one(), y, x, w, rows, k, n);
}

/// `y = x · w` (overwriting `y`), shapes and row-exactness as [`mul_acc`].
pub(crate) fn mul<S: Scalar>(y: &mut [S], x: &[S], w: &[S], rows: usize, k: usize, n: usize) {
    exact(S::zero(), y, x, w, rows, k, n);
}

/// `y = x · w` for the backward pass, on whichever product is faster at the size (rows need
/// not come out as they would alone).
pub(crate) fn mul_any<S: Scalar>(y: &mut [S], x: &[S], w: &[S], rows: usize, k: usize, n: usize) {
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
