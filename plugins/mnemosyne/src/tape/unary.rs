//! Elementwise functions with their first derivatives.

use mnnn_core::Scalar;

/// `√(2/π)`, the tanh-GELU's inner scale.
const C: f64 = 0.797_884_560_802_865_4;
/// The tanh-GELU's cubic coefficient.
const A: f64 = 0.044_715;

/// An elementwise function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `x²`
    Square,
    /// `(x + eps)^(−1/2)`
    Rsqrt(f64),
    /// `(x + eps)^(1/2)`
    Sqrt(f64),
    /// `1 / x`
    Recip,
    /// `eˣ`
    Exp,
    /// `1 / (1 + e⁻ˣ)`
    Sigmoid,
    /// `ln(1 + eˣ)`
    Softplus,
    /// `ln σ(x) = −softplus(−x)`
    LogSigmoid,
    /// The tanh approximation of GELU.
    Gelu,
    /// The derivative of [`Unary::Gelu`] (so the inner learner's own backward can be
    /// differentiated).
    GeluPrime,
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }
}

fn gelu(x: f64) -> f64 {
    let th = (C * (x + A * x * x * x)).tanh();
    0.5 * x * (1.0 + th)
}

fn gelu_prime(x: f64) -> f64 {
    let th = (C * (x + A * x * x * x)).tanh();
    let du = C * (1.0 + 3.0 * A * x * x);
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du
}

fn gelu_second(x: f64) -> f64 {
    let th = (C * (x + A * x * x * x)).tanh();
    let du = C * (1.0 + 3.0 * A * x * x);
    let ddu = 6.0 * A * C * x;
    (1.0 - th * th) * (du + 0.5 * x * (ddu - 2.0 * th * du * du))
}

/// `th = tanh(√(2/π)(z + 0.044715 z³))` for every element: what GELU and its derivatives
/// share, through the vectorised tanh of `mnnn_core` (libm's in f64, a few ulps from it in
/// f32).
pub(crate) fn gelu_tanh<S: Scalar>(z: &[S], th: &mut [S]) {
    let (c, a) = (S::from_f64(C), S::from_f64(A));
    for (t, &x) in th.iter_mut().zip(z) {
        *t = c * (x + a * x * x * x);
    }
    S::tanh_inplace(th);
}

/// `gelu(z)` from `th` ([`gelu_tanh`]).
#[inline(always)]
pub(crate) fn gelu_from<S: Scalar>(x: S, th: S) -> S {
    S::from_f64(0.5) * x * (S::one() + th)
}

/// `gelu′(z)` from `th` ([`gelu_tanh`]).
#[inline(always)]
pub(crate) fn gelu_prime_from<S: Scalar>(x: S, th: S) -> S {
    let (c, a, half) = (S::from_f64(C), S::from_f64(A), S::from_f64(0.5));
    let du = c * (S::one() + S::from_f64(3.0) * a * x * x);
    half * (S::one() + th) + half * x * (S::one() - th * th) * du
}

/// `gelu″(z)` from `th` ([`gelu_tanh`]).
#[inline(always)]
fn gelu_second_from<S: Scalar>(x: S, th: S) -> S {
    let (c, a) = (S::from_f64(C), S::from_f64(A));
    let du = c * (S::one() + S::from_f64(3.0) * a * x * x);
    let ddu = S::from_f64(6.0) * a * c * x;
    (S::one() - th * th) * (du + S::from_f64(0.5) * x * (ddu - S::from_f64(2.0) * th * du * du))
}

impl Unary {
    /// `out = f(x)` elementwise. The GELU family goes through one vectorised tanh per slice
    /// (the hot maps of the MLP memory and the FFN); the rest are [`Unary::apply`].
    pub fn apply_slice<S: Scalar>(self, x: &[S], out: &mut [S]) {
        match self {
            Unary::Gelu | Unary::GeluPrime => {
                gelu_tanh(x, out);
                let f = if self == Unary::Gelu {
                    gelu_from
                } else {
                    gelu_prime_from
                };
                out.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v, *o));
            }
            // Exact in either precision: an f32 square rounded from f64 is the f32 product.
            Unary::Square => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v * v),
            _ => out.iter_mut().zip(x).for_each(|(o, &v)| *o = self.apply(v)),
        }
    }

    /// `d ← d ⊙ f′(x)` elementwise, the GELU family vectorised as in [`Unary::apply_slice`];
    /// `th` is scratch of `x`'s length.
    pub fn scale_by_derivative<S: Scalar>(self, x: &[S], d: &mut [S], th: &mut [S]) {
        match self {
            Unary::Gelu | Unary::GeluPrime => {
                gelu_tanh(x, th);
                let f = if self == Unary::Gelu {
                    gelu_prime_from
                } else {
                    gelu_second_from
                };
                for ((dv, &v), &t) in d.iter_mut().zip(x).zip(th.iter()) {
                    *dv *= f(v, t);
                }
            }
            Unary::Square => {
                let two = S::from_f64(2.0);
                d.iter_mut().zip(x).for_each(|(dv, &v)| *dv *= two * v);
            }
            _ => d
                .iter_mut()
                .zip(x)
                .for_each(|(dv, &v)| *dv *= self.derivative(v)),
        }
    }

    /// `f(x)`. Computed in f64 and rounded once.
    pub fn apply<S: Scalar>(self, x: S) -> S {
        let x = x.as_f64();
        S::from_f64(match self {
            Unary::Square => x * x,
            Unary::Rsqrt(eps) => 1.0 / (x + eps).sqrt(),
            Unary::Sqrt(eps) => (x + eps).sqrt(),
            Unary::Recip => 1.0 / x,
            Unary::Exp => x.exp(),
            Unary::Sigmoid => sigmoid(x),
            Unary::Softplus => softplus(x),
            Unary::LogSigmoid => -softplus(-x),
            Unary::Gelu => gelu(x),
            Unary::GeluPrime => gelu_prime(x),
        })
    }

    /// `f′(x)`.
    pub fn derivative<S: Scalar>(self, x: S) -> S {
        let x = x.as_f64();
        S::from_f64(match self {
            Unary::Square => 2.0 * x,
            Unary::Rsqrt(eps) => -0.5 / ((x + eps) * (x + eps).sqrt()),
            Unary::Sqrt(eps) => 0.5 / (x + eps).sqrt(),
            Unary::Recip => -1.0 / (x * x),
            Unary::Exp => x.exp(),
            Unary::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Unary::Softplus => sigmoid(x),
            Unary::LogSigmoid => sigmoid(-x),
            Unary::Gelu => gelu_prime(x),
            Unary::GeluPrime => gelu_second(x),
        })
    }
}
