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
        let v = if matches!(kind, Optimizer::Adam | Optimizer::AdamW { .. }) {
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

    /// Sets the learning rate of the next updates (a schedule changes it between updates).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = S::from_f64(lr);
    }

    /// One update of `params` from `grads`; entries whose `frozen` flag is set are left exactly
    /// as they are.
    ///
    /// # Panics
    /// If `params`, `grads` (and `frozen`) do not have the length the state was made for.
    pub fn step(&mut self, params: &mut [S], grads: &[S], frozen: Option<&[bool]>) {
        let n = self.m.len();
        assert!(
            params.len() == n && grads.len() == n && frozen.is_none_or(|f| f.len() == n),
            "optimizer state made for {n} parameters"
        );
        self.t += 1;
        let lr = self.lr;
        match self.kind {
            Optimizer::Adam => {
                let (b1, b2, eps) = (S::from_f64(0.9), S::from_f64(0.999), S::from_f64(1e-8));
                let c1 = S::one() - b1.powi(self.t);
                let c2 = S::one() - b2.powi(self.t);
                let step = lr * c2.sqrt() / c1;
                let k = AdamConsts { b1, b2, eps, step };
                for_each_trainable_run(n, frozen, |r| {
                    adam_run(
                        &mut params[r.clone()],
                        &grads[r.clone()],
                        &mut self.m[r.clone()],
                        &mut self.v[r],
                        k,
                    )
                });
            }
            Optimizer::AdamW { weight_decay } => {
                let (b1, b2, eps) = (S::from_f64(0.9), S::from_f64(0.999), S::from_f64(1e-8));
                let c1 = S::one() - b1.powi(self.t);
                let c2 = S::one() - b2.powi(self.t);
                let step = lr * c2.sqrt() / c1;
                let k = AdamConsts { b1, b2, eps, step };
                // Decoupled: the shrink scales with the learning rate (and its schedule) but
                // not with Adam's per-entry step sizes.
                let keep = S::one() - lr * S::from_f64(weight_decay);
                for_each_trainable_run(n, frozen, |r| {
                    for p in &mut params[r.clone()] {
                        *p *= keep;
                    }
                    adam_run(
                        &mut params[r.clone()],
                        &grads[r.clone()],
                        &mut self.m[r.clone()],
                        &mut self.v[r],
                        k,
                    )
                });
            }
            Optimizer::Sgd { momentum } => {
                let mu = S::from_f64(momentum);
                for_each_trainable_run(n, frozen, |r| {
                    sgd_run(
                        &mut params[r.clone()],
                        &grads[r.clone()],
                        &mut self.m[r],
                        mu,
                        lr,
                    )
                });
            }
        }
    }
}

/// The constants of one Adam update.
#[derive(Clone, Copy)]
struct AdamConsts<S> {
    b1: S,
    b2: S,
    eps: S,
    step: S,
}

/// Calls `f` on every maximal run of entries not frozen. Freeze masks select whole tensors
/// or large parts of them, so the runs are long and each goes through a loop over plain
/// slices, which the compiler vectorises; testing the flag inside that loop would not be.
fn for_each_trainable_run(
    n: usize,
    frozen: Option<&[bool]>,
    mut f: impl FnMut(std::ops::Range<usize>),
) {
    let Some(mask) = frozen else {
        f(0..n);
        return;
    };
    let mut i = 0;
    while i < n {
        if mask[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && !mask[i] {
            i += 1;
        }
        f(start..i);
    }
}

/// Adam on one run of entries. Every entry's arithmetic is the textbook update's, operation
/// for operation (`(1 − β)` is a constant either way), so results do not depend on how the
/// loop is vectorised.
fn adam_run<S: Scalar>(p: &mut [S], g: &[S], m: &mut [S], v: &mut [S], k: AdamConsts<S>) {
    let AdamConsts { b1, b2, eps, step } = k;
    let (one_b1, one_b2) = (S::one() - b1, S::one() - b2);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = b1 * *m + one_b1 * g;
        *v = b2 * *v + one_b2 * g * g;
        *p -= step * *m / (v.sqrt() + eps);
    }
}

/// SGD with momentum on one run of entries.
fn sgd_run<S: Scalar>(p: &mut [S], g: &[S], m: &mut [S], mu: S, lr: S) {
    for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
        *m = mu * *m + g;
        *p -= lr * *m;
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
        for kind in [
            Optimizer::Adam,
            Optimizer::AdamW { weight_decay: 0.01 },
            Optimizer::Sgd { momentum: 0.5 },
        ] {
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

    /// The update entry by entry, with the flag tested inside the loop: what the run-wise
    /// loops must reproduce bit for bit.
    fn naive_step(
        kind: Optimizer,
        t: i32,
        lr: f32,
        p: &mut [f32],
        g: &[f32],
        (m, v): (&mut [f32], &mut [f32]),
        frozen: &[bool],
    ) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let step = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        for i in 0..p.len() {
            if frozen[i] {
                continue;
            }
            match kind {
                Optimizer::Adam | Optimizer::AdamW { .. } => {
                    if let Optimizer::AdamW { weight_decay } = kind {
                        p[i] *= 1.0 - lr * weight_decay as f32;
                    }
                    m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                    v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                    p[i] -= step * m[i] / (v[i].sqrt() + eps);
                }
                Optimizer::Sgd { momentum } => {
                    m[i] = momentum as f32 * m[i] + g[i];
                    p[i] -= lr * m[i];
                }
            }
        }
    }

    #[test]
    fn run_wise_updates_equal_the_entry_by_entry_loop_bit_for_bit() {
        let mut r = crate::Rng::new(4);
        let n = 103;
        let frozen: Vec<bool> = (0..n).map(|i| (20..37).contains(&i) || i == 90).collect();
        for kind in [
            Optimizer::Adam,
            Optimizer::AdamW { weight_decay: 0.1 },
            Optimizer::Sgd { momentum: 0.9 },
        ] {
            for mask in [None, Some(frozen.as_slice())] {
                let mut p: Vec<f32> = (0..n).map(|_| r.normal() as f32).collect();
                let mut q = p.clone();
                let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
                let mut o = OptimState::<f32>::new(kind, 0.01, n);
                for t in 1..=5 {
                    let g: Vec<f32> = (0..n).map(|_| r.normal() as f32).collect();
                    o.step(&mut p, &g, mask);
                    let all = vec![false; n];
                    let fz = mask.unwrap_or(&all);
                    naive_step(kind, t, 0.01, &mut q, &g, (&mut m, &mut v), fz);
                    assert_eq!(p, q, "{kind:?}, mask {}, step {t}", mask.is_some());
                }
            }
        }
    }

    #[test]
    fn adamw_shrinks_a_parameter_without_gradient_and_adam_does_not() {
        let decay = |kind| {
            let mut p = vec![2.0f64];
            let mut o = OptimState::new(kind, 0.1, 1);
            for _ in 0..10 {
                o.step(&mut p, &[0.0], None);
            }
            p[0]
        };
        assert_eq!(decay(Optimizer::Adam), 2.0);
        let w = decay(Optimizer::AdamW { weight_decay: 0.5 });
        assert!((w - 2.0 * 0.95f64.powi(10)).abs() < 1e-12, "{w}");
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
