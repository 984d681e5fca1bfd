//! f32 and f64 vectors for the hand-laid-out AVX2+FMA kernels.
//!
//! The methods are `#[inline(always)]` wrappers of the intrinsics, for use inside functions
//! compiled with AVX2 and FMA (where they inline to single instructions).

use std::arch::x86_64::*;

use super::Elem;

/// f32 and f64 with their AVX vector.
pub(super) trait Lane: Elem {
    /// The 256-bit vector.
    type V: Copy;
    /// Elements per vector.
    const LANES: usize;
    /// # Safety
    /// AVX must be enabled in the caller (after inlining).
    unsafe fn zero() -> Self::V;
    /// # Safety
    /// `p` must be valid for reading `LANES` elements; AVX enabled.
    unsafe fn load(p: *const Self) -> Self::V;
    /// # Safety
    /// `p` must be valid for writing `LANES` elements; AVX enabled.
    unsafe fn store(p: *mut Self, v: Self::V);
    /// # Safety
    /// `p` must be valid for reading one element; AVX enabled.
    unsafe fn splat(p: *const Self) -> Self::V;
    /// # Safety
    /// AVX enabled.
    unsafe fn vmul(a: Self::V, b: Self::V) -> Self::V;
    /// `a·b + c`, fused.
    ///
    /// # Safety
    /// FMA enabled.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// # Safety
    /// AVX enabled.
    unsafe fn vadd(a: Self::V, b: Self::V) -> Self::V;
    /// The lanes summed by pairwise halving: lane `p` plus lane `p + LANES/2`, and so on down
    /// to one (the order of `narrow`'s final fold).
    ///
    /// # Safety
    /// AVX enabled.
    unsafe fn fold(v: Self::V) -> Self;
}

impl Lane for f32 {
    type V = __m256;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> __m256 {
        unsafe { _mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn vmul(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn vadd(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn fold(v: __m256) -> f32 {
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        }
    }
}

impl Lane for f64 {
    type V = __m256d;
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn zero() -> __m256d {
        unsafe { _mm256_setzero_pd() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> __m256d {
        unsafe { _mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: __m256d) {
        unsafe { _mm256_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f64) -> __m256d {
        unsafe { _mm256_broadcast_sd(&*p) }
    }
    #[inline(always)]
    unsafe fn vmul(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_mul_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        unsafe { _mm256_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    unsafe fn vadd(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_add_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn fold(v: __m256d) -> f64 {
        unsafe {
            let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }
}
