//! Run-time choice between the portable kernels and their AVX2+FMA builds.

/// Whether this CPU has AVX2 and FMA, the features the wide kernel builds are compiled with.
///
/// `is_x86_feature_detected!` caches the CPUID result, so this is a couple of loads.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}
