//! The constants one step reads, resolved from the hyper-parameters, the variant and the
//! fidelity mode once, when the cell is built.

use crate::{NdmParams, Variant};
use mnnn_core::Scalar;
use mnnn_core::reference::Compat;

/// The clamped variant's limits (`ndm_.c`): pre-activations and σ arguments, the ODE
/// derivative, the hidden state, the trace inputs, the traces, the Hebbian terms, the weight
/// velocities, the weights and the output.
pub(crate) const LIM_ARG: f64 = 20.0;
pub(crate) const LIM_D: f64 = 5.0;
pub(crate) const LIM_H: f64 = 5.0;
pub(crate) const LIM_TRACE_IN: f64 = 5.0;
pub(crate) const LIM_TRACE: f64 = 2.0;
pub(crate) const LIM_HEBB: f64 = 5.0;
pub(crate) const LIM_VEL: f64 = 5.0;
pub(crate) const LIM_W: f64 = 10.0;
pub(crate) const LIM_OUT: f64 = 20.0;

/// Where the manifold is written in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// Design: after the read, from the new hidden state, as a bounded convex update.
    After,
    /// `ndm.c`: before the read, from the previous hidden state, unbounded.
    Before,
    /// `ndm_.c`, `ndm_momentum.c`: never (the write was deleted).
    Never,
}

/// What the reset puts in the plasticity state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Plasticity {
    /// Every weight the same value.
    Uniform(f64),
    /// `ndm.c`'s per-weight draw from `U[0.5, 1]`, taken from a fixed hash of the weight's
    /// position so that every reset restores the same masks.
    Pattern,
}

impl Plasticity {
    /// The initial plasticity of weight number `k` of a matrix.
    pub(crate) fn at(self, k: usize) -> f64 {
        match self {
            Plasticity::Uniform(v) => v,
            Plasticity::Pattern => 0.5 + 0.5 * unit_hash(k as u64),
        }
    }
}

/// A value in `[0, 1)` from `k` (splitmix64's finaliser, top 53 bits).
fn unit_hash(k: u64) -> f64 {
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything a step needs besides the tensors.
#[derive(Clone, Debug)]
pub(crate) struct Consts<S> {
    pub variant: Variant,
    pub compat: Compat,
    pub dt: S,
    /// λ: pull of a fast weight towards its target (the learned initial weight in design,
    /// zero in reference mode).
    pub lam: S,
    /// Trace decay τ and `1 − τ`.
    pub tau: S,
    pub tau_in: S,
    /// Plasticity decay ρ per token.
    pub rho: S,
    /// Manifold decay γ, and the write's gain (`1 − γ` in design, 1 in reference).
    pub gamma: S,
    pub write_gain: S,
    /// Momentum β and the velocity gain α.
    pub beta: S,
    pub alpha: S,
    /// Initial Hebbian rate (the learned rates' starting value).
    pub eta0: f64,
    pub plasticity: Plasticity,
    pub write: Write,
}

impl<S: Scalar> Consts<S> {
    /// Resolves the constants: design reads the params, reference the variant's fixed values.
    pub(crate) fn new(p: &NdmParams) -> Self {
        let f = S::from_f64;
        let design = p.compat == Compat::Design;
        // (dt, λ, η, plasticity after reset)
        let (dt, lam, eta0, plasticity) = if design {
            (
                p.dt,
                p.weight_decay,
                p.hebbian,
                Plasticity::Uniform(p.plasticity),
            )
        } else {
            match p.variant {
                Variant::Original => (0.1, 1e-4, 0.1, Plasticity::Pattern),
                Variant::Clamped => (0.05, 1e-3, 0.05, Plasticity::Uniform(0.01)),
                Variant::Momentum => (0.1, 1e-4, 0.1, Plasticity::Uniform(1.0)),
            }
        };
        let (tau, rho, gamma) = if design {
            (p.trace_decay, p.plasticity_decay, p.memory_decay)
        } else {
            (0.95, 0.999, 0.995)
        };
        let write = match (design, p.variant) {
            (true, _) => Write::After,
            (false, Variant::Original) => Write::Before,
            (false, _) => Write::Never,
        };
        // Design: V ← βV + (1 − β)·dt·G, so a constant drive moves the weights as fast as
        // the original's Euler step. Reference: V ← βV + dt·base_plasticity·G (0.01).
        let alpha = if design {
            dt * (1.0 - p.momentum)
        } else {
            dt * 0.01
        };
        Consts {
            variant: p.variant,
            compat: p.compat,
            dt: f(dt),
            lam: f(lam),
            tau: f(tau),
            tau_in: f(1.0 - tau),
            rho: f(rho),
            gamma: f(gamma),
            write_gain: f(if design { 1.0 - gamma } else { 1.0 }),
            beta: f(p.momentum),
            alpha: f(alpha),
            eta0,
            plasticity,
            write,
        }
    }

    pub(crate) fn design(&self) -> bool {
        self.compat == Compat::Design
    }

    pub(crate) fn clamped(&self) -> bool {
        self.variant == Variant::Clamped
    }

    pub(crate) fn momentum(&self) -> bool {
        self.variant == Variant::Momentum
    }

    /// `v` clipped to `±lim` in the clamped variant, unchanged otherwise.
    #[inline(always)]
    pub(crate) fn clip(&self, v: S, lim: f64) -> S {
        if self.clamped() {
            clip(v, S::from_f64(lim))
        } else {
            v
        }
    }

    /// The derivative of [`Consts::clip`] at `v`: 0 outside the limits in the clamped variant.
    #[inline(always)]
    pub(crate) fn pass(&self, v: S, lim: f64) -> S {
        if self.clamped() {
            inside(v, S::from_f64(lim))
        } else {
            S::one()
        }
    }
}

/// `v` clipped to `[−lim, lim]`.
#[inline(always)]
pub(crate) fn clip<S: Scalar>(v: S, lim: S) -> S {
    v.max(-lim).min(lim)
}

/// 1 if `v` is inside `[−lim, lim]`, else 0 (the derivative of [`clip`]).
#[inline(always)]
pub(crate) fn inside<S: Scalar>(v: S, lim: S) -> S {
    if v.abs() <= lim { S::one() } else { S::zero() }
}

/// `1/(1 + e^−z)`.
#[inline(always)]
pub(crate) fn sigmoid<S: Scalar>(z: S) -> S {
    S::one() / (S::one() + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_plasticity_pattern_is_fixed_and_spans_its_range() {
        let v: Vec<f64> = (0..4000).map(|k| Plasticity::Pattern.at(k)).collect();
        assert!(v.iter().all(|&p| (0.5..1.0).contains(&p)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.75).abs() < 0.01, "mean {mean}");
        assert_eq!(Plasticity::Pattern.at(17), v[17]);
        assert_ne!(v[0], v[1]);
    }
}
