//! `narrow` for several rows on AVX2+FMA, with `W` transposed once per call.
//!
//! `narrow` keeps, per block of `P = L/N` inputs, the product of input `p` with column `j` in
//! accumulator `pN + j`; spreading `x[p]` over those lanes takes shuffles. Here `W` is
//! transposed block by block (`wt[(bN + j)P + p] = w[(bP + p)N + j]`, the leftover inputs
//! zero-padded to one more block exactly as `narrow` pads them), so the same scalar
//! accumulators are lane `p` of column `j`'s `P/LANES` vectors and the `P` inputs are plain
//! loads, shared by the `N` columns; each loaded weight vector serves `R` rows. `narrow`'s final
//! fold halves `l` pairwise, which for each `j` halves `p` pairwise: vertically over the
//! vectors, then `Lane::fold` within the last one, then `y[j] + sum` as there.

use super::lane::Lane;
use super::rows::{MAX_P, transpose_into};

/// One block for `R` rows: `acc[r][j][v] = fma(x_r[v], wt_j[v], acc[r][j][v])` for the
/// vectors `v0..v0 + VG`.
///
/// # Safety
/// AVX2 and FMA enabled; `x[r]` valid for `P` reads, `wb` for `N·P`, where
/// `P = PV·LANES ≥ (v0 + VG)·LANES`.
#[inline(always)]
unsafe fn block<T: Lane, const N: usize, const PV: usize, const R: usize, const VG: usize>(
    acc: &mut [[[T::V; VG]; N]; R],
    x: [*const T; R],
    wb: *const T,
    v0: usize,
) {
    let (l, p) = (T::LANES, PV * T::LANES);
    // SAFETY: in bounds by the contract; features enabled by the caller.
    unsafe {
        let mut xv = [[T::zero(); VG]; R];
        for (xr, xp) in xv.iter_mut().zip(x) {
            for (v, xrv) in xr.iter_mut().enumerate() {
                *xrv = T::load(xp.add((v0 + v) * l));
            }
        }
        for j in 0..N {
            for v in 0..VG {
                let wv = T::load(wb.add(j * p + (v0 + v) * l));
                for (ar, xr) in acc.iter_mut().zip(&xv) {
                    ar[j][v] = T::fmadd(xr[v], wv, ar[j][v]);
                }
            }
        }
    }
}

/// `R` rows (`y` is `R × N`, `x` is `R × k`) against the transposed `wt`: the vectors of each
/// column in passes of `VG` over all blocks, then the folds.
///
/// # Safety
/// AVX2 and FMA enabled; `wt` holds the `k/P` full blocks of `W` transposed, `wpad` the
/// zero-padded last one (if `P` does not divide `k`), `P = PV·LANES`.
#[inline(always)]
unsafe fn group<T: Lane, const N: usize, const PV: usize, const R: usize, const VG: usize>(
    y: &mut [T],
    x: &[T],
    k: usize,
    (wt, wpad): (&[T], &[T]),
) {
    let p = PV * T::LANES;
    let (blocks, rest) = (k / p, k % p);
    assert!(y.len() == R * N && x.len() == R * k && p <= MAX_P && PV.is_multiple_of(VG));
    assert!(wt.len() >= blocks * N * p && (rest == 0 || wpad.len() == N * p));
    let mut xpad = [[T::ZERO; MAX_P]; R];
    for (r, xp) in xpad.iter_mut().enumerate() {
        xp[..rest].copy_from_slice(&x[r * k + blocks * p..][..rest]);
    }
    // SAFETY: AVX enabled by the caller.
    let zero = unsafe { T::zero() };
    let mut sums = [[[zero; PV]; N]; R];
    for v0 in (0..PV).step_by(VG) {
        let mut acc = [[[zero; VG]; N]; R];
        // SAFETY: block b < k/p reads x[rk + bp..rk + (b+1)p] and wt[bNp..(b+1)Np], the padded
        // block xpad[r][..p] and wpad[..Np]: in bounds by the assertions.
        unsafe {
            for b in 0..blocks {
                let mut xs = [x.as_ptr(); R];
                for (r, xp) in xs.iter_mut().enumerate() {
                    *xp = xp.add(r * k + b * p);
                }
                block::<T, N, PV, R, VG>(&mut acc, xs, wt.as_ptr().add(b * N * p), v0);
            }
            if rest != 0 {
                let mut xs = [x.as_ptr(); R];
                for (xp, pad) in xs.iter_mut().zip(&xpad) {
                    *xp = pad.as_ptr();
                }
                block::<T, N, PV, R, VG>(&mut acc, xs, wpad.as_ptr(), v0);
            }
        }
        for (s, a) in sums.iter_mut().zip(&acc) {
            for (sj, aj) in s.iter_mut().zip(a) {
                sj[v0..v0 + VG].copy_from_slice(aj);
            }
        }
    }
    for (yr, s) in y.chunks_exact_mut(N).zip(&mut sums) {
        for (yj, sj) in yr.iter_mut().zip(s.iter_mut()) {
            let mut width = PV;
            while width > 1 {
                width /= 2;
                for v in 0..width {
                    // SAFETY: AVX enabled by the caller.
                    sj[v] = unsafe { T::vadd(sj[v], sj[v + width]) };
                }
            }
            // SAFETY: as above.
            *yj = *yj + unsafe { T::fold(sj[0]) };
        }
    }
}

/// `narrow::<T, FMA = true, N, L>` for `rows` rows: `W` transposed, then groups of `R` rows
/// and the leftover rows one by one; `PV = L/(N·LANES)` vectors per column, in passes of `VG`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn narrow_rows<
    T: Lane,
    const N: usize,
    const L: usize,
    const PV: usize,
    const R: usize,
    const VG: usize,
>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    (rows, k, n): (usize, usize, usize),
) {
    let p = L / N;
    assert!(n == N && p == PV * T::LANES && p.is_power_of_two());
    assert!(y.len() == rows * N && x.len() == rows * k && w.len() == k * N);
    // For N = 1 the layout is W's own, and only the padded block is built.
    let (blocks, rest) = (k / p, k % p);
    let mut wpad = [T::ZERO; MAX_P];
    let mut wt = T::transposed().take();
    let parts = if N == 1 {
        wpad[..rest].copy_from_slice(&w[blocks * p..]);
        (w, &wpad[..p])
    } else {
        transpose_into(w, k, N, p, &mut wt);
        wt.split_at(blocks * N * p)
    };
    let full = rows / R * R;
    for r in (0..full).step_by(R) {
        let (y, x) = (&mut y[r * N..(r + R) * N], &x[r * k..(r + R) * k]);
        // SAFETY: AVX2 and FMA are enabled on this function; wt as required.
        unsafe { group::<T, N, PV, R, VG>(y, x, k, parts) };
    }
    for r in full..rows {
        let (y, x) = (&mut y[r * N..(r + 1) * N], &x[r * k..(r + 1) * k]);
        // SAFETY: as above.
        unsafe { group::<T, N, PV, 1, VG>(y, x, k, parts) };
    }
    T::transposed().set(wt);
}
