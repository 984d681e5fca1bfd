//! `c ← β·c + α·a b` for the operator's small products.
//!
//! `matrixmultiply` (behind ndarray) packs both operands into panels on every call; at
//! 64 × 64 × 64 the packing is a sixth of the time and its 8-lane kernel half of what a
//! Zen 5 or AVX-512 core can issue. When the CPU has AVX-512, the elements are `f32`, `b`
//! and `c` have unit column stride and the width is a multiple of 16, the product runs here
//! instead: tiles of up to 6 rows × 64 columns of `c` stay in registers while each row of
//! `b` is loaded once per tile and each entry of `a` is broadcast from wherever its strides
//! put it, so `aᵀ` (a key matrix read by columns) needs no copy. Anything else goes to
//! ndarray. The summation order differs from ndarray's, so the two agree to rounding.

use mnnn_core::Scalar;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// `c ← β·c + α·a b`; with `β = 0`, `c` is not read.
pub fn gemm<S: Scalar>(
    alpha: S,
    a: &ArrayView2<S>,
    b: &ArrayView2<S>,
    beta: S,
    c: &mut ArrayViewMut2<S>,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512::applies(a, b, c) {
        let addend = (c.as_ptr(), c.strides()[0]);
        avx512::gemm(alpha, a, b, beta, addend, c);
        return;
    }
    general_mat_mul(alpha, a, b, beta, c);
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
    assert_eq!(d.dim(), c.dim(), "the addend has the output's shape");
    #[cfg(target_arch = "x86_64")]
    if avx512::applies(a, b, c) && d.strides()[1] == 1 {
        avx512::gemm(alpha, a, b, beta, (d.as_ptr(), d.strides()[0]), c);
        return;
    }
    c.assign(d);
    general_mat_mul(alpha, a, b, beta, c);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Scalar;
    use ndarray::{ArrayView2, ArrayViewMut2};
    use std::any::TypeId;
    use std::arch::x86_64::*;

    const LANES: usize = 16;
    /// Rows of `c` per tile: 6 rows × 4 vectors of accumulators, 4 vectors of `b` and a
    /// broadcast fill 29 of the 32 registers.
    const ROWS: usize = 6;
    const VECS: usize = 4;

    pub fn applies<S: Scalar>(a: &ArrayView2<S>, b: &ArrayView2<S>, c: &ArrayViewMut2<S>) -> bool {
        let (m, k) = a.dim();
        let n = b.ncols();
        TypeId::of::<S>() == TypeId::of::<f32>()
            && m > 0
            && k > 0
            && n.is_multiple_of(LANES)
            && n > 0
            // The tile loads rows of `b` and stores rows of `c` as contiguous vectors, so
            // both need unit column stride whatever their number of rows (a single strided
            // row, such as a transposed column, would be read and written contiguously).
            && b.strides()[1] == 1
            && c.strides()[1] == 1
            && b.nrows() == k
            && c.dim() == (m, n)
            && std::is_x86_feature_detected!("avx512f")
    }

    /// `c ← β·d + α·a b`, `d` given by its first element and row stride (unit column
    /// stride, `c`'s shape; it may be `c` itself). The caller has checked [`applies`].
    pub fn gemm<S: Scalar>(
        alpha: S,
        a: &ArrayView2<S>,
        b: &ArrayView2<S>,
        beta: S,
        (d, sd): (*const S, isize),
        c: &mut ArrayViewMut2<S>,
    ) {
        let (m, k) = a.dim();
        let n = b.ncols();
        let (alpha, beta) = (alpha.as_f64() as f32, beta.as_f64() as f32);
        let sa = (a.strides()[0], a.strides()[1]);
        let (sb, sc) = (b.strides()[0], c.strides()[0]);
        // SAFETY: `S` is `f32` (checked in `applies`), so the casts are identities; every
        // offset the kernel forms is `i·stride` for an index inside the views' shapes, and
        // the CPU has AVX-512F.
        unsafe {
            let (pa, pb) = (a.as_ptr() as *const f32, b.as_ptr() as *const f32);
            let pc = c.as_mut_ptr() as *mut f32;
            let out = Out {
                d: d as *const f32,
                sd,
                c: pc,
                sc,
            };
            let x = In {
                k,
                alpha,
                beta,
                a: pa,
                sa,
                b: pb,
                sb,
            };
            product(m, n, x, out);
        }
    }

    /// Where results go: `c ← β·d + α·(a b)`; `d` may alias `c` (each element is read
    /// before it is written, by the same tile).
    #[derive(Clone, Copy)]
    struct Out {
        d: *const f32,
        sd: isize,
        c: *mut f32,
        sc: isize,
    }

    impl Out {
        /// The same output moved `i` rows down and `j` columns right.
        ///
        /// # Safety
        /// The moved position is inside `d` and `c`.
        #[inline(always)]
        unsafe fn at(self, i: usize, j: usize) -> Out {
            // SAFETY: by the contract.
            unsafe {
                Out {
                    d: self.d.offset(i as isize * self.sd).add(j),
                    c: self.c.offset(i as isize * self.sc).add(j),
                    ..self
                }
            }
        }
    }

    /// What a product reads: `α·(a b)` over `k` terms, with `β` for the addend. `a` is
    /// addressed through its two strides, `b` through its row stride (unit column stride).
    #[derive(Clone, Copy)]
    struct In {
        k: usize,
        alpha: f32,
        beta: f32,
        a: *const f32,
        sa: (isize, isize),
        b: *const f32,
        sb: isize,
    }

    impl In {
        /// The operands of the output block starting at row `i`, column `j`.
        ///
        /// # Safety
        /// Row `i` of `a` and column `j` of `b` exist.
        #[inline(always)]
        unsafe fn at(self, i: usize, j: usize) -> In {
            // SAFETY: by the contract.
            unsafe {
                In {
                    a: self.a.offset(i as isize * self.sa.0),
                    b: self.b.add(j),
                    ..self
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F present; `a` is `m × k`, `b` is `k × n`, `d` and `c` are `m × n`, all in
    /// bounds for the strides given.
    #[target_feature(enable = "avx512f")]
    unsafe fn product(m: usize, n: usize, x: In, out: Out) {
        let mut j = 0;
        while j < n {
            let vecs = ((n - j) / LANES).min(VECS);
            // SAFETY: column block `j..j + vecs·16` is inside `b`, `d` and `c`.
            unsafe {
                let (x, out) = (x.at(0, j), out.at(0, j));
                match vecs {
                    4 => rows::<4>(m, x, out),
                    3 => rows::<3>(m, x, out),
                    2 => rows::<2>(m, x, out),
                    _ => rows::<1>(m, x, out),
                }
            }
            j += vecs * LANES;
        }
    }

    /// One column block of `V` vectors, all `m` rows.
    ///
    /// # Safety
    /// As [`product`], for a block of `V·16` columns.
    #[inline(always)]
    unsafe fn rows<const V: usize>(m: usize, x: In, out: Out) {
        let mut i = 0;
        // SAFETY: rows `i..i + R` are inside `a`, `d` and `c`.
        unsafe {
            while i + ROWS <= m {
                tile::<ROWS, V>(x.at(i, 0), out.at(i, 0));
                i += ROWS;
            }
            let (x, out) = (x.at(i, 0), out.at(i, 0));
            match m - i {
                5 => tile::<5, V>(x, out),
                4 => tile::<4, V>(x, out),
                3 => tile::<3, V>(x, out),
                2 => tile::<2, V>(x, out),
                1 => tile::<1, V>(x, out),
                _ => {}
            }
        }
    }

    /// `R` rows × `V` vectors of the output, accumulated over all `k` in registers.
    ///
    /// # Safety
    /// As [`rows`], for `R` rows.
    #[inline(always)]
    unsafe fn tile<const R: usize, const V: usize>(x: In, out: Out) {
        // SAFETY: in bounds by the contract; AVX-512F enabled in the caller.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); V]; R];
            for p in 0..x.k as isize {
                let bp = x.b.offset(p * x.sb);
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, b) in bv.iter_mut().enumerate() {
                    *b = _mm512_loadu_ps(bp.add(v * LANES));
                }
                let ap = x.a.offset(p * x.sa.1);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*ap.offset(r as isize * x.sa.0));
                    for (acc, &b) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_fmadd_ps(a, b, *acc);
                    }
                }
            }
            let (al, be) = (_mm512_set1_ps(x.alpha), _mm512_set1_ps(x.beta));
            for (r, acc) in acc.iter().enumerate() {
                for (v, &acc) in acc.iter().enumerate() {
                    let o = out.at(r, v * LANES);
                    let mut y = _mm512_mul_ps(al, acc);
                    if x.beta != 0.0 {
                        y = _mm512_fmadd_ps(be, _mm512_loadu_ps(o.d), y);
                    }
                    _mm512_storeu_ps(o.c, y);
                }
            }
        }
    }
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
