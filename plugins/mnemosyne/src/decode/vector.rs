//! Row-vector pieces of the decode step, on plain slices.

use crate::tape::Unary;
use mnnn_core::Scalar;

/// RMSNorm's floor, as the tape's stack uses it.
const NORM_EPS: f64 = 1e-6;
/// ℓ2-normalisation floor of queries and keys.
const L2_EPS: f64 = 1e-6;

/// `y = x W + b` (`W` row-major, `x.len() × y.len()`).
#[inline(always)]
pub fn affine<S: Scalar>(x: &[S], w: &[S], b: &[S], y: &mut [S]) {
    y.copy_from_slice(b);
    S::gemv_acc(y, x, w);
}

/// `x W` for a row `x` (`W` row-major), into `y`.
#[inline(always)]
pub fn product<S: Scalar>(x: &[S], w: &[S], y: &mut [S]) {
    y.fill(S::zero());
    S::gemv_acc(y, x, w);
}

/// `Σ xᵢ²`.
#[inline(always)]
pub fn sum_sq<S: Scalar>(x: &[S]) -> S {
    x.iter().fold(S::zero(), |acc, &v| acc + v * v)
}

/// `out = x / √(mean(x²) + ε) ⊙ g`.
#[inline(always)]
pub fn rms_norm<S: Scalar>(x: &[S], g: &[S], out: &mut [S]) {
    let ms = sum_sq(x) * S::from_f64(1.0 / x.len() as f64);
    let inv = Unary::Rsqrt(NORM_EPS).apply(ms);
    for ((o, &v), &gi) in out.iter_mut().zip(x).zip(g) {
        *o = v * inv * gi;
    }
}

/// `x ← x / √(‖x‖² + ε)`.
pub fn l2_normalize<S: Scalar>(x: &mut [S]) {
    let inv = Unary::Rsqrt(L2_EPS).apply(sum_sq(x));
    x.iter_mut().for_each(|v| *v *= inv);
}

/// `out = gelu(z)`.
#[inline(always)]
pub fn gelu_into<S: Scalar>(z: &[S], out: &mut [S]) {
    Unary::Gelu.apply_slice(z, out);
}

/// LayerNorm statistics: writes `x̂ = (z − μ)/√(σ² + ε)` and returns `1/√(σ² + ε)`.
#[inline(always)]
pub fn ln_hat<S: Scalar>(z: &[S], xh: &mut [S], eps: f64) -> S {
    let inv_n = S::from_f64(1.0 / z.len() as f64);
    let mu = z.iter().fold(S::zero(), |a, &v| a + v) * inv_n;
    for (x, &v) in xh.iter_mut().zip(z) {
        *x = v - mu;
    }
    let var = sum_sq(xh) * inv_n;
    let rstd = Unary::Rsqrt(eps).apply(var);
    xh.iter_mut().for_each(|x| *x *= rstd);
    rstd
}
