//! `wide` for several rows on AVX2+FMA, with the registers laid out by hand.
//!
//! A tile of `R` rows × `J` vectors of columns keeps its `y` values in registers across the
//! blocks of 8 inputs; per block and column the two chains of 4 products
//! (`a = x₀w₀`, `a = fma(x₁, w₁, a)`, …, `b = x₄w₄`, …) and `y = y + (a + b)` are exactly the
//! scalar operations of `wide` (vector lanes are independent columns), and the leftover inputs
//! are fused into `y` one by one after the last block, as there. Each loaded weight vector
//! serves `R` rows and each broadcast input `J` vectors: with `R = J = 2`, one load per
//! multiply-add. The inputs go in chunks (about 32 KB of `W`, which stays in L1 while every
//! row group uses it); between chunks `y` goes through memory, which changes no operation.
//! The last `n mod LANES` columns go through the scalar code.

use super::lane::Lane;
use super::{Elem, block8, madd};

/// Rows per group, and vectors of columns per tile for a full group and for one row.
const ROWS: usize = 2;
const COLS: usize = 2;
const COLS_ONE_ROW: usize = 4;

/// Bytes of `W` one pass over all rows works on: the rows of `W` are taken in chunks of about
/// this size (whole blocks of 8), which stay in L1 while every row group uses them.
const CHUNK_BYTES: usize = 32 << 10;

/// One tile of one chunk: `R` rows × `J·LANES` columns, `y` in registers across `blocks`
/// blocks of 8 inputs and then `rest` single inputs. `y`, `x` and `w` point at the tile's first
/// column, the chunk's first input and both (row strides `n`, `k` and `n`).
///
/// # Safety
/// AVX2 and FMA enabled; the `R` rows of `J·LANES` elements at `y`, of `8·blocks + rest` at
/// `x`, and the `8·blocks + rest` rows of `J·LANES` at `w` must be in bounds.
#[inline(always)]
unsafe fn tile<T: Lane, const R: usize, const J: usize>(
    y: *mut T,
    x: *const T,
    w: *const T,
    (k, n): (usize, usize),
    (blocks, rest): (usize, usize),
) {
    let l = T::LANES;
    // SAFETY: in bounds by this function's contract; features enabled by the caller.
    unsafe {
        let mut acc = [[T::zero(); J]; R];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (v, a) in acc.iter_mut().enumerate() {
                *a = T::load(y.add(r * n + v * l));
            }
        }
        for b in 0..blocks {
            let (wb, xb) = (w.add(8 * b * n), x.add(8 * b));
            let mut s = [[T::zero(); J]; R];
            let mut t = [[T::zero(); J]; R];
            for q in 0..8 {
                let mut wq = [T::zero(); J];
                for (v, wv) in wq.iter_mut().enumerate() {
                    *wv = T::load(wb.add(q * n + v * l));
                }
                for r in 0..R {
                    let xq = T::splat(xb.add(r * k + q));
                    for v in 0..J {
                        match q {
                            0 => s[r][v] = T::vmul(xq, wq[v]),
                            1..=3 => s[r][v] = T::fmadd(xq, wq[v], s[r][v]),
                            4 => t[r][v] = T::vmul(xq, wq[v]),
                            _ => t[r][v] = T::fmadd(xq, wq[v], t[r][v]),
                        }
                    }
                }
            }
            for r in 0..R {
                for v in 0..J {
                    acc[r][v] = T::vadd(acc[r][v], T::vadd(s[r][v], t[r][v]));
                }
            }
        }
        for i in 8 * blocks..8 * blocks + rest {
            let mut wi = [T::zero(); J];
            for (v, wv) in wi.iter_mut().enumerate() {
                *wv = T::load(w.add(i * n + v * l));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let xi = T::splat(x.add(r * k + i));
                for (a, wv) in acc.iter_mut().zip(&wi) {
                    *a = T::fmadd(xi, *wv, *a);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, a) in acc.iter().enumerate() {
                T::store(y.add(r * n + v * l), *a);
            }
        }
    }
}

/// One chunk of inputs for `R` rows: tiles of `J` vectors, then of one, up to the last
/// `n mod LANES` columns.
///
/// # Safety
/// AVX2 and FMA enabled; `y` is `R × n`, `x` is `R × k`, `w` is `k × n`, and the chunk's
/// inputs `c0..c0 + 8·blocks + rest` are within `0..k`.
#[inline(always)]
unsafe fn group<T: Lane, const R: usize, const J: usize>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    (k, n): (usize, usize),
    (c0, blocks, rest): (usize, usize, usize),
) {
    debug_assert!(y.len() == R * n && x.len() == R * k && w.len() == k * n);
    debug_assert!(c0 + 8 * blocks + rest <= k);
    let l = T::LANES;
    let (yp, xp, wp) = (y.as_mut_ptr(), x[c0..].as_ptr(), w[c0 * n..].as_ptr());
    let mut j0 = 0;
    // SAFETY: each tile covers columns j0..j0 + J·l ≤ n of the R rows of y, the chunk's
    // inputs of x and rows of W: in bounds by the contract.
    unsafe {
        while j0 + J * l <= n {
            tile::<T, R, J>(yp.add(j0), xp, wp.add(j0), (k, n), (blocks, rest));
            j0 += J * l;
        }
        while j0 + l <= n {
            tile::<T, R, 1>(yp.add(j0), xp, wp.add(j0), (k, n), (blocks, rest));
            j0 += l;
        }
    }
}

/// `wide` for `rows` rows: `W` in chunks of whole blocks of inputs; per chunk, the rows in
/// groups of `ROWS`, then one at a time. The last `n mod LANES` columns go through the portable
/// code. Per output, the blocks are still added in order, then the leftover inputs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn wide_rows<T: Lane>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    (rows, k, n): (usize, usize, usize),
) {
    assert!(y.len() == rows * n && x.len() == rows * k && w.len() == k * n && n >= 8);
    let blocks = k / 8;
    let chunk = (CHUNK_BYTES / (8 * n * size_of::<T>())).max(1);
    let full = rows / ROWS * ROWS;
    // The first of the last `n mod LANES` columns, which the tiles of every chunk leave to the
    // scalar code.
    let j_left = n - n % T::LANES;
    let mut b0 = 0;
    loop {
        let nb = chunk.min(blocks - b0);
        let rest = if b0 + nb == blocks { k - 8 * blocks } else { 0 };
        let c = (8 * b0, nb, rest);
        for r in (0..full).step_by(ROWS) {
            let (y, x) = (&mut y[r * n..(r + ROWS) * n], &x[r * k..(r + ROWS) * k]);
            // SAFETY: AVX2 and FMA are enabled on this function; sizes as asserted.
            unsafe { group::<T, ROWS, COLS>(y, x, w, (k, n), c) };
        }
        for r in full..rows {
            let (y, x) = (&mut y[r * n..(r + 1) * n], &x[r * k..(r + 1) * k]);
            // SAFETY: as above.
            unsafe { group::<T, 1, COLS_ONE_ROW>(y, x, w, (k, n), c) };
        }
        b0 += nb;
        if b0 == blocks {
            break;
        }
    }
    if j_left < n {
        wide_columns::<T>(y, x, w, (k, n), rows, j_left);
    }
}

/// Columns `j0..n` of `wide` (with fused multiply-adds) for `rows` rows, one output at a time:
/// the columns the vector tiles leave.
#[inline(always)]
fn wide_columns<T: Elem>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    (k, n): (usize, usize),
    rows: usize,
    j0: usize,
) {
    let blocks = k / 8;
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        for j in j0..n {
            let mut yj = y[r * n + j];
            for (b, xb) in xr.chunks_exact(8).enumerate() {
                let mut wj = [T::ZERO; 8];
                for (q, v) in wj.iter_mut().enumerate() {
                    *v = w[(8 * b + q) * n + j];
                }
                yj = block8::<T, true>(yj, xb.try_into().unwrap(), &wj);
            }
            for i in 8 * blocks..k {
                yj = madd::<T, true>(xr[i], w[i * n + j], yj);
            }
            y[r * n + j] = yj;
        }
    }
}
