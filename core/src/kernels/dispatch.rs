//! Run-time choice between the portable kernels and their AVX2+FMA and AVX-512 builds.
//!
//! The choice is made once per process: the best [`Path`] the CPU has, capped by the
//! environment variable `MNNN_KERNELS` (see [`Path::selected`]). Every kernel's dispatching
//! entry point follows it, so `MNNN_KERNELS=portable` runs the whole program on the portable
//! code, on any machine, and a result or a speed can be compared between paths without
//! another CPU.

use std::sync::OnceLock;

/// One build of the kernels, from the most portable to the widest.
///
/// The order is meaningful: a CPU that has a path has every path before it (an AVX-512 CPU
/// also has AVX2 and FMA), so kernels that have no AVX-512 build use their AVX2+FMA build
/// whenever the selected path is at least [`Path::Avx2`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// Plain Rust, compiled for the target's baseline (SSE2 on x86-64): runs everywhere.
    Portable,
    /// x86-64 with AVX2 and FMA (8 f32 lanes, fused multiply-adds).
    Avx2,
    /// x86-64 with AVX-512F as well as AVX2 and FMA (16 f32 lanes, 32 vector registers).
    Avx512,
}

/// The environment variable that caps the path the kernels use.
pub const ENV_VAR: &str = "MNNN_KERNELS";

impl Path {
    /// Every path, portable first: what a test iterates over, skipping the unavailable ones.
    pub const ALL: [Path; 3] = [Path::Portable, Path::Avx2, Path::Avx512];

    /// Whether this CPU can run this path.
    ///
    /// `is_x86_feature_detected!` caches the CPUID result, so this is a couple of loads.
    pub fn is_available(self) -> bool {
        match self {
            Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => Path::Avx2.is_available() && std::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Path::Avx2 | Path::Avx512 => false,
        }
    }

    /// The path the dispatching kernels use: the widest one the CPU has, unless
    /// `MNNN_KERNELS` asks for a narrower one.
    ///
    /// `MNNN_KERNELS` is read once, at the first kernel call of the process (changing it
    /// later has no effect). `portable` forces the portable code, `avx2` caps at AVX2+FMA
    /// (to measure or test that path on an AVX-512 machine), `avx512` or an unset variable
    /// leave the choice to the CPU. A path the CPU lacks is never used; an unknown value is
    /// ignored rather than failing a program that only wanted to compute.
    pub fn selected() -> Path {
        static SELECTED: OnceLock<Path> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let cap = std::env::var(ENV_VAR).ok();
            choose(parse(cap.as_deref()), |p| p.is_available())
        })
    }
}

/// The cap a value of `MNNN_KERNELS` asks for, if it names one.
fn parse(value: Option<&str>) -> Option<Path> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "portable" => Some(Path::Portable),
        "avx2" => Some(Path::Avx2),
        "avx512" => Some(Path::Avx512),
        _ => None,
    }
}

/// The widest available path no wider than `cap`.
fn choose(cap: Option<Path>, available: impl Fn(Path) -> bool) -> Path {
    let cap = cap.unwrap_or(Path::Avx512);
    Path::ALL
        .into_iter()
        .rev()
        .find(|&p| p <= cap && available(p))
        .unwrap_or(Path::Portable)
}

/// Whether the AVX2+FMA builds of the kernels are to be used: the CPU has them and
/// `MNNN_KERNELS` does not force the portable path.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn use_avx2_fma() -> bool {
    Path::selected() >= Path::Avx2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_caps_the_path_and_never_picks_a_missing_one() {
        let all = |_: Path| true;
        let no_512 = |p: Path| p != Path::Avx512;
        let none = |p: Path| p == Path::Portable;
        assert_eq!(choose(parse(None), all), Path::Avx512);
        assert_eq!(choose(parse(Some("portable")), all), Path::Portable);
        assert_eq!(choose(parse(Some(" Portable\n")), all), Path::Portable);
        assert_eq!(choose(parse(Some("avx2")), all), Path::Avx2);
        assert_eq!(choose(parse(Some("avx512")), no_512), Path::Avx2);
        assert_eq!(choose(parse(Some("avx2")), none), Path::Portable);
        assert_eq!(choose(parse(Some("sse9")), no_512), Path::Avx2);
        assert_eq!(choose(parse(Some("")), none), Path::Portable);
    }

    #[test]
    fn the_selected_path_is_available() {
        assert!(Path::selected().is_available());
        assert!(Path::Portable.is_available());
        // An AVX-512 CPU has the narrower paths too (the order the dispatch relies on).
        for (wide, narrow) in [(Path::Avx512, Path::Avx2), (Path::Avx2, Path::Portable)] {
            assert!(!wide.is_available() || narrow.is_available());
        }
    }
}
