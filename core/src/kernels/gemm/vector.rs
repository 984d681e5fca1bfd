//! The few vector operations the product's tile needs, once per path and element type, so
//! that one tile body serves every build.
//!
//! Every method is `unsafe` and `#[inline(always)]`: the intrinsics behind them need their
//! CPU features, which only the path's entry function enables, and only once inlined into it
//! do they become single instructions.

use super::Elem;

/// A register of `LANES` elements.
pub(super) trait Vector: Copy {
    type E: Elem;
    /// What selects the first lanes for a partial load or store (built once per tile).
    type Mask: Copy;
    const LANES: usize;

    /// # Safety
    /// The CPU has the path's features (true of every method below).
    unsafe fn zero() -> Self;
    unsafe fn splat(x: Self::E) -> Self;
    /// # Safety
    /// `p..p + LANES` is readable.
    unsafe fn load(p: *const Self::E) -> Self;
    /// # Safety
    /// `p..p + LANES` is writable.
    unsafe fn store(self, p: *mut Self::E);
    /// The mask of the first `len` lanes, `0 < len <= LANES`.
    unsafe fn mask(len: usize) -> Self::Mask;
    /// The first lanes of `mask` from `p`, zero elsewhere; only those lanes are read.
    ///
    /// # Safety
    /// The masked lanes are readable.
    unsafe fn load_part(p: *const Self::E, mask: Self::Mask) -> Self;
    /// Writes only the lanes of `mask`.
    ///
    /// # Safety
    /// The masked lanes are writable.
    unsafe fn store_part(self, p: *mut Self::E, mask: Self::Mask);
    /// `a·b + c`: fused on the SIMD paths, two roundings on the portable one.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    unsafe fn mul(a: Self, b: Self) -> Self;
}

/// The portable register: an array the compiler maps onto the baseline's vectors (one SSE2
/// register on x86-64, one NEON register on aarch64).
#[derive(Clone, Copy)]
pub(super) struct Lanes<T, const N: usize>([T; N]);

impl<T: Elem, const N: usize> Vector for Lanes<T, N> {
    type E = T;
    type Mask = usize;
    const LANES: usize = N;

    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([T::ZERO; N])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Lanes([x; N])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: by the contract, N elements from p are readable.
        Lanes(std::array::from_fn(|l| unsafe { *p.add(l) }))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        for (l, x) in self.0.into_iter().enumerate() {
            // SAFETY: by the contract.
            unsafe { *p.add(l) = x };
        }
    }
    #[inline(always)]
    unsafe fn mask(len: usize) -> usize {
        len
    }
    #[inline(always)]
    unsafe fn load_part(p: *const T, len: usize) -> Self {
        // SAFETY: by the contract, the first `len` elements are readable.
        Lanes(std::array::from_fn(|l| {
            if l < len {
                unsafe { *p.add(l) }
            } else {
                T::ZERO
            }
        }))
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut T, len: usize) {
        for (l, x) in self.0.into_iter().enumerate().take(len) {
            // SAFETY: by the contract.
            unsafe { *p.add(l) = x };
        }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        Lanes(std::array::from_fn(|l| a.0[l] * b.0[l] + c.0[l]))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        Lanes(std::array::from_fn(|l| a.0[l] * b.0[l]))
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Vector;
    use std::arch::x86_64::*;

    /// A sliding window over these gives the AVX2 mask of the first `len` 32-bit lanes.
    static MASK32: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    /// The same for 64-bit lanes.
    static MASK64: [i64; 8] = [-1, -1, -1, -1, 0, 0, 0, 0];

    /// 8 × f32 in a ymm register (AVX2+FMA).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2F32(__m256);
    /// 4 × f64 in a ymm register (AVX2+FMA).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2F64(__m256d);
    /// 16 × f32 in a zmm register (AVX-512F).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx512F32(__m512);
    /// 8 × f64 in a zmm register (AVX-512F).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx512F64(__m512d);

    // SAFETY (every method of the four impls): the CPU has the path's features (the trait's
    // contract) and the pointers are valid for the lanes touched (each method's contract).
    impl Vector for Avx2F32 {
        type E = f32;
        type Mask = __m256i;
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Self(_mm256_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Self(_mm256_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Self(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mask(len: usize) -> __m256i {
            unsafe { _mm256_loadu_si256(MASK32.as_ptr().add(8 - len).cast()) }
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f32, mask: __m256i) -> Self {
            unsafe { Self(_mm256_maskload_ps(p, mask)) }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f32, mask: __m256i) {
            unsafe { _mm256_maskstore_ps(p, mask, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe { Self(_mm256_fmadd_ps(a.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            unsafe { Self(_mm256_mul_ps(a.0, b.0)) }
        }
    }

    impl Vector for Avx2F64 {
        type E = f64;
        type Mask = __m256i;
        const LANES: usize = 4;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Self(_mm256_setzero_pd()) }
        }
        #[inline(always)]
        unsafe fn splat(x: f64) -> Self {
            unsafe { Self(_mm256_set1_pd(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            unsafe { Self(_mm256_loadu_pd(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe { _mm256_storeu_pd(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mask(len: usize) -> __m256i {
            unsafe { _mm256_loadu_si256(MASK64.as_ptr().add(4 - len).cast()) }
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f64, mask: __m256i) -> Self {
            unsafe { Self(_mm256_maskload_pd(p, mask)) }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f64, mask: __m256i) {
            unsafe { _mm256_maskstore_pd(p, mask, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe { Self(_mm256_fmadd_pd(a.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            unsafe { Self(_mm256_mul_pd(a.0, b.0)) }
        }
    }

    impl Vector for Avx512F32 {
        type E = f32;
        type Mask = __mmask16;
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Self(_mm512_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            unsafe { Self(_mm512_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            unsafe { Self(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mask(len: usize) -> __mmask16 {
            ((1_u32 << len) - 1) as __mmask16
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f32, mask: __mmask16) -> Self {
            unsafe { Self(_mm512_maskz_loadu_ps(mask, p)) }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f32, mask: __mmask16) {
            unsafe { _mm512_mask_storeu_ps(p, mask, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe { Self(_mm512_fmadd_ps(a.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            unsafe { Self(_mm512_mul_ps(a.0, b.0)) }
        }
    }

    impl Vector for Avx512F64 {
        type E = f64;
        type Mask = __mmask8;
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            unsafe { Self(_mm512_setzero_pd()) }
        }
        #[inline(always)]
        unsafe fn splat(x: f64) -> Self {
            unsafe { Self(_mm512_set1_pd(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            unsafe { Self(_mm512_loadu_pd(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe { _mm512_storeu_pd(p, self.0) }
        }
        #[inline(always)]
        unsafe fn mask(len: usize) -> __mmask8 {
            ((1_u32 << len) - 1) as __mmask8
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f64, mask: __mmask8) -> Self {
            unsafe { Self(_mm512_maskz_loadu_pd(mask, p)) }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f64, mask: __mmask8) {
            unsafe { _mm512_mask_storeu_pd(p, mask, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            unsafe { Self(_mm512_fmadd_pd(a.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn mul(a: Self, b: Self) -> Self {
            unsafe { Self(_mm512_mul_pd(a.0, b.0)) }
        }
    }
}
