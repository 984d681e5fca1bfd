//! Hyperbolic tangent over a slice, in place.
//!
//! `tanh_f32` evaluates, branch-free so that the loop auto-vectorises,
//!
//! ```text
//! tanh|x| = −m / (2 + m),   m = expm1(−2|x|) ∈ (−1, 0],
//! ```
//!
//! and restores the sign with `copysign`. There is a single formula for every |x|: `expm1`
//! keeps full relative precision near 0, so no separate small-argument polynomial is needed,
//! and `2 + m ∈ [1, 2]` never cancels. `expm1(y)` is computed as follows:
//!
//! * Cody–Waite reduction `y = k·ln2 + r`, `|r| ≤ ln2/2`: `k` is rounded to nearest by adding
//!   and subtracting the magic number 1.5·2²³, and `ln2 = LN2_HI + LN2_LO` where `LN2_HI` has
//!   16 significant bits, so `k·LN2_HI` and `y − k·LN2_HI` are exact.
//! * `expm1(r) ≈ r + r²·(C2 + C3·r + C4·r² + C5·r³ + C6·r⁴)`.
//! * `2ᵏ` is built from the exponent bits (the integer `k` is read from the low bits of the
//!   magic-rounded float), and `expm1(y) = 2ᵏ·expm1(r) + (2ᵏ − 1)`.
//!
//! The argument is clamped to `|x| ≤ 10` (tanh rounds to exactly ±1 in f32 from |x| ≈ 9.01 on),
//! which keeps `k ≥ −29` so the exponent bits never leave the normal range. NaN is not clamped
//! (the comparison is false) and propagates through the arithmetic.
//!
//! Measured over every finite f32 (the ignored test `exhaustive_f32`): max relative error
//! vs f64 `tanh` of 1.79e-7 on the AVX2+FMA path and 1.87e-7 on the portable one (1.5–3 ulp);
//! ±0 keep their sign, subnormals are returned exactly, `|x| ≥ 9.1` and ±∞ give exactly ±1,
//! NaN gives NaN.

/// `1/ln 2`, rounded to f32.
const INV_LN2: f32 = std::f32::consts::LOG2_E;
/// `ln 2` rounded to 16 significant bits (0.693145751953125), so `k·LN2_HI` is exact for |k| < 2⁸.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
/// `ln 2 − LN2_HI`, rounded to f32.
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer, held in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;
/// `|x|` is clamped here before the exponential; tanh(10) rounds to exactly 1 in f32.
const CLAMP: f32 = 10.0;

// Coefficients of expm1(r) ≈ r + r²·(C2 + C3 r + C4 r² + C5 r³ + C6 r⁴) on |r| ≤ 0.35 (slightly
// wider than ln2/2 to cover the rounding of k). They were fitted for this kernel with numpy:
// minimax of the *relative* error (f(r) = expm1(r) evaluated with mpmath at 4001 Chebyshev
// nodes, linear in the unknowns, solved by Lawson's iteratively reweighted least squares), then
// rounded to f32 one coefficient at a time, lowest degree first, refitting the remaining ones
// after each rounding. Max relative error of the polynomial in exact arithmetic: 1.45e-8.
const C2: f32 = 0.499_999_97;
const C3: f32 = 0.166_665_42;
const C4: f32 = 0.041_667_43;
const C5: f32 = 0.008_366_873_5;
const C6: f32 = 0.001_387_185_9;

/// `a·b + c`, fused when `FMA` (only instantiated where the CPU has FMA: the unfused libm call
/// would be slow), otherwise two roundings.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// tanh of one element; branch-free (the `if`s are selects), so loops over it vectorise.
#[inline(always)]
fn tanh_one<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    // y = −2|x| ∈ [−20, 0]; written so that NaN (comparison false) is passed through.
    let y = if a > CLAMP { -2.0 * CLAMP } else { -2.0 * a };
    // y = k·ln2 + r.
    let t = madd::<FMA>(y, INV_LN2, MAGIC);
    let kf = t - MAGIC;
    let r = madd::<FMA>(kf, -LN2_HI, y);
    let r = madd::<FMA>(kf, -LN2_LO, r);
    // expm1(r).
    let q = madd::<FMA>(C6, r, C5);
    let q = madd::<FMA>(q, r, C4);
    let q = madd::<FMA>(q, r, C3);
    let q = madd::<FMA>(q, r, C2);
    let p = madd::<FMA>(r * r, q, r);
    // 2^k: k sits in the low bits of t (as an offset from MAGIC); wrapping because a NaN
    // input makes these bits garbage (the result is NaN regardless).
    let s = f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    // m = expm1(y) = 2^k·(1 + p) − 1.
    let m = madd::<FMA>(s, p, s - 1.0);
    // tanh|x| = −m / (2 + m).
    (m / (-2.0 - m)).copysign(x)
}

#[inline(always)]
fn tanh_f32_body<const FMA: bool>(xs: &mut [f32]) {
    for x in xs {
        *x = tanh_one::<FMA>(*x);
    }
}

/// The portable path (SSE2 on x86-64), also used by the tests. Not inlined, so that the
/// dispatching entry point stays a feature test and a jump.
#[inline(never)]
pub(crate) fn tanh_f32_portable(xs: &mut [f32]) {
    tanh_f32_body::<false>(xs);
}

/// The same body compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_f32_avx2_fma(xs: &mut [f32]) {
    tanh_f32_body::<true>(xs);
}

/// The same body as [`tanh_f32_avx2_fma`] (the same fused operations in the same order, so
/// bit for bit the same values) compiled with AVX-512F as well: twice the lanes per
/// instruction for the per-token loops, whose tanh calls are a tenth of a step.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tanh_f32_avx512(xs: &mut [f32]) {
    tanh_f32_body::<true>(xs);
}

/// `x ← tanh(x)` for every element (max relative error 1.9e-7; see the module docs).
pub fn tanh_f32(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::Path::selected() == super::dispatch::Path::Avx512 {
        // SAFETY: the selected path is one the CPU has.
        unsafe { tanh_f32_avx512(xs) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::dispatch::use_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
        unsafe { tanh_f32_avx2_fma(xs) };
        return;
    }
    tanh_f32_portable(xs);
}

/// `x ← tanh(x)` for every element (the platform's correctly rounded-ish libm tanh: f64 is the
/// precision the gradient checks run in, so it keeps the exact function).
pub fn tanh_f64(xs: &mut [f64]) {
    for x in xs {
        *x = x.tanh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Kernel = fn(&mut [f32]);

    /// The dispatched entry point (AVX-512 or AVX2+FMA where available) and the portable path.
    const KERNELS: [(&str, Kernel); 2] =
        [("dispatched", tanh_f32), ("portable", tanh_f32_portable)];

    const MAX_REL: f64 = 1e-6;

    /// Applies `kernel` to `xs` and returns the largest relative error against f64 tanh,
    /// panicking on the first element off by more than `MAX_REL` (or with a wrong sign/NaN-ness).
    fn check(name: &str, kernel: Kernel, xs: &[f32]) -> f64 {
        let mut ys = xs.to_vec();
        kernel(&mut ys);
        let mut worst = 0.0_f64;
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = f64::from(x).tanh();
            if x.is_nan() {
                assert!(y.is_nan(), "{name}: tanh(NaN) = {y}");
                continue;
            }
            assert_eq!(
                y.is_sign_negative(),
                x.is_sign_negative(),
                "{name}: sign of tanh({x:e}) = {y:e}"
            );
            let rel = if want == 0.0 {
                f64::from(y).abs()
            } else {
                ((f64::from(y) - want) / want).abs()
            };
            assert!(
                rel <= MAX_REL,
                "{name}: tanh({x:e}) = {y:e}, want {want:e} (rel {rel:e})"
            );
            worst = worst.max(rel);
        }
        worst
    }

    /// The AVX-512 build gives the AVX2+FMA build's values bit for bit (where the CPU has
    /// both), over the working range, every binade (strided) and the special values.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_build_equals_the_avx2_build() {
        use super::super::dispatch::Path;
        if !Path::Avx512.is_available() {
            return;
        }
        let count = 1_u32 << 20;
        let mut xs: Vec<f32> = (0..=count)
            .map(|i| (f64::from(i) / f64::from(count) * 24.0 - 12.0) as f32)
            .collect();
        xs.extend((0..u32::MAX).step_by(4099).map(f32::from_bits));
        xs.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
        let (mut a, mut b) = (xs.clone(), xs);
        // SAFETY: the CPU has AVX-512F (checked above), hence AVX2 and FMA.
        unsafe {
            tanh_f32_avx512(&mut a);
            tanh_f32_avx2_fma(&mut b);
        }
        let differ = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(differ.count(), 0);
    }

    #[test]
    fn dense_sweep_of_the_working_range() {
        // 2²² + 1 evenly spaced points over [-10, 10] (odd count: includes 0 and both ends).
        let count = 1_u32 << 22;
        let xs: Vec<f32> = (0..=count)
            .map(|i| (f64::from(i) / f64::from(count) * 20.0 - 10.0) as f32)
            .collect();
        for (name, kernel) in KERNELS {
            let worst = check(name, kernel, &xs);
            assert!(worst > 0.0 && worst < 4e-7, "{name}: worst {worst:e}");
        }
    }

    #[test]
    fn strided_sweep_of_every_binade() {
        // Every 61st bit pattern of the positive finite floats (subnormals through f32::MAX), and
        // their negatives.
        let pos: Vec<f32> = (0..f32::INFINITY.to_bits())
            .step_by(61)
            .map(f32::from_bits)
            .collect();
        let neg: Vec<f32> = pos.iter().map(|x| -x).collect();
        for (name, kernel) in KERNELS {
            check(name, kernel, &pos);
            check(name, kernel, &neg);
        }
    }

    #[test]
    fn tiny_inputs_are_returned_exactly_with_their_sign() {
        let mut xs = vec![
            0.0_f32,
            -0.0,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::MIN_POSITIVE,
            1e-30,
            -3e-20,
        ];
        // Every subnormal bit pattern, with a stride.
        xs.extend((1..0x0080_0000_u32).step_by(997).map(f32::from_bits));
        // Below ~1e-8 the kernel's roundings leave x unchanged (and tanh(x) rounds to x).
        xs.extend((0..4000).map(|i| 1e-9 * (i as f32 / 4000.0)));
        for (name, kernel) in KERNELS {
            let mut ys = xs.clone();
            kernel(&mut ys);
            for (x, y) in xs.iter().zip(&ys) {
                assert_eq!(x.to_bits(), y.to_bits(), "{name}: tanh({x:e}) = {y:e}");
            }
        }
    }

    #[test]
    fn saturates_to_exactly_one_and_propagates_nan() {
        let mut big: Vec<f32> = vec![9.1, 10.0, 10.5, 88.0, 1e10, f32::MAX, f32::INFINITY];
        big.extend((0..1000).map(|i| 9.1 + i as f32 * 0.01));
        big.extend(
            (10.0_f32.to_bits()..f32::INFINITY.to_bits())
                .step_by(10_007)
                .map(f32::from_bits),
        );
        for (name, kernel) in KERNELS {
            let mut ys: Vec<f32> = big
                .iter()
                .chain(big.iter().map(|x| -x).collect::<Vec<_>>().iter())
                .copied()
                .collect();
            let xs = ys.clone();
            kernel(&mut ys);
            for (x, y) in xs.iter().zip(&ys) {
                assert_eq!(*y, 1.0_f32.copysign(*x), "{name}: tanh({x:e}) = {y:e}");
            }
            let mut nans = [
                f32::NAN,
                -f32::NAN,
                f32::from_bits(0x7f80_0001),
                f32::from_bits(0xffc1_2345),
            ];
            kernel(&mut nans);
            assert!(nans.iter().all(|y| y.is_nan()), "{name}: {nans:?}");
        }
    }

    #[test]
    fn every_slice_length_and_offset_gives_the_same_values() {
        // Exercises the vector body, its remainder and misaligned starts.
        let xs: Vec<f32> = (0..67).map(|i| (i as f32 - 33.0) * 0.37).collect();
        for (name, kernel) in KERNELS {
            let mut one_by_one = xs.clone();
            for x in &mut one_by_one {
                kernel(std::slice::from_mut(x));
            }
            for start in 0..9 {
                for end in start..xs.len() {
                    let mut ys = xs[start..end].to_vec();
                    kernel(&mut ys);
                    assert_eq!(ys, one_by_one[start..end], "{name}: {start}..{end}");
                }
            }
        }
    }

    /// Every finite f32, both paths (about a minute in release). Run with
    /// `cargo test --release -p mnnn-core exhaustive_f32 -- --ignored --nocapture`.
    #[test]
    #[ignore = "slow: every f32"]
    fn exhaustive_f32() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        for (name, kernel) in KERNELS {
            let worst = std::thread::scope(|scope| {
                let end = f32::INFINITY.to_bits();
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            let (lo, hi) = (
                                end / threads * t,
                                if t + 1 == threads {
                                    end
                                } else {
                                    end / threads * (t + 1)
                                },
                            );
                            let mut worst = 0.0_f64;
                            let mut buf = Vec::with_capacity(1 << 16);
                            let mut bits = lo;
                            while bits < hi {
                                let stop = hi.min(bits + (1 << 16));
                                buf.clear();
                                buf.extend((bits..stop).map(f32::from_bits));
                                buf.extend((bits..stop).map(|b| -f32::from_bits(b)));
                                worst = worst.max(check(name, kernel, &buf));
                                bits = stop;
                            }
                            worst
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold(0.0, f64::max)
            });
            println!("{name}: max relative error over every finite f32: {worst:e}");
        }
    }
}
