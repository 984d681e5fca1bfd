//! `y += x · W` for a row vector `x` (`gemv_acc_*`) or for a stack of row vectors
//! (`gemm_rows_acc_*`), with `W` row-major and stored input-major.
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
//!
//! # Several rows: `gemm_rows_acc_*`
//!
//! `gemm_rows_acc_*` computes `rows` products with the same `W`, and each output row is
//! **bitwise identical** to `gemv_acc_*` on that row alone, on either CPU path, whatever the
//! number of rows and the row's position: batched and per-sequence computation give the same
//! numbers. The single-row kernels above define, for every output, a sequence of scalar
//! operations (which products, fused or not, summed in which order); the several-rows kernels
//! perform exactly that sequence for every output of every row, and change only the loop nest
//! and the data layout around it, so that each loaded piece of `W` serves several rows and
//! (for narrow outputs) the shuffles disappear:
//!
//! * `wide_avx2`: tiles of 2 rows × 16 (f32) or 8 (f64) columns keep `y` in registers over all
//!   blocks of a chunk of inputs (chunks of `W` that stay in L1 while every row uses them).
//! * `narrow_avx2` and, portable, `rows`: `W` transposed once per call, so that each
//!   accumulator lane meets its inputs with plain loads; `quad_avx2` is the same for the
//!   permute-based f32 `n = 4` kernel.
//! * Everything else runs `gemv_acc_*` row by row: one row, fewer than 4 rows with `n < 8`
//!   (not worth a transpose), and on the portable path `n ≥ 8`, `n = 1` and f64 `n = 4`, where
//!   the single-row kernel is already limited by arithmetic and grouping rows measured slower.
//!
//! The tests check the equality bit for bit on both paths over many shapes and row counts.

use std::cell::Cell;
use std::ops::{Add, Mul};
use std::thread::LocalKey;

#[cfg(target_arch = "x86_64")]
mod lane;
#[cfg(target_arch = "x86_64")]
mod narrow_avx2;
#[cfg(target_arch = "x86_64")]
mod quad_avx2;
mod rows;
#[cfg(target_arch = "x86_64")]
mod wide_avx2;

/// The element types the kernels are instantiated for.
trait Elem: Copy + Add<Output = Self> + Mul<Output = Self> + 'static {
    const ZERO: Self;
    fn fused_mul_add(self, b: Self, c: Self) -> Self;
    /// This thread's buffer for the transposed copies of `W`. The several-rows kernels run
    /// once per token, so the buffer is kept between calls (taken out of the cell for the
    /// call and put back after) rather than allocated each time.
    fn transposed() -> &'static LocalKey<Cell<Vec<Self>>>;
}

thread_local! {
    static TRANSPOSED_F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static TRANSPOSED_F64: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    #[inline(always)]
    fn transposed() -> &'static LocalKey<Cell<Vec<Self>>> {
        &TRANSPOSED_F32
    }
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    #[inline(always)]
    fn transposed() -> &'static LocalKey<Cell<Vec<Self>>> {
        &TRANSPOSED_F64
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

/// `y + ((x₀w₀ + … + x₃w₃) + (x₄w₄ + … + x₇w₇))`, each chain a product then three
/// multiply-adds: one output of one block of 8 inputs in `wide`.
#[inline(always)]
fn block8<T: Elem, const FMA: bool>(y: T, x: &[T; 8], w: &[T; 8]) -> T {
    let a = x[0] * w[0];
    let a = madd::<T, FMA>(x[1], w[1], a);
    let a = madd::<T, FMA>(x[2], w[2], a);
    let a = madd::<T, FMA>(x[3], w[3], a);
    let b = x[4] * w[4];
    let b = madd::<T, FMA>(x[5], w[5], b);
    let b = madd::<T, FMA>(x[6], w[6], b);
    let b = madd::<T, FMA>(x[7], w[7], b);
    y + (a + b)
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
        // An array literal (constant indices) rather than a loop or `from_fn`, so that it
        // lives in registers and the vectoriser sees every row's length `n`.
        let r: [&[T]; 8] = [
            &ws[..n],
            &ws[n..][..n],
            &ws[2 * n..][..n],
            &ws[3 * n..][..n],
            &ws[4 * n..][..n],
            &ws[5 * n..][..n],
            &ws[6 * n..][..n],
            &ws[7 * n..][..n],
        ];
        for j in 0..n {
            let wj = [
                r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j], r[6][j], r[7][j],
            ];
            y[j] = block8::<T, FMA>(y[j], xs, &wj);
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

/// `(rows, k, n)` for `gemm_rows_acc`, checking the sizes.
fn gemm_shape(y: usize, x: usize, w: usize, rows: usize) -> (usize, usize, usize) {
    if rows == 0 {
        assert!(
            x == 0 && y == 0,
            "gemm_rows: rows = 0 with non-empty x or y"
        );
        return (0, 0, 0);
    }
    assert!(
        x.is_multiple_of(rows),
        "gemm_rows: x.len() is not a multiple of rows"
    );
    assert!(
        y.is_multiple_of(rows),
        "gemm_rows: y.len() is not a multiple of rows"
    );
    let (k, n) = (x / rows, y / rows);
    assert_eq!(w, k * n, "gemm_rows: matrix size");
    (rows, k, n)
}

/// `gemv` on each row.
#[inline(always)]
fn row_by_row<T>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    (rows, k, n): (usize, usize, usize),
    gemv: impl Fn(&mut [T], &[T], &[T]),
) {
    for r in 0..rows {
        gemv(&mut y[r * n..(r + 1) * n], &x[r * k..(r + 1) * k], w);
    }
}

/// From this many rows on, `n < 8` goes through the transposing kernels; below, row by row.
const NARROW_GROUPED_ROWS: usize = 4;

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

/// The portable several-rows f32 path, also used by the tests.
#[inline(never)]
pub(crate) fn gemm_rows_acc_f32_portable(y: &mut [f32], x: &[f32], w: &[f32], rows: usize) {
    use rows::narrow_rows;
    let shape = gemm_shape(y.len(), x.len(), w.len(), rows);
    match shape {
        (rows, k, n) if rows < NARROW_GROUPED_ROWS || k == 0 || n <= 1 || n >= 8 => {
            row_by_row(y, x, w, shape, gemv_acc_f32_portable)
        }
        (_, _, 2) => narrow_rows::<f32, false, 2, 16, 4, 4>(y, x, w, shape),
        (_, _, 3) => narrow_rows::<f32, false, 3, 24, 3, 4>(y, x, w, shape),
        (_, _, 4) => narrow_rows::<f32, false, 4, 32, 2, 4>(y, x, w, shape),
        (_, _, 5) => narrow_rows::<f32, false, 5, 40, 2, 4>(y, x, w, shape),
        (_, _, 6) => narrow_rows::<f32, false, 6, 48, 2, 4>(y, x, w, shape),
        _ => narrow_rows::<f32, false, 7, 56, 2, 4>(y, x, w, shape),
    }
}

/// The portable several-rows f64 path, also used by the tests.
#[inline(never)]
pub(crate) fn gemm_rows_acc_f64_portable(y: &mut [f64], x: &[f64], w: &[f64], rows: usize) {
    use rows::narrow_rows;
    let shape = gemm_shape(y.len(), x.len(), w.len(), rows);
    match shape {
        (rows, k, n) if rows < NARROW_GROUPED_ROWS || k == 0 || n <= 1 || n == 4 || n >= 8 => {
            row_by_row(y, x, w, shape, gemv_acc_f64_portable)
        }
        (_, _, 2) => narrow_rows::<f64, false, 2, 16, 2, 4>(y, x, w, shape),
        (_, _, 3) => narrow_rows::<f64, false, 3, 24, 2, 2>(y, x, w, shape),
        (_, _, 5) => narrow_rows::<f64, false, 5, 40, 2, 2>(y, x, w, shape),
        (_, _, 6) => narrow_rows::<f64, false, 6, 48, 2, 2>(y, x, w, shape),
        _ => narrow_rows::<f64, false, 7, 56, 1, 2>(y, x, w, shape),
    }
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

/// The several-rows f32 body compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `shape` must come from `gemm_shape`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_rows_acc_f32_avx2_fma(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    shape: (usize, usize, usize),
) {
    use narrow_avx2::narrow_rows;
    // SAFETY: the CPU supports AVX2 and FMA (this function's contract).
    let gemv = |y: &mut [f32], x: &[f32], w: &[f32]| unsafe { gemv_acc_f32_avx2_fma(y, x, w) };
    // SAFETY (every arm): as above, with the sizes checked by `gemm_shape`.
    match shape {
        (rows, k, n) if rows == 1 || k == 0 || (n < 8 && rows < NARROW_GROUPED_ROWS) => {
            row_by_row(y, x, w, shape, gemv)
        }
        (_, _, 8..) => unsafe { wide_avx2::wide_rows(y, x, w, shape) },
        (_, _, 0) => {}
        (rows, _, 4) => unsafe { quad_avx2::quad_rows(y, x, w, rows) },
        (_, _, 1) => unsafe { narrow_rows::<f32, 1, 64, 8, 2, 4>(y, x, w, shape) },
        (_, _, 2) => unsafe { narrow_rows::<f32, 2, 16, 1, 4, 1>(y, x, w, shape) },
        (_, _, 3) => unsafe { narrow_rows::<f32, 3, 24, 1, 3, 1>(y, x, w, shape) },
        (_, _, 5) => unsafe { narrow_rows::<f32, 5, 40, 1, 2, 1>(y, x, w, shape) },
        (_, _, 6) => unsafe { narrow_rows::<f32, 6, 48, 1, 2, 1>(y, x, w, shape) },
        _ => unsafe { narrow_rows::<f32, 7, 56, 1, 1, 1>(y, x, w, shape) },
    }
}

/// The several-rows f64 body compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `shape` must come from `gemm_shape`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_rows_acc_f64_avx2_fma(
    y: &mut [f64],
    x: &[f64],
    w: &[f64],
    shape: (usize, usize, usize),
) {
    use narrow_avx2::narrow_rows;
    // SAFETY: the CPU supports AVX2 and FMA (this function's contract).
    let gemv = |y: &mut [f64], x: &[f64], w: &[f64]| unsafe { gemv_acc_f64_avx2_fma(y, x, w) };
    // SAFETY (every arm): as above, with the sizes checked by `gemm_shape`.
    match shape {
        (rows, k, n) if rows == 1 || k == 0 || (n < 8 && rows < NARROW_GROUPED_ROWS) => {
            row_by_row(y, x, w, shape, gemv)
        }
        (_, _, 8..) => unsafe { wide_avx2::wide_rows(y, x, w, shape) },
        (_, _, 0) => {}
        (_, _, 1) => unsafe { narrow_rows::<f64, 1, 32, 8, 4, 2>(y, x, w, shape) },
        (_, _, 2) => unsafe { narrow_rows::<f64, 2, 16, 2, 2, 2>(y, x, w, shape) },
        (_, _, 3) => unsafe { narrow_rows::<f64, 3, 24, 2, 2, 1>(y, x, w, shape) },
        (_, _, 4) => unsafe { narrow_rows::<f64, 4, 32, 2, 2, 1>(y, x, w, shape) },
        (_, _, 5) => unsafe { narrow_rows::<f64, 5, 40, 2, 2, 1>(y, x, w, shape) },
        (_, _, 6) => unsafe { narrow_rows::<f64, 6, 48, 2, 2, 1>(y, x, w, shape) },
        _ => unsafe { narrow_rows::<f64, 7, 56, 2, 1, 2>(y, x, w, shape) },
    }
}

/// `y[j] += Σ_i x[i] · w[i·n + j]` where `n = y.len()` and `w.len() == x.len() · n`.
pub fn gemv_acc_f32(y: &mut [f32], x: &[f32], w: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::use_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
        unsafe { gemv_acc_f32_avx2_fma(y, x, w) };
        return;
    }
    gemv_acc_f32_portable(y, x, w);
}

/// `y[j] += Σ_i x[i] · w[i·n + j]` where `n = y.len()` and `w.len() == x.len() · n`.
pub fn gemv_acc_f64(y: &mut [f64], x: &[f64], w: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::use_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
        unsafe { gemv_acc_f64_avx2_fma(y, x, w) };
        return;
    }
    gemv_acc_f64_portable(y, x, w);
}

/// `y[r·n..(r+1)·n] += x[r·k..(r+1)·k] · W` for `r < rows`, where `k = x.len()/rows`,
/// `n = y.len()/rows` and `W` is `w` (`k × n`, row-major, as for [`gemv_acc_f32`]).
///
/// Each output row is bitwise identical to [`gemv_acc_f32`] on that row alone. For `n < 8`
/// and at least 4 rows, it transposes `w` into a buffer kept per thread (about `k·n`
/// elements), which allocates only when it has to grow.
///
/// # Panics
/// If `rows` does not divide `x.len()` and `y.len()`, or `w.len() != k·n` (with `rows = 0`,
/// if `x` or `y` is not empty).
pub fn gemm_rows_acc_f32(y: &mut [f32], x: &[f32], w: &[f32], rows: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::use_avx2_fma() {
        let shape = gemm_shape(y.len(), x.len(), w.len(), rows);
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above); the shape
        // comes from `gemm_shape`.
        unsafe { gemm_rows_acc_f32_avx2_fma(y, x, w, shape) };
        return;
    }
    gemm_rows_acc_f32_portable(y, x, w, rows);
}

/// `y[r·n..(r+1)·n] += x[r·k..(r+1)·k] · W` for `r < rows`, where `k = x.len()/rows`,
/// `n = y.len()/rows` and `W` is `w` (`k × n`, row-major, as for [`gemv_acc_f64`]).
///
/// Each output row is bitwise identical to [`gemv_acc_f64`] on that row alone. For `n < 8`
/// and at least 4 rows, it transposes `w` into a buffer kept per thread (about `k·n`
/// elements), which allocates only when it has to grow.
///
/// # Panics
/// If `rows` does not divide `x.len()` and `y.len()`, or `w.len() != k·n` (with `rows = 0`,
/// if `x` or `y` is not empty).
pub fn gemm_rows_acc_f64(y: &mut [f64], x: &[f64], w: &[f64], rows: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::use_avx2_fma() {
        let shape = gemm_shape(y.len(), x.len(), w.len(), rows);
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above); the shape
        // comes from `gemm_shape`.
        unsafe { gemm_rows_acc_f64_avx2_fma(y, x, w, shape) };
        return;
    }
    gemm_rows_acc_f64_portable(y, x, w, rows);
}

#[cfg(test)]
pub(super) mod tests {
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

    /// Deterministic values in [-1, 1) (the gemm tests draw from it too).
    pub(in crate::kernels) fn values(len: usize, seed: u64) -> Vec<f64> {
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

    type RowsKernel<T> = fn(&mut [T], &[T], &[T], usize);

    /// The (inputs, outputs) shapes the batched cells use.
    const GEMM_CELL_SHAPES: [(usize, usize); 8] = [
        (16, 128),
        (128, 128),
        (128, 4),
        (32, 32),
        (512, 512),
        (16, 512),
        (128, 1),
        (4, 128),
    ];
    /// Numbers of rows: every leftover group size, several full groups, and more.
    const GEMM_ROWS: [usize; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 32, 33];

    /// (k, n, rows) for the several-rows tests.
    fn gemm_cases() -> Vec<(usize, usize, usize)> {
        let mut cases = Vec::new();
        for (k, n) in GEMM_CELL_SHAPES {
            for rows in GEMM_ROWS.into_iter().chain([64]) {
                cases.push((k, n, rows));
            }
            if k * n <= 16 * 512 {
                cases.push((k, n, 2048));
            }
        }
        for k in ODD {
            for n in ODD {
                for rows in GEMM_ROWS {
                    cases.push((k, n, rows));
                }
            }
        }
        cases
    }

    /// Test data for `rows` rows of shape (k, n): `x`, `w`, `y` as f64, with some signed zeros
    /// in `y` and `x` (an accumulation that adds +0 to -0 changes the bits).
    fn gemm_data(k: usize, n: usize, rows: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut x = values(rows * k, seed);
        let w = values(k * n, seed + 1);
        let mut y = values(rows * n, seed + 2);
        x.iter_mut().step_by(13).for_each(|v| *v = -0.0);
        y.iter_mut().step_by(5).for_each(|v| *v = -0.0);
        (x, w, y)
    }

    /// Every row of `gemm` equals `gemv` on that row alone, bit for bit.
    fn rows_match_gemv<T: Copy + Into<f64>>(
        name: &str,
        gemm: RowsKernel<T>,
        gemv: Kernel<T>,
        conv: fn(f64) -> T,
    ) {
        for (k, n, rows) in gemm_cases() {
            let (x, w, y0) = gemm_data(k, n, rows, 11);
            let conv_all = |v: &[f64]| -> Vec<T> { v.iter().map(|&v| conv(v)).collect() };
            let (x, w, y0) = (conv_all(&x), conv_all(&w), conv_all(&y0));
            let mut y = y0.clone();
            gemm(&mut y, &x, &w, rows);
            for r in 0..rows {
                let mut want = y0[r * n..(r + 1) * n].to_vec();
                gemv(&mut want, &x[r * k..(r + 1) * k], &w);
                for (j, (g, e)) in y[r * n..(r + 1) * n].iter().zip(&want).enumerate() {
                    let (g, e): (f64, f64) = ((*g).into(), (*e).into());
                    assert!(
                        g.to_bits() == e.to_bits(),
                        "{name} k={k} n={n} rows={rows}: row {r} y[{j}] = {g:e}, gemv gives {e:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn gemm_rows_f32_rows_match_gemv_bitwise() {
        let pairs: [(&str, RowsKernel<f32>, Kernel<f32>); 2] = [
            ("dispatched", gemm_rows_acc_f32, gemv_acc_f32),
            (
                "portable",
                gemm_rows_acc_f32_portable,
                gemv_acc_f32_portable,
            ),
        ];
        for (name, gemm, gemv) in pairs {
            rows_match_gemv(name, gemm, gemv, |v| v as f32);
        }
    }

    #[test]
    fn gemm_rows_f64_rows_match_gemv_bitwise() {
        let pairs: [(&str, RowsKernel<f64>, Kernel<f64>); 2] = [
            ("dispatched", gemm_rows_acc_f64, gemv_acc_f64),
            (
                "portable",
                gemm_rows_acc_f64_portable,
                gemv_acc_f64_portable,
            ),
        ];
        for (name, gemm, gemv) in pairs {
            rows_match_gemv(name, gemm, gemv, |v| v);
        }
    }

    #[test]
    fn gemm_rows_match_f64_reference() {
        let f32s: [(&str, RowsKernel<f32>); 2] = [
            ("dispatched", gemm_rows_acc_f32),
            ("portable", gemm_rows_acc_f32_portable),
        ];
        let f64s: [(&str, RowsKernel<f64>); 2] = [
            ("dispatched", gemm_rows_acc_f64),
            ("portable", gemm_rows_acc_f64_portable),
        ];
        for (k, n, rows) in gemm_cases() {
            let (x, w, y0) = gemm_data(k, n, rows, 21);
            let round = |v: &[f64]| -> Vec<f32> { v.iter().map(|&v| v as f32).collect() };
            let widen = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| f64::from(v)).collect() };
            let (x32, w32, y32) = (round(&x), round(&w), round(&y0));
            for (name, kernel) in f32s {
                let mut y = y32.clone();
                kernel(&mut y, &x32, &w32, rows);
                for r in 0..rows {
                    let (yr, xr) = (&y32[r * n..(r + 1) * n], &x32[r * k..(r + 1) * k]);
                    let (want, scale) = reference(&widen(yr), &widen(xr), &widen(&w32));
                    let got = &y[r * n..(r + 1) * n];
                    check(name, (k, n), got, &want, &scale, 1e-5);
                }
            }
            for (name, kernel) in f64s {
                let mut y = y0.clone();
                kernel(&mut y, &x, &w, rows);
                for r in 0..rows {
                    let (yr, xr) = (&y0[r * n..(r + 1) * n], &x[r * k..(r + 1) * k]);
                    let (want, scale) = reference(yr, xr, &w);
                    check(name, (k, n), &y[r * n..(r + 1) * n], &want, &scale, 1e-12);
                }
            }
        }
    }

    #[test]
    fn gemm_rows_zero_rows() {
        gemm_rows_acc_f32(&mut [], &[], &[1.0; 3], 0);
        gemm_rows_acc_f64_portable(&mut [], &[], &[], 0);
    }

    #[test]
    #[should_panic(expected = "gemm_rows: matrix size")]
    fn gemm_rows_wrong_matrix_size_panics() {
        gemm_rows_acc_f32(&mut [0.0; 8], &[1.0; 6], &[0.0; 11], 2);
    }

    #[test]
    #[should_panic(expected = "gemm_rows: x.len() is not a multiple of rows")]
    fn gemm_rows_ragged_x_panics() {
        gemm_rows_acc_f64(&mut [0.0; 8], &[1.0; 7], &[0.0; 12], 2);
    }
}
