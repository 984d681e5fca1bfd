//! One head for one token: the memory's write and read, and the sidecar's.

use super::sized;
use super::vector::{affine, gelu_into, ln_hat, product, sum_sq};
use crate::memory::{LN_EPS, SURPRISE_EPS};
use crate::params::Memory;
use crate::tape::{Unary, gelu_from, gelu_prime_from, gelu_tanh};
use mnnn_core::Scalar;

/// What a head reads for one token.
pub struct HeadIn<'a, S> {
    /// The inner network.
    pub memory: Memory,
    /// ℓ2-normalised query, `d`.
    pub q: &'a [S],
    /// ℓ2-normalised key, `d`.
    pub k: &'a [S],
    /// Value, `d`.
    pub v: &'a [S],
    /// Inner learning rate.
    pub theta: S,
    /// `log(1 − α)`, with a forget gate.
    pub log_keep: Option<S>,
    /// `log η`, with momentum.
    pub log_eta: Option<S>,
    /// Surprise threshold and pre-softplus temperature.
    pub gate: Option<(S, S)>,
    /// LayerNorm gain and shift (TTT memories).
    pub ln: Option<(&'a [S], &'a [S])>,
    /// The MLP's static first layer (`update: "last_layer"`).
    pub static_w1: Option<(&'a [S], &'a [S])>,
    /// The MLP's hidden width.
    pub hidden: usize,
    /// Whether the gradient is taken at the held chunk-start weights (inside a chunk).
    pub at_snapshot: bool,
    /// Whether this token ends a chunk (the weights after it become the snapshot).
    pub closes: bool,
}

/// One memory's fast layers in the state: weight and bias of up to two layers (absent ones
/// are empty).
pub struct FastMut<'a, S> {
    /// Weights.
    pub w: [&'a mut [S]; 2],
    /// Biases.
    pub b: [&'a mut [S]; 2],
}

/// One head's sidecar in the state.
pub struct SidecarMut<'a, S> {
    /// `K × d` keys.
    pub keys: &'a mut [S],
    /// `K × d` values.
    pub values: &'a mut [S],
    /// Retention scores.
    pub scores: &'a mut [S],
    /// Occupancy (1 or 0).
    pub used: &'a mut [S],
}

/// A head's buffers.
#[derive(Debug, Default)]
pub struct MemScratch<S> {
    z1: Vec<S>,
    th: Vec<S>,
    x2: Vec<S>,
    g1: Vec<S>,
    qin: Vec<S>,
    z2: Vec<S>,
    e: Vec<S>,
    tau: Vec<S>,
    g: Vec<S>,
    xh: Vec<S>,
    logits: Vec<S>,
}

impl<S: Scalar> MemScratch<S> {
    pub(super) fn ensure(&mut self, d: usize, hidden: usize, slots: usize) {
        for v in [
            &mut self.z1,
            &mut self.th,
            &mut self.x2,
            &mut self.g1,
            &mut self.qin,
        ] {
            sized(v, hidden);
        }
        for v in [
            &mut self.z2,
            &mut self.e,
            &mut self.tau,
            &mut self.g,
            &mut self.xh,
        ] {
            sized(v, d);
        }
        sized(&mut self.logits, slots + 1);
    }
}

/// `out = a − b`.
#[inline(always)]
fn sub_into<S: Scalar>(a: &[S], b: &[S], out: &mut [S]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x - y;
    }
}

/// `ℓ = ½‖LN(z) − τ‖²`: writes `∂ℓ/∂z` to `g` and `LN(z) − τ` to `e`.
#[inline(always)]
fn ln_fused_grad<S: Scalar>(
    z: &[S],
    (gamma, beta): (&[S], &[S]),
    tau: &[S],
    xh: &mut [S],
    g: &mut [S],
    e: &mut [S],
) {
    let dn = S::from_f64(z.len() as f64);
    let rstd = ln_hat(z, xh, LN_EPS);
    let (mut sum, mut sum2) = (S::zero(), S::zero());
    for i in 0..z.len() {
        e[i] = xh[i] * gamma[i] + beta[i] - tau[i];
        let gh = e[i] * gamma[i];
        g[i] = gh;
        sum += gh;
        sum2 += gh * xh[i];
    }
    let r = rstd * S::from_f64(1.0 / z.len() as f64);
    for i in 0..z.len() {
        g[i] = (g[i] * dn - sum - xh[i] * sum2) * r;
    }
}

/// `o = x + LN(z) γ + β`.
#[inline(always)]
fn ln_residual<S: Scalar>(
    x: &[S],
    z: &[S],
    (gamma, beta): (&[S], &[S]),
    xh: &mut [S],
    o: &mut [S],
) {
    ln_hat(z, xh, LN_EPS);
    for i in 0..o.len() {
        o[i] = x[i] + (xh[i] * gamma[i] + beta[i]);
    }
}

/// Writes the token into the memory (and momentum, and the snapshot at a chunk's end), reads
/// the query through the written memory into `o`, and returns the token's surprise.
#[inline(always)]
pub fn memory_step<S: Scalar>(
    hin: &HeadIn<S>,
    phi: FastMut<S>,
    momentum: Option<FastMut<S>>,
    snapshot: Option<FastMut<S>>,
    o: &mut [S],
    m: &mut MemScratch<S>,
) -> S {
    let (q, k, v) = (hin.q, hin.k, hin.v);
    let d = q.len();
    let hidden = hin.hidden;
    // The inner gradient at the chunk-start weights (or the current ones at a chunk's start).
    {
        let at = match &snapshot {
            Some(s) if hin.at_snapshot => s,
            _ => &phi,
        };
        match hin.memory {
            Memory::Linear => {
                product(k, at.w[0], &mut m.e);
                m.e.iter_mut().zip(v).for_each(|(e, &vi)| *e -= vi);
                m.g.copy_from_slice(&m.e);
                m.tau.copy_from_slice(v);
            }
            Memory::TttLinear => {
                affine(k, at.w[0], at.b[0], &mut m.z2);
                sub_into(v, k, &mut m.tau);
                let ln = hin.ln.expect("TTT memories have a LayerNorm");
                ln_fused_grad(&m.z2, ln, &m.tau, &mut m.xh, &mut m.g, &mut m.e);
            }
            Memory::Mlp => {
                let last = usize::from(hin.static_w1.is_none());
                let (w1, b1): (&[S], &[S]) = match hin.static_w1 {
                    Some(s) => s,
                    None => (&*at.w[0], &*at.b[0]),
                };
                affine(k, w1, b1, &mut m.z1[..hidden]);
                gelu_tanh(&m.z1, &mut m.th);
                for i in 0..hidden {
                    m.x2[i] = gelu_from(m.z1[i], m.th[i]);
                }
                affine(&m.x2, at.w[last], at.b[last], &mut m.z2);
                sub_into(v, k, &mut m.tau);
                let ln = hin.ln.expect("TTT memories have a LayerNorm");
                ln_fused_grad(&m.z2, ln, &m.tau, &mut m.xh, &mut m.g, &mut m.e);
                if last == 1 {
                    // g₁ = (g₂ W₂ᵀ) ⊙ gelu′(z₁)
                    let w2 = &*at.w[1];
                    for i in 0..hidden {
                        let row = &w2[i * d..(i + 1) * d];
                        let back = row
                            .iter()
                            .zip(&m.g)
                            .fold(S::zero(), |acc, (&w, &g)| acc + g * w);
                        m.g1[i] = back * gelu_prime_from(m.z1[i], m.th[i]);
                    }
                }
            }
        }
    }
    let num = Unary::Sqrt(1e-12).apply(sum_sq(&m.e));
    let den = Unary::Rsqrt(SURPRISE_EPS * d as f64).apply(sum_sq(&m.tau));
    let surprise = num * den;
    let (mut theta, mut log_keep) = (hin.theta, hin.log_keep);
    if let Some((thr, temp)) = hin.gate {
        let inv = Unary::Recip.apply(Unary::Softplus.apply(temp));
        let g = Unary::Sigmoid.apply((surprise - thr) * inv);
        theta *= g;
        log_keep = log_keep.map(|lk| lk * g);
    }
    let keep = log_keep.map(|lk| Unary::Exp.apply(lk));
    let eta = hin.log_eta.map(|le| Unary::Exp.apply(le));
    // The layers' (input, output gradient) pairs.
    let two = hin.memory == Memory::Mlp && hin.static_w1.is_none();
    let mut momentum = momentum;
    for layer in 0..if two { 2 } else { 1 } {
        let (x, g): (&[S], &[S]) = match (hin.memory, two, layer) {
            (Memory::Mlp, true, 0) => (k, &m.g1),
            (Memory::Mlp, _, _) => (&m.x2, &m.g),
            _ => (k, &m.g),
        };
        let cols = g.len();
        let (w, b) = (&mut *phi.w[layer], &mut *phi.b[layer]);
        match (&mut momentum, eta) {
            (Some(mo), Some(eta)) => {
                let (sw, sb) = (&mut *mo.w[layer], &mut *mo.b[layer]);
                for (i, &xi) in x.iter().enumerate() {
                    let (wr, sr) = (
                        &mut w[i * cols..(i + 1) * cols],
                        &mut sw[i * cols..(i + 1) * cols],
                    );
                    for jx in 0..cols {
                        let u = xi * (g[jx] * theta);
                        let kept = match keep {
                            Some(bk) => wr[jx] * bk,
                            None => wr[jx],
                        };
                        wr[jx] = kept + sr[jx] * eta - u;
                        sr[jx] = sr[jx] * eta - u;
                    }
                }
                for jx in 0..b.len() {
                    let u = theta * g[jx];
                    let kept = match keep {
                        Some(bk) => b[jx] * bk,
                        None => b[jx],
                    };
                    b[jx] = kept + sb[jx] * eta - u;
                    sb[jx] = sb[jx] * eta - u;
                }
            }
            _ => {
                for (i, &xi) in x.iter().enumerate() {
                    let wr = &mut w[i * cols..(i + 1) * cols];
                    match keep {
                        Some(bk) => {
                            for jx in 0..cols {
                                wr[jx] = wr[jx] * bk - xi * (g[jx] * theta);
                            }
                        }
                        None => {
                            for jx in 0..cols {
                                wr[jx] -= xi * (g[jx] * theta);
                            }
                        }
                    }
                }
                for jx in 0..b.len() {
                    let kept = match keep {
                        Some(bk) => b[jx] * bk,
                        None => b[jx],
                    };
                    b[jx] = kept - theta * g[jx];
                }
            }
        }
    }
    // Read after write.
    match hin.memory {
        Memory::Linear => product(q, phi.w[0], o),
        Memory::TttLinear => {
            affine(q, phi.w[0], phi.b[0], &mut m.z2);
            ln_residual(q, &m.z2, hin.ln.expect("LayerNorm"), &mut m.xh, o);
        }
        Memory::Mlp => {
            let last = usize::from(hin.static_w1.is_none());
            let (w1, b1): (&[S], &[S]) = match hin.static_w1 {
                Some(s) => s,
                None => (&*phi.w[0], &*phi.b[0]),
            };
            affine(q, w1, b1, &mut m.z1);
            gelu_into(&m.z1, &mut m.qin);
            affine(&m.qin, phi.w[last], phi.b[last], &mut m.z2);
            ln_residual(q, &m.z2, hin.ln.expect("LayerNorm"), &mut m.xh, o);
        }
    }
    if let (Some(snap), true) = (snapshot, hin.closes) {
        for (dst, src) in snap.w.into_iter().zip(&phi.w) {
            dst.copy_from_slice(src);
        }
        for (dst, src) in snap.b.into_iter().zip(&phi.b) {
            dst.copy_from_slice(src);
        }
    }
    surprise
}

/// Adds the gated sidecar read to `o` (the cache as it was before this token), then offers
/// the token to the cache.
#[inline(always)]
pub fn sidecar_step<S: Scalar>(
    hin: &HeadIn<S>,
    side: SidecarMut<S>,
    surprise: S,
    null: S,
    gate: S,
    o: &mut [S],
    m: &mut MemScratch<S>,
) {
    let (q, d) = (hin.q, hin.q.len());
    let slots = side.used.len();
    let held = |c: usize| side.used[c].as_f64() > 0.5;
    let scale = S::from_f64(1.0 / (d as f64).sqrt());
    let logits = &mut m.logits;
    logits[0] = null;
    let mut top = null;
    for c in 0..slots {
        let key = &side.keys[c * d..(c + 1) * d];
        let l = q.iter().zip(key).fold(S::zero(), |a, (&x, &y)| a + x * y) * scale;
        logits[1 + c] = l;
        if held(c) && l > top {
            top = l;
        }
    }
    let mut total = S::zero();
    for (c, l) in logits.iter_mut().enumerate() {
        if c == 0 || held(c - 1) {
            *l = (*l - top).exp();
            total += *l;
        } else {
            *l = S::zero();
        }
    }
    let read = &mut m.xh;
    read.fill(S::zero());
    for c in 0..slots {
        let p = logits[1 + c] / total;
        let value = &side.values[c * d..(c + 1) * d];
        for (r, &vi) in read.iter_mut().zip(value) {
            *r += p * vi;
        }
    }
    for (oi, &r) in o.iter_mut().zip(read.iter()) {
        *oi += r * gate;
    }
    let free = (0..slots).find(|&c| !held(c));
    let slot = crate::sidecar::admission(free, side.scores, surprise);
    if let Some(at) = slot {
        side.keys[at * d..(at + 1) * d].copy_from_slice(hin.k);
        side.values[at * d..(at + 1) * d].copy_from_slice(hin.v);
        side.scores[at] = surprise;
        side.used[at] = S::one();
    }
}
