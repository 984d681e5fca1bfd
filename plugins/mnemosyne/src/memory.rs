//! One head's memory over one segment of tokens: the inner learner's writes and the reads
//! after them, on the tape.
//!
//! A segment is a run of `n` tokens inside one chunk. Every inner gradient in it is taken at
//! the chunk's starting weights `φ'` (the snapshot), and the weights after token `t` are, with
//! `B_t = Π(1−α)`, momentum products and `Γ` the combined step coefficients,
//!
//! ```text
//! φ_t = B_t φ_0 + F_t S_0 − Σ_{i≤t} Γ_{t,i} ∇ℓ(φ'; k_i, v_i),   S_t = m_t S_0 − Σ_{i≤t} N_{t,i} ∇ℓ(φ'; k_i, v_i)
//! ```
//!
//! so each read `f(q_t; φ_t)` is a matrix product against the segment's keys (the dual form)
//! and no per-token weights are formed. With `n = 1` the snapshot is the previous token's
//! weights and this is the sequential recursion; with `n = b` it is the mini-batch form.
//! [`exact_segment`] is the delta rule's exact chunked algorithm for the linear memory.

use crate::params::Memory;
use crate::schedule::Segment;
use crate::tape::{Tape, Trans, Unary, Update, Var};
use mnnn_core::Scalar;
use ndarray::Array2;

/// LayerNorm's variance floor.
pub const LN_EPS: f64 = 1e-5;
/// Floor (per feature) of the target's squared norm in the surprise score.
pub const SURPRISE_EPS: f64 = 1e-2;

/// One memory's tensors (weights and biases of each fast layer), as tape values.
#[derive(Clone, Debug)]
pub struct Fast {
    /// Weight per fast layer.
    pub w: Vec<Var>,
    /// Bias per fast layer.
    pub b: Vec<Option<Var>>,
}

/// The slow parameters a head's memory reads.
#[derive(Clone, Copy, Debug)]
pub struct HeadParams {
    /// LayerNorm gain and shift (`1 × d`) of the TTT variants.
    pub ln: Option<(Var, Var)>,
    /// The MLP's static first layer when only the last layer is fast.
    pub static_w1: Option<(Var, Var)>,
    /// Surprise threshold and pre-softplus temperature (`1 × 1`).
    pub gate: Option<(Var, Var)>,
}

/// A segment's per-token inputs.
#[derive(Clone, Copy, Debug)]
pub struct Tokens {
    /// ℓ2-normalised queries `n × d`.
    pub q: Var,
    /// ℓ2-normalised keys `n × d`.
    pub k: Var,
    /// Values `n × d`.
    pub v: Var,
    /// Inner learning rates `n × 1`.
    pub theta: Var,
    /// `log(1 − α)` per token, `n × 1`, when there is a forget gate.
    pub log_keep: Option<Var>,
    /// `log η` per token, `n × 1`, when there is momentum.
    pub log_eta: Option<Var>,
}

/// What a segment produces.
#[derive(Clone, Debug)]
pub struct SegmentOut {
    /// Reads `n × d`.
    pub o: Var,
    /// The memory after the segment.
    pub phi: Fast,
    /// The momentum after the segment.
    pub momentum: Option<Fast>,
    /// The normalised surprise of each token, `n × 1`.
    pub surprise: Var,
}

impl SegmentOut {
    /// The exact delta rule's output: reads, the one weight matrix after the block, surprise.
    fn delta(o: Var, w_end: Var, surprise: Var) -> SegmentOut {
        SegmentOut {
            o,
            phi: Fast {
                w: vec![w_end],
                b: vec![None],
            },
            momentum: None,
            surprise,
        }
    }
}

/// LayerNorm's normalised rows and inverse deviations.
fn ln_stats<S: Scalar>(t: &mut Tape<S>, z: Var) -> (Var, Var) {
    let mu = t.row_mean(z);
    let neg = t.scale(mu, -1.0);
    let zc = t.add_col(z, neg);
    let sq = t.map(zc, Unary::Square);
    let var = t.row_mean(sq);
    let rstd = t.map(var, Unary::Rsqrt(LN_EPS));
    (t.mul_col(zc, rstd), rstd)
}

fn layer_norm<S: Scalar>(t: &mut Tape<S>, z: Var, (gamma, beta): (Var, Var)) -> Var {
    let (xh, _) = ln_stats(t, z);
    let g = t.mul_row(xh, gamma);
    t.add_row(g, beta)
}

/// `ℓ = ½‖LN(z) − τ‖²`: returns `(∂ℓ/∂z, LN(z) − τ)` (the LayerNorm-fused backward).
fn ln_fused_grad<S: Scalar>(
    t: &mut Tape<S>,
    z: Var,
    (gamma, beta): (Var, Var),
    tau: Var,
) -> (Var, Var) {
    let dn = t.dim(z).1 as f64;
    let (xh, rstd) = ln_stats(t, z);
    let g = t.mul_row(xh, gamma);
    let y = t.add_row(g, beta);
    let e = t.sub(y, tau);
    let gh = t.mul_row(e, gamma);
    let sum = t.row_sum(gh);
    let prod = t.mul(gh, xh);
    let sum2 = t.row_sum(prod);
    let a = t.scale(gh, dn);
    let nsum = t.scale(sum, -1.0);
    let a = t.add_col(a, nsum);
    let b = t.mul_col(xh, sum2);
    let c = t.sub(a, b);
    let r = t.scale(rstd, 1.0 / dn);
    (t.mul_col(c, r), e)
}

/// Per fast layer its key inputs `X` and output gradients `G` at `phi`, then the residual
/// `e` and the target `τ`.
fn inner_grads<S: Scalar>(
    t: &mut Tape<S>,
    memory: Memory,
    hp: &HeadParams,
    phi: &Fast,
    k: Var,
    v: Var,
) -> (Vec<(Var, Var)>, Var, Var) {
    match memory {
        Memory::Linear => {
            let z = t.matmul(k, phi.w[0], Trans::NN);
            let e = t.sub(z, v);
            (vec![(k, e)], e, v)
        }
        Memory::TttLinear => {
            let z = t.matmul(k, phi.w[0], Trans::NN);
            let z = t.add_row(z, phi.b[0].expect("bias"));
            let tau = t.sub(v, k);
            let (g, e) = ln_fused_grad(t, z, hp.ln.expect("ln"), tau);
            (vec![(k, g)], e, tau)
        }
        Memory::Mlp => {
            let last = phi.w.len() - 1;
            let (w1, b1) = match hp.static_w1 {
                Some(s) => s,
                None => (phi.w[0], phi.b[0].expect("bias")),
            };
            let z1 = t.matmul(k, w1, Trans::NN);
            let z1 = t.add_row(z1, b1);
            let x2 = t.map(z1, Unary::Gelu);
            let z2 = t.matmul(x2, phi.w[last], Trans::NN);
            let z2 = t.add_row(z2, phi.b[last].expect("bias"));
            let tau = t.sub(v, k);
            let (g2, e) = ln_fused_grad(t, z2, hp.ln.expect("ln"), tau);
            if hp.static_w1.is_some() {
                (vec![(x2, g2)], e, tau)
            } else {
                let back = t.matmul(g2, phi.w[last], Trans::NT);
                let gp = t.map(z1, Unary::GeluPrime);
                let g1 = t.mul(back, gp);
                (vec![(k, g1), (x2, g2)], e, tau)
            }
        }
    }
}

/// `s = ‖e‖ / √(‖τ‖² + ε·d)`: the prediction error relative to what was to be predicted
/// (about 1 for a memory that knows nothing, 0 for one that predicts exactly).
fn surprise<S: Scalar>(t: &mut Tape<S>, e: Var, tau: Var) -> Var {
    let d = t.dim(e).1 as f64;
    let ee = t.row_sum_sq(e);
    let num = t.map(ee, Unary::Sqrt(1e-12));
    let tt = t.row_sum_sq(tau);
    let den = t.map(tt, Unary::Rsqrt(SURPRISE_EPS * d));
    t.mul(num, den)
}

/// The step coefficients of a segment.
struct Coeffs {
    /// `Γ` (`n × n`, lower triangular).
    gamma: Var,
    /// `B_t` (`n × 1`), absent when there is no forgetting (all ones).
    b: Option<Var>,
    /// `F_t`, `N` and `m_t` with momentum.
    mom: Option<(Var, Var, Var)>,
}

fn lower_ones<S: Scalar>(t: &mut Tape<S>, n: usize) -> Var {
    t.leaf(Array2::from_shape_fn((n, n), |(i, j)| {
        if j <= i { S::one() } else { S::zero() }
    }))
}

fn coefficients<S: Scalar>(
    t: &mut Tape<S>,
    theta: Var,
    log_keep: Option<Var>,
    log_eta: Option<Var>,
) -> Coeffs {
    let n = t.dim(theta).0;
    let th_row = t.transpose(theta);
    let (db, b) = match log_keep {
        Some(lk) => {
            let c = t.cumsum(lk);
            (Some(t.decay(c)), Some(t.map(c, Unary::Exp)))
        }
        None => (None, None),
    };
    match log_eta {
        Some(le) => {
            let c = t.cumsum(le);
            let dm = t.decay(c);
            let nm = t.mul_row(dm, th_row);
            let m = t.map(c, Unary::Exp);
            let (gamma, f) = match db {
                Some(db) => (t.matmul(db, nm, Trans::NN), t.matmul(db, m, Trans::NN)),
                None => {
                    let ones = lower_ones(t, n);
                    (t.matmul(ones, nm, Trans::NN), t.cumsum(m))
                }
            };
            Coeffs {
                gamma,
                b,
                mom: Some((f, nm, m)),
            }
        }
        None => {
            let base = match db {
                Some(db) => db,
                None => lower_ones(t, n),
            };
            Coeffs {
                gamma: t.mul_row(base, th_row),
                b,
                mom: None,
            }
        }
    }
}

fn last_row<S: Scalar>(t: &mut Tape<S>, a: Var) -> Var {
    let n = t.dim(a).0;
    t.rows(a, n - 1, 1)
}

/// A fast layer read at every token's updated weights: `Qin W_t + b_t` for all `t`.
#[allow(clippy::too_many_arguments)]
fn dual_read<S: Scalar>(
    t: &mut Tape<S>,
    qin: Var,
    (w, b): (Var, Option<Var>),
    mom: Option<(Var, Option<Var>)>,
    (x, g): (Var, Var),
    c: &Coeffs,
) -> Var {
    let mut z = t.matmul(qin, w, Trans::NN);
    if let Some(bc) = c.b {
        z = t.mul_col(z, bc);
    }
    if let (Some((sw, _)), Some((f, _, _))) = (mom, c.mom) {
        let m = t.matmul(qin, sw, Trans::NN);
        let m = t.mul_col(m, f);
        z = t.add(z, m);
    }
    let qx = t.matmul(qin, x, Trans::NT);
    let qx = t.tril(qx, false);
    let a = t.mul(qx, c.gamma);
    let corr = t.matmul(a, g, Trans::NN);
    z = t.sub(z, corr);
    if let Some(b) = b {
        let bias = match c.b {
            Some(bc) => t.matmul(bc, b, Trans::NN),
            None => {
                let n = t.dim(qin).0;
                let ones = t.leaf(Array2::ones((n, 1)));
                t.matmul(ones, b, Trans::NN)
            }
        };
        let mut bias = bias;
        if let (Some((_, Some(sb))), Some((f, _, _))) = (mom, c.mom) {
            let m = t.matmul(f, sb, Trans::NN);
            bias = t.add(bias, m);
        }
        let gb = t.matmul(c.gamma, g, Trans::NN);
        bias = t.sub(bias, gb);
        z = t.add(z, bias);
    }
    z
}

/// A fast layer's weights (and momentum) after the segment.
#[allow(clippy::type_complexity)]
fn dual_end<S: Scalar>(
    t: &mut Tape<S>,
    (w, b): (Var, Option<Var>),
    mom: Option<(Var, Option<Var>)>,
    (x, g): (Var, Var),
    c: &Coeffs,
) -> ((Var, Option<Var>), Option<(Var, Option<Var>)>) {
    let scale_start = |t: &mut Tape<S>, a: Var| match c.b {
        Some(bc) => {
            let bn = last_row(t, bc);
            t.mul_scalar(a, bn)
        }
        None => a,
    };
    let g_row = last_row(t, c.gamma);
    let g_col = t.transpose(g_row);
    let fnn = match (mom, c.mom) {
        (Some(_), Some((f, _, _))) => Some(last_row(t, f)),
        _ => None,
    };
    let a = c.b.map(|bc| last_row(t, bc));
    let w_end = t.fast_update(Update {
        w,
        a,
        m: mom.zip(fnn).map(|((sw, _), f)| (sw, f)),
        x,
        c: g_col,
        g,
    });
    let mut b_end = b.map(|b| scale_start(t, b));
    if let (Some((_, Some(sb))), Some(fnn), Some(be)) = (mom, fnn, b_end) {
        let m = t.mul_scalar(sb, fnn);
        b_end = Some(t.add(be, m));
    }
    if let Some(be) = b_end {
        let ub = t.matmul(g_row, g, Trans::NN);
        b_end = Some(t.sub(be, ub));
    }
    let mom_end = match (mom, c.mom) {
        (Some((sw, sb)), Some((_, nm, m))) => {
            let mn = last_row(t, m);
            let n_row = last_row(t, nm);
            let n_col = t.transpose(n_row);
            let sw_end = t.fast_update(Update {
                w: sw,
                a: Some(mn),
                m: None,
                x,
                c: n_col,
                g,
            });
            let sb_end = sb.map(|sb| {
                let s0 = t.mul_scalar(sb, mn);
                let ub = t.matmul(n_row, g, Trans::NN);
                t.sub(s0, ub)
            });
            Some((sw_end, sb_end))
        }
        _ => None,
    };
    ((w_end, b_end), mom_end)
}

/// The mini-batch segment: gradients at `snap`, reads and writes from `start`.
pub fn segment<S: Scalar>(
    t: &mut Tape<S>,
    memory: Memory,
    hp: &HeadParams,
    start: &Fast,
    momentum: Option<&Fast>,
    snap: &Fast,
    tok: &Tokens,
) -> SegmentOut {
    let (xg, e, tau) = inner_grads(t, memory, hp, snap, tok.k, tok.v);
    let s = surprise(t, e, tau);
    let (theta, log_keep) = match hp.gate {
        Some((thr, temp)) => {
            let neg = t.scale(thr, -1.0);
            let centred = t.add_row(s, neg);
            let sp = t.map(temp, Unary::Softplus);
            let inv = t.map(sp, Unary::Recip);
            let z = t.mul_row(centred, inv);
            let g = t.map(z, Unary::Sigmoid);
            // A skipped write also skips forgetting.
            let lk = tok.log_keep.map(|lk| t.mul(lk, g));
            (t.mul(tok.theta, g), lk)
        }
        None => (tok.theta, tok.log_keep),
    };
    let c = coefficients(t, theta, log_keep, tok.log_eta);
    let layer = |f: &Fast, i: usize| (f.w[i], f.b[i]);
    let nfast = start.w.len();
    let mut phi = Fast {
        w: Vec::with_capacity(nfast),
        b: Vec::with_capacity(nfast),
    };
    let mut mom_out = momentum.map(|_| Fast {
        w: Vec::with_capacity(nfast),
        b: Vec::with_capacity(nfast),
    });
    // Read through the network, each fast layer in dual form.
    let mut qin = tok.q;
    let mut z = tok.q;
    if let Some((w1, b1)) = hp.static_w1 {
        let z1 = t.matmul(qin, w1, Trans::NN);
        let z1 = t.add_row(z1, b1);
        qin = t.map(z1, Unary::Gelu);
    }
    for (i, &(x, g)) in xg.iter().enumerate() {
        let m = momentum.map(|m| layer(m, i));
        z = dual_read(t, qin, layer(start, i), m, (x, g), &c);
        if i + 1 < nfast {
            qin = t.map(z, Unary::Gelu);
        }
        let ((w, b), me) = dual_end(t, layer(start, i), m, (x, g), &c);
        phi.w.push(w);
        phi.b.push(b);
        if let (Some(mo), Some((sw, sb))) = (mom_out.as_mut(), me) {
            mo.w.push(sw);
            mo.b.push(sb);
        }
    }
    let o = match hp.ln {
        Some(ln) => {
            let n = layer_norm(t, z, ln);
            t.add(tok.q, n)
        }
        None => z,
    };
    SegmentOut {
        o,
        phi,
        momentum: mom_out,
        surprise: s,
    }
}

/// The exact chunked delta rule (linear memory, no momentum, no gate): equals the
/// sequential recursion token by token for any segment length, as one fused tape primitive
/// (see `tape::delta` for the equations and its backward).
pub fn exact_segment<S: Scalar>(t: &mut Tape<S>, start: &Fast, tok: &Tokens) -> SegmentOut {
    let (n, dk) = t.dim(tok.k);
    let packed = t.delta_chunk([start.w[0], tok.q, tok.k, tok.v, tok.theta], tok.log_keep);
    let o = t.rows(packed, 0, n);
    let w_end = t.rows(packed, n, dk);
    let r = t.rows(packed, n + dk, n);
    let s = surprise(t, r, tok.v);
    SegmentOut::delta(o, w_end, s)
}

#[cfg(test)]
/// [`exact_segment`] written out in elementary tape operations: the reference its fused
/// primitive is tested against.
///
/// The exact chunked delta rule (linear memory, no momentum, no gate): equals the
/// sequential recursion token by token for any segment length. With `r_t = v_t − k_t W_{t−1}`
/// the residuals solve a unit lower-triangular system, `(I + strict_tril(K Kᵀ ⊙ D′) diag θ) R
/// = V − diag(B_{t−1}) K W_0`, and reads and the final weights are products with `R`.
pub fn exact_segment_composed<S: Scalar>(
    t: &mut Tape<S>,
    start: &Fast,
    tok: &Tokens,
) -> SegmentOut {
    let (q, k, v) = (tok.q, tok.k, tok.v);
    let n = t.dim(q).0;
    let w0 = start.w[0];
    let th_row = t.transpose(tok.theta);
    let kw = t.matmul(k, w0, Trans::NN);
    let kk = t.matmul(k, k, Trans::NT);
    let qk = t.matmul(q, k, Trans::NT);
    let qk = t.tril(qk, false);
    let qw = t.matmul(q, w0, Trans::NN);
    let (a, rhs, p, qw, w_scaled, coef) = match tok.log_keep {
        Some(lk) => {
            let c = t.cumsum(lk);
            let dm = t.decay(c);
            let bcol = t.map(c, Unary::Exp);
            let prev = t.sub(c, lk);
            let bprev = t.map(prev, Unary::Exp);
            let nlk = t.scale(lk, -1.0);
            let inv_keep = t.map(nlk, Unary::Exp);
            let a = t.mul(kk, dm);
            let a = t.tril(a, true);
            let a = t.mul_row(a, th_row);
            let a = t.mul_col(a, inv_keep);
            let kwb = t.mul_col(kw, bprev);
            let rhs = t.sub(v, kwb);
            let p = t.mul(qk, dm);
            let p = t.mul_row(p, th_row);
            let qw = t.mul_col(qw, bcol);
            let bn = last_row(t, bcol);
            let ws = t.mul_scalar(w0, bn);
            let dt = t.mul_row(dm, th_row);
            let coef = last_row(t, dt);
            (a, rhs, p, qw, ws, coef)
        }
        None => {
            let a = t.tril(kk, true);
            let a = t.mul_row(a, th_row);
            let rhs = t.sub(v, kw);
            let p = t.mul_row(qk, th_row);
            (a, rhs, p, qw, w0, th_row)
        }
    };
    let r = t.solve_unit_lower(a, rhs);
    let pr = t.matmul(p, r, Trans::NN);
    let o = t.add(qw, pr);
    let coef_col = t.transpose(coef);
    let rc = t.mul_col(r, coef_col);
    let upd = t.matmul(k, rc, Trans::TN);
    let w_end = t.add(w_scaled, upd);
    debug_assert_eq!(t.dim(coef_col), (n, 1));
    let s = surprise(t, r, v);
    SegmentOut::delta(o, w_end, s)
}

/// A head's memory state as tape values.
#[derive(Clone, Debug)]
pub struct HeadState {
    /// The fast weights.
    pub phi: Fast,
    /// Their momentum, with momentum on.
    pub momentum: Option<Fast>,
    /// The weights the current chunk started from, for inner chunks longer than a token.
    pub snapshot: Option<Fast>,
}

/// What a head's window produces.
pub struct WindowOut<S> {
    /// Reads, `T × d`.
    pub o: Var,
    /// Every token's normalised surprise, per group.
    pub surprise: Vec<Vec<S>>,
    /// The state after the window.
    pub state: HeadState,
}

/// Runs a head over a window cut into `segs` (`win` holds the whole window's rows): each
/// segment's gradients are taken at the snapshot unless it opens a chunk, and a segment
/// that closes a chunk makes its end weights the next snapshot. `exact`: the delta rule's
/// exact form (sequential semantics) instead of the mini-batch form.
pub fn run_window<S: Scalar>(
    t: &mut Tape<S>,
    memory: Memory,
    hp: &HeadParams,
    mut st: HeadState,
    win: &Tokens,
    segs: &[Segment],
    exact: bool,
) -> WindowOut<S> {
    let mut outs = Vec::with_capacity(segs.len());
    let mut surprise = vec![Vec::with_capacity(t.dim(win.q).0); t.groups(win.q)];
    for seg in segs {
        let (a, n) = (seg.start, seg.len);
        let tok = Tokens {
            q: t.rows(win.q, a, n),
            k: t.rows(win.k, a, n),
            v: t.rows(win.v, a, n),
            theta: t.rows(win.theta, a, n),
            log_keep: win.log_keep.map(|x| t.rows(x, a, n)),
            log_eta: win.log_eta.map(|x| t.rows(x, a, n)),
        };
        let out = if exact {
            exact_segment(t, &st.phi, &tok)
        } else {
            let at = match (&st.snapshot, seg.opens) {
                (Some(s), false) => s,
                _ => &st.phi,
            };
            segment(t, memory, hp, &st.phi, st.momentum.as_ref(), at, &tok)
        };
        outs.push(out.o);
        for (all, seg) in surprise.iter_mut().zip(t.stack(out.surprise).outer_iter()) {
            all.extend(seg.iter().copied());
        }
        st.phi = out.phi;
        st.momentum = out.momentum;
        if seg.closes && st.snapshot.is_some() {
            st.snapshot = Some(st.phi.clone());
        }
    }
    WindowOut {
        o: t.concat_rows(outs),
        surprise,
        state: st,
    }
}
