//! Optimizers over one flat parameter buffer, honouring freeze masks.

use super::config::Optimizer;
use crate::Scalar;

/// Optimizer state for one parameter buffer.
#[derive(Clone, Debug)]
pub struct OptimState<S> {
    kind: Optimizer,
    lr: S,
    m: Vec<S>,
    v: Vec<S>,
    t: i32,
}

impl<S: Scalar> OptimState<S> {
    /// Fresh state for `n` parameters.
    pub fn new(kind: Optimizer, lr: f64, n: usize) -> Self {
        let v = if matches!(kind, Optimizer::Adam) {
            vec![S::zero(); n]
        } else {
            Vec::new()
        };
        OptimState {
            kind,
            lr: S::from_f64(lr),
            m: vec![S::zero(); n],
            v,
            t: 0,
        }
    }

    /// One update of `params` from `grads`; entries whose `frozen` flag is set are left exactly
    /// as they are.
    pub fn step(&mut self, params: &mut [S], grads: &[S], frozen: Option<&[bool]>) {
        self.t += 1;
        let lr = self.lr;
        match self.kind {
            Optimizer::Adam => {
                let (b1, b2, eps) = (S::from_f64(0.9), S::from_f64(0.999), S::from_f64(1e-8));
                let c1 = S::one() - b1.powi(self.t);
                let c2 = S::one() - b2.powi(self.t);
                let step = lr * c2.sqrt() / c1;
                for i in 0..params.len() {
                    if frozen.is_some_and(|f| f[i]) {
                        continue;
                    }
                    let g = grads[i];
                    self.m[i] = b1 * self.m[i] + (S::one() - b1) * g;
                    self.v[i] = b2 * self.v[i] + (S::one() - b2) * g * g;
                    params[i] -= step * self.m[i] / (self.v[i].sqrt() + eps);
                }
            }
            Optimizer::Sgd { momentum } => {
                let mu = S::from_f64(momentum);
                for i in 0..params.len() {
                    if frozen.is_some_and(|f| f[i]) {
                        continue;
                    }
                    self.m[i] = mu * self.m[i] + grads[i];
                    params[i] -= lr * self.m[i];
                }
            }
        }
    }
}

/// Scales `grads` so that their global ℓ2 norm is at most `max_norm` (0 = no clipping) and
/// returns the norm before clipping.
pub fn clip_global_norm<S: Scalar>(grads: &mut [S], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .map(|g| g.as_f64() * g.as_f64())
        .sum::<f64>()
        .sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = S::from_f64(max_norm / norm);
        grads.iter_mut().for_each(|g| *g *= s);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_and_sgd_minimise_a_quadratic_and_respect_frozen_entries() {
        for kind in [Optimizer::Adam, Optimizer::Sgd { momentum: 0.5 }] {
            let mut p = vec![3.0f64, -2.0, 5.0];
            let frozen = vec![false, false, true];
            let mut o = OptimState::new(kind, 0.05, 3);
            for _ in 0..2000 {
                let g: Vec<f64> = p.iter().map(|x| 2.0 * x).collect();
                o.step(&mut p, &g, Some(&frozen));
            }
            assert!(p[0].abs() < 1e-3 && p[1].abs() < 1e-3, "{kind:?}: {p:?}");
            assert_eq!(p[2], 5.0, "frozen entry untouched");
        }
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let mut g = vec![3.0f64, 4.0];
        assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-12 && (g[1] - 0.8).abs() < 1e-12);
        let mut g = vec![0.3f64, 0.4];
        clip_global_norm(&mut g, 1.0);
        assert_eq!(g, vec![0.3, 0.4]);
    }
}
