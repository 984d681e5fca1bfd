//! `c ← β·c + α·a b` for the operator's small products, through
//! [`mnnn_core::kernels::gemm`]: register tiles on AVX-512 and AVX2+FMA (portable code
//! elsewhere), no packing when `b`'s rows or `a`'s columns are contiguous, which covers the
//! transposed views the chunk arithmetic passes (`kᵀ`), and ndarray where it is the faster
//! (large products, and `q kᵀ` with both operands stored by rows, which it packs faster).
//! These wrappers keep the operator's by-reference signatures.

use mnnn_core::{Scalar, kernels};
use ndarray::{ArrayView2, ArrayViewMut2};

/// `c ← β·c + α·a b`; with `β = 0`, `c` is not read.
pub fn gemm<S: Scalar>(
    alpha: S,
    a: &ArrayView2<S>,
    b: &ArrayView2<S>,
    beta: S,
    c: &mut ArrayViewMut2<S>,
) {
    kernels::gemm(alpha, a.view(), b.view(), beta, c.view_mut());
}

/// `c ← β·d + α·a b` for a `d` of `c`'s shape: what [`gemm`] computes after `c.assign(d)`,
/// without the copy.
pub fn gemm_from<S: Scalar>(
    alpha: S,
    a: &ArrayView2<S>,
    b: &ArrayView2<S>,
    beta: S,
    d: &ArrayView2<S>,
    c: &mut ArrayViewMut2<S>,
) {
    kernels::gemm_from(alpha, a.view(), b.view(), beta, d.view(), c.view_mut());
}

#[cfg(test)]
mod tests {
    use super::{gemm, gemm_from};
    use mnnn_core::Rng;
    use ndarray::{Array2, s};

    /// Every shape class the kernel meets: row counts around the tile height, widths of one
    /// to five vectors, `a` transposed, strided row blocks of `c`, and `β` zero (with `c`
    /// full of NaN, which must not leak) or not.
    #[test]
    fn agrees_with_ndarray_on_every_tile_shape() {
        let mut rng = Rng::new(11);
        for (m, k, n) in [
            (1, 1, 16),
            (5, 3, 32),
            (6, 64, 64),
            (7, 17, 48),
            (64, 64, 64),
            (13, 9, 80),
        ] {
            let a = Array2::from_shape_fn((m, k), |_| rng.normal() as f32);
            let at = Array2::from_shape_fn((k, m), |_| rng.normal() as f32);
            let b = Array2::from_shape_fn((k, n), |_| rng.normal() as f32);
            let c0 = Array2::from_shape_fn((m + 2, n + 16), |_| rng.normal() as f32);
            for (beta, transposed) in [(0.0, false), (0.5, false), (1.0, true), (0.0, true)] {
                let a = if transposed { at.t() } else { a.view() };
                let mut want = c0.slice(s![1..m + 1, ..n]).to_owned();
                ndarray::linalg::general_mat_mul(-0.7, &a, &b, beta, &mut want);
                let mut c = c0.clone();
                if beta == 0.0 {
                    c.fill(f32::NAN);
                }
                gemm(
                    -0.7,
                    &a,
                    &b.view(),
                    beta,
                    &mut c.slice_mut(s![1..m + 1, ..n]),
                );
                let err = (&c.slice(s![1..m + 1, ..n]) - &want)
                    .iter()
                    .fold(0.0f32, |e, x| e.max(x.abs()));
                assert!(err < 1e-4, "{m}×{k}×{n}, β {beta}: {err}");
                if beta != 0.0 {
                    assert_eq!(c.row(0), c0.row(0), "rows outside c untouched");
                    assert_eq!(c.slice(s![.., n..]), c0.slice(s![.., n..]));
                }
                // The same from a separate addend, into a NaN-filled output.
                let mut c = Array2::from_elem((m, n), f32::NAN);
                let d = c0.slice(s![1..m + 1, ..n]);
                gemm_from(-0.7, &a, &b.view(), beta, &d, &mut c.view_mut());
                let err = (&c - &want).iter().fold(0.0f32, |e, x| e.max(x.abs()));
                assert!(err < 1e-4, "from: {m}×{k}×{n}, β {beta}: {err}");
            }
        }
    }

    /// One-row operands whose columns are not adjacent in memory: every other column of a
    /// wider row, and a column of a matrix seen transposed. Loading such a row as a
    /// contiguous vector reads the wrong elements (and past the end of the buffer).
    #[test]
    fn one_row_operands_with_strided_columns() {
        let mut rng = Rng::new(12);
        for (m, n) in [(1, 16), (5, 32), (1, 64), (7, 48)] {
            let a = Array2::from_shape_fn((m, 1), |_| rng.normal() as f32);
            let wide = Array2::from_shape_fn((1, 2 * n), |_| rng.normal() as f32);
            let column = Array2::from_shape_fn((n, 3), |_| rng.normal() as f32);
            let rows_of_b = [
                wide.slice(s![.., ..;2]),
                column.slice(s![.., 1..2]).reversed_axes(),
            ];
            for b in rows_of_b {
                assert_eq!(b.dim(), (1, n));
                assert_ne!(b.strides()[1], 1, "the test needs a strided row");
                let mut want = Array2::zeros((m, n));
                ndarray::linalg::general_mat_mul(1.5, &a, &b, 0.0, &mut want);
                let mut c = Array2::from_elem((m, n), f32::NAN);
                gemm(1.5, &a.view(), &b, 0.0, &mut c.view_mut());
                let err = (&c - &want).iter().fold(0.0f32, |e, x| e.max(x.abs()));
                assert!(err < 1e-5, "b strided, {m}×1×{n}: {err}");
                // The same product into a one-row output with strided columns (m = 1), and
                // from a strided one-row addend.
                if m == 1 {
                    let d = Array2::from_shape_fn((1, 2 * n), |_| rng.normal() as f32);
                    let d = d.slice(s![.., ..;2]);
                    let mut want = d.to_owned();
                    ndarray::linalg::general_mat_mul(1.5, &a, &b, 0.5, &mut want);
                    let mut out = Array2::from_elem((1, 2 * n), f32::NAN);
                    let mut c = out.slice_mut(s![.., ..;2]);
                    gemm_from(1.5, &a.view(), &b, 0.5, &d, &mut c);
                    let err = (&c - &want).iter().fold(0.0f32, |e, x| e.max(x.abs()));
                    assert!(err < 1e-5, "c and d strided, 1×1×{n}: {err}");
                    assert!(out.slice(s![.., 1..;2]).iter().all(|x| x.is_nan()));
                }
            }
        }
    }
}
