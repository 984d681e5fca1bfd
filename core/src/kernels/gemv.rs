//! `y += x · W` for a row vector `x` and a row-major matrix `W` stored input-major.
//!
//! The naive loop (`y += x[i]·W[i,:]` row by row) loads and stores all of `y` for every row
//! and, when `y` is narrow, has nothing to vectorise. Instead:
//!
//! * `n ≥ 8` (`wide`): rows in blocks of 8; per output column, the 8 products are summed in
//!   two independent chains of 4 and then added to `y` once, so `y` is loaded and stored once
//!   per 8 rows, each row of `W` is streamed linearly, and the dependency chain through `y` is
//!   one add per block (good for short inputs as well as for matrices beyond L1).
//! * `n < 8` (`narrow`): consecutive rows are contiguous in `W`, so `L` consecutive weights
//!   (`L/n` rows) are multiplied into `L` independent accumulators, which are folded pairwise
//!   at the end (`n = 1` is a dot product with `L` lanes). On x86-64 with AVX2+FMA, `n = 4` in
//!   f32 uses intrinsics (`gemv4_f32_avx2_fma`): two rows make one 8-lane vector, and `x` is
//!   spread over it with a lane permute, which LLVM does not find on its own (2× faster than
//!   the auto-vectorised 4-lane loop).
//!
//! The summation order differs from the naive loop and between the AVX2+FMA build (fused
//! multiply-adds, more lanes) and the portable one, but each is fixed, so results are
//! deterministic for a given CPU path.

use std::ops::{Add, Mul};

/// The element types the kernels are instantiated for.
trait Elem: Copy + Add<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    fn fused_mul_add(self, b: Self, c: Self) -> Self;
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
}

/// `a·b + c`, fused when `FMA` (only instantiated where the CPU has FMA: the unfused libm call
/// would be slow), otherwise two roundings.
#[inline(always)]
fn madd<T: Elem, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.fused_mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `n ≥ 8`: blocks of 8 rows, `y[j] += (x₀w₀ⱼ + … + x₃w₃ⱼ) + (x₄w₄ⱼ + … + x₇w₇ⱼ)`; leftover rows
/// one by one.
#[inline(always)]
fn wide<T: Elem, const FMA: bool>(y: &mut [T], x: &[T], w: &[T]) {
    let n = y.len();
    let mut xblocks = x.chunks_exact(8);
    let mut wblocks = w.chunks_exact(8 * n);
    for (xs, ws) in (&mut xblocks).zip(&mut wblocks) {
        let xs: &[T; 8] = xs.try_into().unwrap();
        let r: [&[T]; 8] = std::array::from_fn(|k| &ws[k * n..(k + 1) * n]);
        for j in 0..n {
            let a = xs[0] * r[0][j];
            let a = madd::<T, FMA>(xs[1], r[1][j], a);
            let a = madd::<T, FMA>(xs[2], r[2][j], a);
            let a = madd::<T, FMA>(xs[3], r[3][j], a);
            let b = xs[4] * r[4][j];
            let b = madd::<T, FMA>(xs[5], r[5][j], b);
            let b = madd::<T, FMA>(xs[6], r[6][j], b);
            let b = madd::<T, FMA>(xs[7], r[7][j], b);
            y[j] = y[j] + (a + b);
        }
    }
    for (xi, row) in xblocks
        .remainder()
        .iter()
        .zip(wblocks.remainder().chunks_exact(n))
    {
        for (yj, wij) in y.iter_mut().zip(row) {
            *yj = madd::<T, FMA>(*xi, *wij, *yj);
        }
    }
}

/// `n = N < 8`: blocks of `L` contiguous weights (`L/N` rows) into `L` accumulators; the
/// leftover rows go through the same block code once, zero-padded; finally the accumulators are
/// folded pairwise. `L/N` must be a power of two.
#[inline(always)]
fn narrow<T: Elem, const FMA: bool, const N: usize, const L: usize>(y: &mut [T], x: &[T], w: &[T]) {
    debug_assert!((L / N).is_power_of_two());
    #[inline(always)]
    fn block<T: Elem, const FMA: bool, const N: usize, const L: usize>(
        acc: &mut [T; L],
        xs: &[T],
        ws: &[T],
    ) {
        for (l, (a, wl)) in acc.iter_mut().zip(ws).enumerate() {
            *a = madd::<T, FMA>(xs[l / N], *wl, *a);
        }
    }
    let y: &mut [T; N] = y.try_into().unwrap();
    let mut acc = [T::ZERO; L];
    let mut xblocks = x.chunks_exact(L / N);
    let mut wblocks = w.chunks_exact(L);
    for (xs, ws) in (&mut xblocks).zip(&mut wblocks) {
        block::<T, FMA, N, L>(&mut acc, xs, ws);
    }
    let (xr, wr) = (xblocks.remainder(), wblocks.remainder());
    if !xr.is_empty() {
        let (mut xs, mut ws) = ([T::ZERO; L], [T::ZERO; L]);
        xs[..xr.len()].copy_from_slice(xr);
        ws[..wr.len()].copy_from_slice(wr);
        block::<T, FMA, N, L>(&mut acc, &xs, &ws);
    }
    let mut width = L;
    while width > N {
        width /= 2;
        let (lo, hi) = acc.split_at_mut(width);
        for (a, b) in lo.iter_mut().zip(&hi[..width]) {
            *a = *a + *b;
        }
    }
    for (yj, a) in y.iter_mut().zip(&acc) {
        *yj = *yj + *a;
    }
}

/// The shared body. `DOT` and `QUAD` are the numbers of accumulators (powers of two) for the
/// `n = 1` dot product and for `n = 4`.
#[inline(always)]
fn gemv_body<T: Elem, const FMA: bool, const DOT: usize, const QUAD: usize>(
    y: &mut [T],
    x: &[T],
    w: &[T],
) {
    let n = y.len();
    assert_eq!(w.len(), x.len() * n, "gemv: matrix size");
    match n {
        0 => {}
        1 => narrow::<T, FMA, 1, DOT>(y, x, w),
        2 => narrow::<T, FMA, 2, 16>(y, x, w),
        3 => narrow::<T, FMA, 3, 24>(y, x, w),
        4 => narrow::<T, FMA, 4, QUAD>(y, x, w),
        5 => narrow::<T, FMA, 5, 40>(y, x, w),
        6 => narrow::<T, FMA, 6, 48>(y, x, w),
        7 => narrow::<T, FMA, 7, 56>(y, x, w),
        _ => wide::<T, FMA>(y, x, w),
    }
}

/// The portable f32 path (SSE2 on x86-64), also used by the tests. Not inlined, so that the
/// dispatching entry point stays a feature test and a jump.
#[inline(never)]
pub(crate) fn gemv_acc_f32_portable(y: &mut [f32], x: &[f32], w: &[f32]) {
    gemv_body::<f32, false, 32, 32>(y, x, w);
}

/// The portable f64 path (SSE2 on x86-64), also used by the tests. Not inlined, so that the
/// dispatching entry point stays a feature test and a jump.
#[inline(never)]
pub(crate) fn gemv_acc_f64_portable(y: &mut [f64], x: &[f64], w: &[f64]) {
    gemv_body::<f64, false, 16, 16>(y, x, w);
}

/// The f32 body compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_acc_f32_avx2_fma(y: &mut [f32], x: &[f32], w: &[f32]) {
    if y.len() == 4 {
        assert_eq!(w.len(), x.len() * 4, "gemv: matrix size");
        // SAFETY: same CPU features as this function; sizes checked just above.
        unsafe { gemv4_f32_avx2_fma(y.try_into().unwrap(), x, w) };
        return;
    }
    gemv_body::<f32, true, 64, 32>(y, x, w);
}

/// `n = 4`, f32: two rows of `W` form one 8-lane vector, multiplied by `x` broadcast per half.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `w.len() == 4·x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unused_unsafe)]
unsafe fn gemv4_f32_avx2_fma(y: &mut [f32; 4], x: &[f32], w: &[f32]) {
    use std::arch::x86_64::*;
    let m = x.len();
    let blocks = m / 8;
    // SAFETY: register-only intrinsics (AVX/AVX2/FMA, enabled on this function); the loads read
    // x[8b..8b+8] and w[32b..32b+32] with b < m/8, in bounds since w.len() == 4m.
    unsafe {
        let idx = [
            _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
            _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
            _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5),
            _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7),
        ];
        let mut acc = [_mm256_setzero_ps(); 4];
        for b in 0..blocks {
            let xv = _mm256_loadu_ps(x.as_ptr().add(8 * b));
            for k in 0..4 {
                let xk = _mm256_permutevar8x32_ps(xv, idx[k]);
                let wk = _mm256_loadu_ps(w.as_ptr().add(32 * b + 8 * k));
                acc[k] = _mm256_fmadd_ps(xk, wk, acc[k]);
            }
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let mut out = [0.0_f32; 4];
        _mm_storeu_ps(out.as_mut_ptr(), s);
        for i in 8 * blocks..m {
            for j in 0..4 {
                out[j] = x[i].mul_add(w[4 * i + j], out[j]);
            }
        }
        for j in 0..4 {
            y[j] += out[j];
        }
    }
}

/// The f64 body compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_acc_f64_avx2_fma(y: &mut [f64], x: &[f64], w: &[f64]) {
    gemv_body::<f64, true, 32, 32>(y, x, w);
}

/// `y[j] += Σ_i x[i] · w[i·n + j]` where `n = y.len()` and `w.len() == x.len() · n`.
pub fn gemv_acc_f32(y: &mut [f32], x: &[f32], w: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
        unsafe { gemv_acc_f32_avx2_fma(y, x, w) };
        return;
    }
    gemv_acc_f32_portable(y, x, w);
}

/// `y[j] += Σ_i x[i] · w[i·n + j]` where `n = y.len()` and `w.len() == x.len() · n`.
pub fn gemv_acc_f64(y: &mut [f64], x: &[f64], w: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
        unsafe { gemv_acc_f64_avx2_fma(y, x, w) };
        return;
    }
    gemv_acc_f64_portable(y, x, w);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (inputs, outputs) shapes of the recurrent cells.
    const CELL_SHAPES: [(usize, usize); 10] = [
        (16, 128),
        (128, 4),
        (128, 128),
        (32, 32),
        (512, 512),
        (16, 32),
        (32, 4),
        (128, 1),
        (512, 1),
        (7, 1),
    ];
    /// Odd sizes, crossed with each other: every narrow case, every tile remainder.
    const ODD: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 31, 33, 47, 64, 100];

    fn shapes() -> Vec<(usize, usize)> {
        let mut shapes = CELL_SHAPES.to_vec();
        shapes.extend(ODD.iter().flat_map(|&m| ODD.iter().map(move |&n| (m, n))));
        shapes
    }

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    /// Naive f64 `y + x·W` and, per output, the scale `|y| + Σ|x·w|` errors are measured against.
    fn reference(y: &[f64], x: &[f64], w: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = y.len();
        let mut out = y.to_vec();
        let mut scale: Vec<f64> = y.iter().map(|v| v.abs()).collect();
        for (i, xi) in x.iter().enumerate() {
            for j in 0..n {
                out[j] += xi * w[i * n + j];
                scale[j] += (xi * w[i * n + j]).abs();
            }
        }
        (out, scale)
    }

    fn check<T: Copy + Into<f64>>(
        name: &str,
        shape: (usize, usize),
        got: &[T],
        want: &[f64],
        scale: &[f64],
        tol: f64,
    ) {
        for (j, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
            let g: f64 = (*g).into();
            assert!(
                (g - w).abs() <= tol * s,
                "{name} {shape:?}: y[{j}] = {g:e}, want {w:e} (scale {s:e})"
            );
        }
    }

    type Kernel<T> = fn(&mut [T], &[T], &[T]);

    #[test]
    fn f32_matches_f64_reference() {
        let kernels: [(&str, Kernel<f32>); 2] = [
            ("dispatched", gemv_acc_f32),
            ("portable", gemv_acc_f32_portable),
        ];
        for (m, n) in shapes() {
            let (x, w, y0) = (values(m, 1), values(m * n, 2), values(n, 3));
            let round = |v: &[f64]| -> Vec<f32> { v.iter().map(|&v| v as f32).collect() };
            let (x32, w32, y32) = (round(&x), round(&w), round(&y0));
            // The reference takes the f32-rounded inputs exactly.
            let widen = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| f64::from(v)).collect() };
            let (want, scale) = reference(&widen(&y32), &widen(&x32), &widen(&w32));
            for (name, kernel) in kernels {
                let mut y = y32.clone();
                kernel(&mut y, &x32, &w32);
                check(name, (m, n), &y, &want, &scale, 1e-5);
                let mut again = y32.clone();
                kernel(&mut again, &x32, &w32);
                assert_eq!(y, again, "{name} {:?}: not deterministic", (m, n));
            }
        }
    }

    #[test]
    fn f64_matches_f64_reference() {
        let kernels: [(&str, Kernel<f64>); 2] = [
            ("dispatched", gemv_acc_f64),
            ("portable", gemv_acc_f64_portable),
        ];
        for (m, n) in shapes() {
            let (x, w, y0) = (values(m, 4), values(m * n, 5), values(n, 6));
            let (want, scale) = reference(&y0, &x, &w);
            for (name, kernel) in kernels {
                let mut y = y0.clone();
                kernel(&mut y, &x, &w);
                check(name, (m, n), &y, &want, &scale, 1e-12);
            }
        }
    }

    #[test]
    fn each_output_sees_only_its_column() {
        // A one-hot W catches index mix-ups that random data might average out.
        for (m, n) in shapes() {
            if m == 0 || n == 0 {
                continue;
            }
            let x: Vec<f32> = (0..m).map(|i| (i + 1) as f32).collect();
            for (i, j) in [
                (0, 0),
                (m - 1, n - 1),
                (m / 2, n / 3),
                (m - 1, 0),
                (0, n - 1),
            ] {
                let mut w = vec![0.0_f32; m * n];
                w[i * n + j] = 1.0;
                for kernel in [gemv_acc_f32 as Kernel<f32>, gemv_acc_f32_portable] {
                    let mut y = vec![0.5_f32; n];
                    kernel(&mut y, &x, &w);
                    for (k, yk) in y.iter().enumerate() {
                        let want = if k == j { 0.5 + (i + 1) as f32 } else { 0.5 };
                        assert_eq!(*yk, want, "{:?} one at ({i}, {j}): y[{k}]", (m, n));
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemv: matrix size")]
    fn wrong_matrix_size_panics() {
        gemv_acc_f32(&mut [0.0; 4], &[1.0; 3], &[0.0; 11]);
    }
}
