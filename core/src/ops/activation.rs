//! Elementwise activations and their VJPs.

use crate::Scalar;
use serde::{Deserialize, Serialize};

/// An elementwise nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^{-x})`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// `x · Φ(x)` in its tanh form, `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))`.
    Gelu,
    /// `x`.
    Identity,
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_A: f64 = 0.044_715;

impl Activation {
    /// `y = act(x)`; `y` may not alias `x` (use [`Activation::apply_inplace`] for that).
    pub fn apply<S: Scalar>(self, x: &[S], y: &mut [S]) {
        y.copy_from_slice(x);
        self.apply_inplace(y);
    }

    /// `x ← act(x)`.
    pub fn apply_inplace<S: Scalar>(self, x: &mut [S]) {
        let half = S::from_f64(0.5);
        match self {
            Activation::Tanh => S::tanh_inplace(x),
            Activation::Sigmoid => {
                // σ(x) = ½ + ½ tanh(x/2): one fast kernel serves both.
                x.iter_mut().for_each(|v| *v *= half);
                S::tanh_inplace(x);
                x.iter_mut().for_each(|v| *v = half + half * *v);
            }
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(S::zero())),
            Activation::Gelu => {
                let c = S::from_f64(GELU_C);
                let a = S::from_f64(GELU_A);
                for v in x.iter_mut() {
                    let u = *v;
                    *v = u * half * (S::one() + (c * (u + a * u * u * u)).tanh());
                }
            }
            Activation::Identity => {}
        }
    }

    /// `dx (+)= dy ⊙ act'(x)`, given the input `x` and output `y` of the forward pass.
    /// With `accumulate` the result is added to `dx`, otherwise assigned.
    pub fn vjp<S: Scalar>(self, x: &[S], y: &[S], dy: &[S], dx: &mut [S], accumulate: bool) {
        let one = S::one();
        let put = |d: &mut S, v: S| {
            if accumulate { *d += v } else { *d = v }
        };
        match self {
            Activation::Tanh => {
                for ((d, &yv), &g) in dx.iter_mut().zip(y).zip(dy) {
                    put(d, g * (one - yv * yv));
                }
            }
            Activation::Sigmoid => {
                for ((d, &yv), &g) in dx.iter_mut().zip(y).zip(dy) {
                    put(d, g * yv * (one - yv));
                }
            }
            Activation::Relu => {
                for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
                    put(d, if xv > S::zero() { g } else { S::zero() });
                }
            }
            Activation::Gelu => {
                let c = S::from_f64(GELU_C);
                let a = S::from_f64(GELU_A);
                let half = S::from_f64(0.5);
                let three = S::from_f64(3.0);
                for ((d, &u), &g) in dx.iter_mut().zip(x).zip(dy) {
                    let t = (c * (u + a * u * u * u)).tanh();
                    let dt = (one - t * t) * c * (one + three * a * u * u);
                    put(d, g * half * ((one + t) + u * dt));
                }
            }
            Activation::Identity => {
                for (d, &g) in dx.iter_mut().zip(dy) {
                    put(d, g);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{numeric_gradient, relative_error};

    #[test]
    fn every_activation_vjp_matches_finite_differences() {
        let xs = [-2.3, -0.7, -0.01, 0.2, 0.9, 3.1];
        let c = [0.4, -1.1, 0.7, 2.0, -0.3, 0.9];
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Gelu,
            Activation::Identity,
        ] {
            let mut y = [0.0; 6];
            act.apply(&xs, &mut y);
            let mut dx = [0.0; 6];
            act.vjp(&xs, &y, &c, &mut dx, false);
            let mut x = xs.to_vec();
            let num = numeric_gradient(&mut x, 1e-6, &mut |x| {
                let mut y = vec![0.0; 6];
                act.apply(x, &mut y);
                y.iter().zip(&c).map(|(a, b)| a * b).sum()
            });
            assert!(relative_error(&dx, &num, 1e-12) < 1e-8, "{act:?}");
        }
    }

    #[test]
    fn values_are_the_named_functions() {
        let mut y = [0.0f64; 1];
        Activation::Sigmoid.apply(&[0.3], &mut y);
        assert!((y[0] - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-15);
        Activation::Gelu.apply(&[1.0], &mut y);
        assert!((y[0] - 0.841_191_990_607_477_2).abs() < 1e-12);
        Activation::Relu.apply(&[-1.0], &mut y);
        assert_eq!(y[0], 0.0);
    }
}
