//! `narrow` for several rows, portable: `W` transposed once per call.
//!
//! `narrow` keeps, per block of `P = L/N` inputs, the product of input `p` with column `j` in
//! accumulator `pN + j`, and spreading `x[p]` over those lanes costs shuffles. With `W`
//! transposed block by block (`wt[(bN + j)P + p] = w[(bP + p)N + j]`, the leftover inputs
//! zero-padded to one more block exactly as `narrow` pads them), the same scalar accumulators
//! sit at `[j][p]`, the inputs are read in order, and each weight serves `R` rows. `narrow`'s
//! final fold halves `l` pairwise, which for each `j` halves `p` pairwise; then `y[j] + sum`
//! as there. (`narrow_avx2` is the same with explicit vectors.)

use super::{Elem, madd};

/// Largest `P` (inputs per block) of the several-rows narrow kernels: the f32 dot product's 64.
pub(super) const MAX_P: usize = 64;

/// `w` (`k × n`) transposed block by block into `wt`, `p` inputs per block; the last block,
/// zero-padded when `p` does not divide `k`, is the last `n·p` elements. `wt` is refilled
/// whole, so that a buffer left by an earlier call (of any size or contents) can be reused.
pub(super) fn transpose_into<T: Elem>(w: &[T], k: usize, n: usize, p: usize, wt: &mut Vec<T>) {
    wt.clear();
    wt.resize(k.div_ceil(p) * n * p, T::ZERO);
    for (wtb, wb) in wt.chunks_exact_mut(n * p).zip(w.chunks(n * p)) {
        for (j, wtj) in wtb.chunks_exact_mut(p).enumerate() {
            for (q, v) in wtj.iter_mut().take(wb.len() / n).enumerate() {
                *v = wb[q * n + j];
            }
        }
    }
}

/// One block (`wb`, `N·P` transposed weights) into lanes `g0..g0 + G` of the accumulators
/// of `R` rows, whose inputs for those lanes are `xb`.
#[inline(always)]
fn add_block<T: Elem, const FMA: bool, const N: usize, const R: usize, const G: usize>(
    acc: &mut [[[T; G]; N]; R],
    xb: &[[T; G]; R],
    wb: &[T],
    g0: usize,
) {
    let p = wb.len() / N;
    for j in 0..N {
        let wj: &[T; G] = wb[j * p + g0..][..G].try_into().unwrap();
        for (ar, xr) in acc.iter_mut().zip(xb) {
            for c in 0..G {
                ar[j][c] = madd::<T, FMA>(xr[c], wj[c], ar[j][c]);
            }
        }
    }
}

/// `R` rows (`y` is `R × N`, `x` is `R × k`) against the transposed `wt`: the `P` lanes of
/// every column in passes of `G` over all blocks (so that the live accumulators fit in
/// registers), then the folds.
#[inline(always)]
fn group<
    T: Elem,
    const FMA: bool,
    const N: usize,
    const L: usize,
    const R: usize,
    const G: usize,
>(
    y: &mut [T],
    x: &[T],
    k: usize,
    wt: &[T],
) {
    let p = L / N;
    let (blocks, rest) = (k / p, k % p);
    debug_assert!(p <= MAX_P && p.is_multiple_of(G) && wt.len() == k.div_ceil(p) * L);
    let mut xpad = [[T::ZERO; MAX_P]; R];
    for (r, xp) in xpad.iter_mut().enumerate() {
        xp[..rest].copy_from_slice(&x[r * k + blocks * p..][..rest]);
    }
    let mut sums = [[T::ZERO; L]; R];
    for g0 in (0..p).step_by(G) {
        let mut acc = [[[T::ZERO; G]; N]; R];
        for b in 0..blocks {
            let mut xb = [[T::ZERO; G]; R];
            for (r, xr) in xb.iter_mut().enumerate() {
                xr.copy_from_slice(&x[r * k + b * p + g0..][..G]);
            }
            add_block::<T, FMA, N, R, G>(&mut acc, &xb, &wt[b * L..][..L], g0);
        }
        if rest != 0 {
            let mut xb = [[T::ZERO; G]; R];
            for (xr, pad) in xb.iter_mut().zip(&xpad) {
                xr.copy_from_slice(&pad[g0..][..G]);
            }
            add_block::<T, FMA, N, R, G>(&mut acc, &xb, &wt[blocks * L..][..L], g0);
        }
        for (s, a) in sums.iter_mut().zip(&acc) {
            for (j, aj) in a.iter().enumerate() {
                s[j * p + g0..][..G].copy_from_slice(aj);
            }
        }
    }
    for (yr, s) in y.chunks_exact_mut(N).zip(&mut sums) {
        for (yj, sj) in yr.iter_mut().zip(s.chunks_exact_mut(p)) {
            let mut width = p;
            while width > 1 {
                width /= 2;
                let (lo, hi) = sj.split_at_mut(width);
                for (u, v) in lo.iter_mut().zip(&hi[..width]) {
                    *u = *u + *v;
                }
            }
            *yj = *yj + sj[0];
        }
    }
}

/// `narrow::<T, FMA, N, L>` for `rows` rows: `W` transposed, then groups of `R` rows and the
/// leftover rows one by one, `G` lanes per pass.
#[inline(always)]
pub(super) fn narrow_rows<
    T: Elem,
    const FMA: bool,
    const N: usize,
    const L: usize,
    const R: usize,
    const G: usize,
>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    (rows, k, n): (usize, usize, usize),
) {
    assert!(n == N && y.len() == rows * N && x.len() == rows * k && w.len() == k * N);
    let mut wt = T::transposed().take();
    transpose_into(w, k, N, L / N, &mut wt);
    let full = rows / R * R;
    for r in (0..full).step_by(R) {
        let (y, x) = (&mut y[r * N..(r + R) * N], &x[r * k..(r + R) * k]);
        group::<T, FMA, N, L, R, G>(y, x, k, &wt);
    }
    for r in full..rows {
        let (y, x) = (&mut y[r * N..(r + 1) * N], &x[r * k..(r + 1) * k]);
        group::<T, FMA, N, L, 1, G>(y, x, k, &wt);
    }
    T::transposed().set(wt);
}
