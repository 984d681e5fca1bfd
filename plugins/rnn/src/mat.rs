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
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

/// Columns per panel of a packed recurrent matrix. A multiple of every path's column block
/// (64 f32 lanes on AVX-512), though any width would do: the kernel's sum for an output
/// depends only on its row and column of the operands, never on the blocking.
pub(crate) const PANEL: usize = 64;

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

/// `wp ← w` (`k × n`, whose element `(i, j)` is `at(i, j)`) packed in panels of [`PANEL`]
/// columns, each `k × width` and contiguous, for [`mul_acc_packed`]: a step's product then
/// reads the matrix as one stream rather than `k` rows far apart, measured ¼ faster at one
/// sequence (`1 × 128` by `128 × 512`), where the step is bound by reading the matrix.
pub(crate) fn pack<S: Scalar>(wp: &mut Vec<S>, k: usize, n: usize, at: impl Fn(usize, usize) -> S) {
    wp.clear();
    wp.reserve(k * n);
    for p0 in (0..n).step_by(PANEL) {
        let width = PANEL.min(n - p0);
        for i in 0..k {
            wp.extend((p0..p0 + width).map(|j| at(i, j)));
        }
    }
}

/// [`mul_acc`] with `w` packed by [`pack`]: bit for bit the same `y`.
pub(crate) fn mul_acc_packed<S: Scalar>(
    y: &mut [S],
    x: &[S],
    wp: &[S],
    rows: usize,
    k: usize,
    n: usize,
) {
    debug_assert_eq!((y.len(), x.len(), wp.len()), (rows * n, rows * k, k * n));
    if rows == 0 {
        return;
    }
    for p0 in (0..n).step_by(PANEL) {
        let width = PANEL.min(n - p0);
        let b = ArrayView2::from_shape((k, width), &wp[p0 * k..(p0 + width) * k])
            .expect("a panel is k × width");
        let c = ArrayViewMut2::from_shape((rows, width).strides((n, 1)), &mut y[p0..])
            .expect("a column block of y");
        let ran = gemm_with(Path::selected(), S::one(), mat(x, rows, k), b, S::one(), c);
        debug_assert!(ran, "the selected path is one the CPU has");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_product_is_the_plain_one_bit_for_bit() {
        // Widths below, at and across panel and vector boundaries; 1 to 7 rows.
        for (k, n) in [(3, 1), (5, 20), (16, 64), (9, 100), (40, 160), (7, 130)] {
            for rows in [1, 2, 6, 7] {
                let v = |i: usize| ((i * 7919 % 1009) as f64 / 504.0 - 1.0).sin();
                let w: Vec<f64> = (0..k * n).map(|i| v(i + 3)).collect();
                let x: Vec<f64> = (0..rows * k).map(|i| v(5 * i + 1)).collect();
                let y0: Vec<f64> = (0..rows * n).map(|i| v(11 * i + 2)).collect();
                let (mut plain, mut packed) = (y0.clone(), y0.clone());
                mul_acc(&mut plain, &x, &w, rows, k, n);
                let mut wp = Vec::new();
                pack(&mut wp, k, n, |i, j| w[i * n + j]);
                mul_acc_packed(&mut packed, &x, &wp, rows, k, n);
                let bits = |y: &[f64]| y.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&plain), bits(&packed), "{rows} × {k} × {n}");
                assert_ne!(bits(&plain), bits(&y0));
            }
        }
    }
}
