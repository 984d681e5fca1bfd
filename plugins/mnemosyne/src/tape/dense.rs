//! Dense helpers of the primitives: masked softmax rows, triangles, triangular solves.

use mnnn_core::Scalar;
use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayViewMut1, Axis};

/// One row of a masked softmax.
pub(crate) fn softmax_row<S: Scalar>(x: ArrayView1<S>, mut out: ArrayViewMut1<S>, on: &[bool]) {
    let top = x
        .iter()
        .zip(on)
        .filter(|(_, o)| **o)
        .fold(S::neg_infinity(), |m, (&v, _)| m.max(v));
    let mut total = S::zero();
    for ((o, &v), _) in out.iter_mut().zip(x).zip(on).filter(|(_, o)| **o) {
        let e = (v - top).exp();
        *o = e;
        total += e;
    }
    out.mapv_inplace(|e| e / total);
}

/// The softmax VJP of one row `y` (masked entries stay zero).
pub(crate) fn softmax_grad_row<S: Scalar>(
    y: ArrayView1<S>,
    d: ArrayView1<S>,
    mut out: ArrayViewMut1<S>,
    on: &[bool],
) {
    let dot = y.iter().zip(d).fold(S::zero(), |acc, (&a, &b)| acc + a * b);
    for (((o, &yv), &dv), _) in out.iter_mut().zip(y).zip(d).zip(on).filter(|(_, m)| **m) {
        *o = yv * (dv - dot);
    }
}

/// Every group's [`tril_in_place`].
pub(crate) fn tril_stack<S: Scalar>(v: &mut Array3<S>, strict: bool) {
    for mut m in v.outer_iter_mut() {
        tril_in_place(&mut m, strict);
    }
}

/// `a b` into a new array, through `mnnn_core`'s small-product kernel (no packing; views of
/// any strides, so transposes cost nothing).
pub(crate) fn product<S: Scalar>(a: ArrayView2<S>, b: ArrayView2<S>) -> Array2<S> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    mnnn_core::kernels::gemm(S::one(), a, b, S::zero(), c.view_mut());
    c
}

/// Zeroes the entries above the diagonal (and the diagonal when `strict`).
pub(crate) fn tril_in_place<S: Scalar>(v: &mut ndarray::ArrayViewMut2<S>, strict: bool) {
    let (m, n) = v.dim();
    for i in 0..m {
        let from = if strict { i } else { i + 1 };
        for j in from.min(n)..n {
            v[(i, j)] = S::zero();
        }
    }
}

/// `x` with `(I + strict_tril(a)) x = y`.
pub(crate) fn forward_substitute<S: Scalar>(a: ArrayView2<S>, y: ArrayView2<S>) -> Array2<S> {
    let mut x = y.to_owned();
    for i in 1..x.nrows() {
        let (done, mut rest) = x.view_mut().split_at(Axis(0), i);
        let mut row = rest.row_mut(0);
        for j in 0..i {
            let c = a[(i, j)];
            if c != S::zero() {
                row.scaled_add(-c, &done.row(j));
            }
        }
    }
    x
}

/// `x` with `(I + strict_tril(a))ᵀ x = y`, by back substitution.
pub(crate) fn back_substitute_transposed<S: Scalar>(
    a: ArrayView2<S>,
    y: ArrayView2<S>,
) -> Array2<S> {
    let mut x = y.to_owned();
    let m = x.nrows();
    for i in (0..m.saturating_sub(1)).rev() {
        let (mut head, done) = x.view_mut().split_at(Axis(0), i + 1);
        let mut row = head.row_mut(i);
        for j in i + 1..m {
            let c = a[(j, i)];
            if c != S::zero() {
                row.scaled_add(-c, &done.row(j - i - 1));
            }
        }
    }
    x
}
