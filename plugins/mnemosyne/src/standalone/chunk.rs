//! One chunk's arithmetic for the forward-only linear memory: plain matrix products into
//! buffers the caller owns, so the per-chunk loop allocates nothing.
//!
//! Shapes: `n` rows per chunk, head width `d`; `q`, `k`, `v` are `n × d`, `w` is `d × d`,
//! `theta` has `n` entries. Scores matrices are `n × n`.

use super::product::{gemm, gemm_from};
use mnnn_core::Scalar;
use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip, s};

/// `l = mask(q kᵀ) · diag(θ)`: lower triangle with the diagonal (`strict = false`) or
/// without it (`strict = true`), zero above.
pub fn scores<S: Scalar>(
    q: ArrayView2<S>,
    k: ArrayView2<S>,
    theta: &[S],
    strict: bool,
    mut l: ArrayViewMut2<S>,
) {
    // Only the lower half of the blocks is wanted: the top rows' right half stays zero.
    let h = split(q.nrows());
    let (mut top, mut bottom) = l.view_mut().split_at(Axis(0), h);
    gemm(
        S::one(),
        &q.slice(s![..h, ..]),
        &k.slice(s![..h, ..]).t(),
        S::zero(),
        &mut top.slice_mut(s![.., ..h]),
    );
    gemm(
        S::one(),
        &q.slice(s![h.., ..]),
        &k.t(),
        S::zero(),
        &mut bottom,
    );
    for (i, mut row) in l.rows_mut().into_iter().enumerate() {
        let keep = if strict { i } else { i + 1 };
        let row = row.as_slice_mut().expect("scores rows are contiguous");
        let (kept, dropped) = row.split_at_mut(keep.min(row.len()));
        for (x, &th) in kept.iter_mut().zip(theta) {
            *x *= th;
        }
        dropped.fill(S::zero());
    }
}

/// Where a lower-triangular product splits its rows: in half once a chunk is large enough
/// that skipping the zero upper-right block outweighs a second call.
fn split(n: usize) -> usize {
    if n >= 32 { n / 2 } else { 0 }
}

/// `out ← β·out + α·l x` for a lower-triangular `l`, skipping its zero upper-right block.
fn lower_product<S: Scalar>(
    alpha: S,
    l: ArrayView2<S>,
    x: ArrayView2<S>,
    beta: S,
    mut out: ArrayViewMut2<S>,
) {
    let h = split(l.nrows());
    let (mut top, mut bottom) = out.view_mut().split_at(Axis(0), h);
    let top_l = l.slice(s![..h, ..h]);
    gemm(alpha, &top_l, &x.slice(s![..h, ..]), beta, &mut top);
    gemm(alpha, &l.slice(s![h.., ..]), &x, beta, &mut bottom);
}

/// `te = diag(θ) · e`.
fn scale_rows<S: Scalar>(theta: &[S], e: ArrayView2<S>, mut te: ArrayViewMut2<S>) {
    Zip::from(te.rows_mut())
        .and(e.rows())
        .and(theta)
        .for_each(|mut out, row, &th| {
            Zip::from(&mut out).and(&row).for_each(|o, &x| *o = th * x);
        });
}

/// The mini-batch write: `e = k w − v` (every gradient at the chunk's starting `w`), then
/// `w_next = w − kᵀ diag(θ) e`. `te` is scratch of `e`'s shape.
pub fn dual_write<S: Scalar>(
    k: ArrayView2<S>,
    v: ArrayView2<S>,
    theta: &[S],
    w: ArrayView2<S>,
    mut w_next: ArrayViewMut2<S>,
    mut e: ArrayViewMut2<S>,
    mut te: ArrayViewMut2<S>,
) {
    gemm_from(S::one(), &k, &w, -S::one(), &v, &mut e);
    scale_rows(theta, e.view(), te.view_mut());
    gemm_from(-S::one(), &k.t(), &te.view(), S::one(), &w, &mut w_next);
}

/// The delta rule's weight-independent half: with `a = strict_tril(k kᵀ) diag(θ)` (built in
/// `a`) and `t = (I + a)⁻¹` (built in `t`), `wt = t k` and `ut = t v`. The residuals of the
/// chunk from any starting `w` are then `r = ut − wt w`.
pub fn delta_prepare<S: Scalar>(
    k: ArrayView2<S>,
    v: ArrayView2<S>,
    theta: &[S],
    mut a: ArrayViewMut2<S>,
    mut t: ArrayViewMut2<S>,
    wt: ArrayViewMut2<S>,
    ut: ArrayViewMut2<S>,
) {
    scores(k, k, theta, true, a.view_mut());
    unit_lower_inverse(a.view(), t.view_mut());
    lower_product(S::one(), t.view(), k, S::zero(), wt);
    lower_product(S::one(), t.view(), v, S::zero(), ut);
}

/// Below this size a unit lower-triangular inverse is formed entry by entry.
const INVERSE_LEAF: usize = 16;

/// `t = (I + a)⁻¹` for a strictly lower-triangular `a`, by halves: with `L = I + a`,
/// `t₁₁ = L₁₁⁻¹`, `t₂₂ = L₂₂⁻¹` and `t₂₁ = −t₂₂ a₂₁ t₁₁`, so nearly all the work is matrix
/// products. `t`'s upper-right block holds the intermediate `a₂₁ t₁₁` (transposed) and is
/// zeroed after.
fn unit_lower_inverse<S: Scalar>(a: ArrayView2<S>, mut t: ArrayViewMut2<S>) {
    let n = a.nrows();
    if n <= INVERSE_LEAF {
        t.fill(S::zero());
        for i in 0..n {
            t[(i, i)] = S::one();
            for j in 0..i {
                let mut acc = S::zero();
                for m in j..i {
                    acc += a[(i, m)] * t[(m, j)];
                }
                t[(i, j)] = -acc;
            }
        }
        return;
    }
    let h = n / 2;
    let (mut top, mut bottom) = t.view_mut().split_at(Axis(0), h);
    let (mut t11, mut t12) = top.view_mut().split_at(Axis(1), h);
    let (mut t21, mut t22) = bottom.view_mut().split_at(Axis(1), h);
    unit_lower_inverse(a.slice(s![..h, ..h]), t11.view_mut());
    unit_lower_inverse(a.slice(s![h.., h..]), t22.view_mut());
    let mut scratch = t12.view_mut().reversed_axes();
    gemm(
        S::one(),
        &a.slice(s![h.., ..h]),
        &t11.view(),
        S::zero(),
        &mut scratch,
    );
    gemm(-S::one(), &t22.view(), &scratch.view(), S::zero(), &mut t21);
    t12.fill(S::zero());
}

/// The delta rule's write: `r = ut − wt w` (the residuals of the sequential recursion), then
/// `w_next = w + kᵀ diag(θ) r`. `tr` is scratch of `r`'s shape.
#[allow(clippy::too_many_arguments)]
pub fn delta_write<S: Scalar>(
    k: ArrayView2<S>,
    theta: &[S],
    wt: ArrayView2<S>,
    ut: ArrayView2<S>,
    w: ArrayView2<S>,
    mut w_next: ArrayViewMut2<S>,
    mut r: ArrayViewMut2<S>,
    mut tr: ArrayViewMut2<S>,
) {
    gemm_from(-S::one(), &wt, &w, S::one(), &ut, &mut r);
    scale_rows(theta, r.view(), tr.view_mut());
    gemm_from(S::one(), &k.t(), &tr.view(), S::one(), &w, &mut w_next);
}

/// A chunk's reads from its starting weights and residuals: `o = q w₀ + sign · l r`, with
/// `l` from [`scores`] (diagonal kept). The mini-batch form subtracts (`r = e = k w₀ − v`),
/// the delta rule adds (`r = v − k w_{t−1}`).
pub fn read<S: Scalar>(
    q: ArrayView2<S>,
    w0: ArrayView2<S>,
    l: ArrayView2<S>,
    r: ArrayView2<S>,
    sign: S,
    mut o: ArrayViewMut2<S>,
) {
    gemm(S::one(), &q, &w0, S::zero(), &mut o);
    lower_product(sign, l, r, S::one(), o);
}

#[cfg(test)]
mod tests {
    use super::unit_lower_inverse;
    use mnnn_core::Rng;
    use ndarray::Array2;

    #[test]
    fn the_blocked_inverse_inverts_at_uneven_sizes() {
        let mut rng = Rng::new(3);
        for n in [1, 2, 16, 17, 37, 64, 100] {
            let a = Array2::from_shape_fn(
                (n, n),
                |(i, j)| {
                    if j < i { 0.3 * rng.normal() } else { 0.0 }
                },
            );
            let mut t = Array2::from_elem((n, n), f64::NAN);
            unit_lower_inverse(a.view(), t.view_mut());
            let l = &a + &Array2::<f64>::eye(n);
            let err = (&t.dot(&l) - &Array2::<f64>::eye(n))
                .iter()
                .fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(err < 1e-12, "n {n}: {err:e}");
        }
    }
}
