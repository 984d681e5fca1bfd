//! `n = 4`, f32, several rows on AVX2+FMA: exactly the scalar operations of
//! `gemv4_f32_avx2_fma` per row, without its permutes.
//!
//! That kernel keeps, per block of 8 inputs `x[8b + p]` (`p = 2q + h`), the product with
//! `w[4(8b + p) + j]` in lane `4h + j` of accumulator `q`, spreading `x` over the lanes with a
//! permute per accumulator. Here `W` is transposed block by block
//! (`wt[32b + 8j + p] = w[4(8b + p) + j]`): the same scalars live in lane `p` of accumulator
//! `j`, the 8 inputs are a plain load, and each loaded weight vector serves `GROUP` rows. At
//! the end the adds of the single-row fold are replayed on the same operands, in the same
//! order, and the leftover inputs are fused one by one as there.

use std::arch::x86_64::*;

use super::Elem;
use super::rows::transpose_into;

/// Rows processed together.
const GROUP: usize = 2;

/// `rows` rows of `y += x·W` with `n = 4` (`y` is `rows × 4`, `x` is `rows × k`, `w` is
/// `k × 4`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn quad_rows(y: &mut [f32], x: &[f32], w: &[f32], rows: usize) {
    let k = w.len() / 4;
    assert!(y.len() == 4 * rows && x.len() == rows * k && w.len() == 4 * k);
    let blocks = k / 8;
    let mut wt = f32::transposed().take();
    transpose_into(w, k, 4, 8, &mut wt);
    // The leftover inputs are fused from `w` itself, as the single-row kernel does, so the
    // padded last block is not read.
    let wfull = &wt[..32 * blocks];
    let full = rows / GROUP * GROUP;
    for r in (0..full).step_by(GROUP) {
        let (y, x) = (&mut y[4 * r..4 * (r + GROUP)], &x[k * r..k * (r + GROUP)]);
        // SAFETY: same CPU features; sizes as required there.
        unsafe { group::<GROUP>(y, x, w, wfull) };
    }
    for r in full..rows {
        let (y, x) = (&mut y[4 * r..4 * (r + 1)], &x[k * r..k * (r + 1)]);
        // SAFETY: as above.
        unsafe { group::<1>(y, x, w, wfull) };
    }
    f32::transposed().set(wt);
}

/// `R` rows.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `y.len() == 4R`, `x.len() == R·k`, `w.len() == 4k` and
/// `wt.len() == 32·(k/8)`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn group<const R: usize>(y: &mut [f32], x: &[f32], w: &[f32], wt: &[f32]) {
    let k = w.len() / 4;
    let blocks = k / 8;
    debug_assert!(y.len() == 4 * R && x.len() == R * k && wt.len() == 32 * blocks);
    // SAFETY: the loads read wt[32b..32b+32] and x[rk + 8b..rk + 8b + 8] with b < k/8, r < R,
    // and w[4i..4i+4] with i < k, the stores write y[4r..4r+4]: all in bounds by the sizes
    // above. AVX2 and FMA are enabled on this function.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        for b in 0..blocks {
            let mut wv = [_mm256_setzero_ps(); 4];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(wt.as_ptr().add(32 * b + 8 * j));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm256_loadu_ps(x.as_ptr().add(r * k + 8 * b));
                for j in 0..4 {
                    a[j] = _mm256_fmadd_ps(xv, wv[j], a[j]);
                }
            }
        }
        for (r, &[c0, c1, c2, c3]) in acc.iter().enumerate() {
            // Lane p of cⱼ holds what lane 4h + j of accumulator q holds in the single-row
            // kernel (p = 2q + h). Its fold is ((acc₀ + acc₁) + (acc₂ + acc₃)), then
            // half h = 0 + half h = 1: the same adds, on the same operands, in the same order.
            let t01 = _mm256_add_ps(
                _mm256_shuffle_ps::<0x44>(c0, c1),
                _mm256_shuffle_ps::<0xEE>(c0, c1),
            );
            let t23 = _mm256_add_ps(
                _mm256_shuffle_ps::<0x44>(c2, c3),
                _mm256_shuffle_ps::<0xEE>(c2, c3),
            );
            // Lanes (h, j): (0, 0), (1, 0), (0, 1), (1, 1); and for j = 2, 3.
            let u01 = _mm_add_ps(_mm256_castps256_ps128(t01), _mm256_extractf128_ps::<1>(t01));
            let u23 = _mm_add_ps(_mm256_castps256_ps128(t23), _mm256_extractf128_ps::<1>(t23));
            let mut out = _mm_add_ps(
                _mm_shuffle_ps::<0x88>(u01, u23),
                _mm_shuffle_ps::<0xDD>(u01, u23),
            );
            for i in 8 * blocks..k {
                let wi = _mm_loadu_ps(w.as_ptr().add(4 * i));
                out = _mm_fmadd_ps(_mm_set1_ps(x[r * k + i]), wi, out);
            }
            let yr = y.as_mut_ptr().add(4 * r);
            _mm_storeu_ps(yr, _mm_add_ps(_mm_loadu_ps(yr), out));
        }
    }
}
