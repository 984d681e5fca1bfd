//! Weight initialisation the entries' [`Cell::init_params`](crate::Cell::init_params) share.
//!
//! Each function draws one value per element, in order, so an entry's weights depend only on
//! its seed and the order in which it fills its tensors.

use crate::{Rng, Scalar};

/// Fills `dst` with draws from `U(−lim, lim)`.
pub fn uniform<S: Scalar>(rng: &mut Rng, dst: &mut [S], lim: f64) {
    for v in dst {
        *v = S::from_f64(rng.uniform_in(-lim, lim));
    }
}

/// Fills `dst` with draws from `N(0, sd²)`.
pub fn normal<S: Scalar>(rng: &mut Rng, dst: &mut [S], sd: f64) {
    for v in dst {
        *v = S::from_f64(rng.normal() * sd);
    }
}

/// The Glorot (Xavier) uniform limit `√(6 / (fan_in + fan_out))`.
pub fn glorot_limit(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out) as f64).sqrt()
}
