//! Backpropagation through a window for one sequence, the Hebbian fast weights included.
//!
//! The forward window keeps every step's vectors (the record rows and the manifold before
//! the step) but the fast weights only at the start of each segment of `seg` steps: storing
//! them at every step would take `T·(I·H + H²)` values per sequence. Going backward, each
//! segment's fast weights are rebuilt from its snapshot by re-running the same update code on
//! the recorded inputs and traces (bit for bit what the forward computed), then the segment's
//! steps are differentiated in reverse.

// Index loops walk several same-length rows at once; iterator zips of five rows read worse.
#![allow(clippy::needless_range_loop)]

use crate::consts::{
    Consts, LIM_ARG, LIM_D, LIM_H, LIM_OUT, LIM_TRACE, LIM_TRACE_IN, Write, sigmoid,
};
use crate::fast::{self, Fast, FastGrad};
use crate::step::{F, ParamView, Rec, SeqState, Shape, trace};
use mnnn_core::Scalar;

/// Gradients of the parameters (same slots as [`ParamView`]).
pub(crate) struct ParamGrads<'a, S> {
    pub w_in: &'a mut [S],
    pub w_h: &'a mut [S],
    pub b_h: &'a mut [S],
    pub eta_in: &'a mut [S],
    pub eta_h: &'a mut [S],
    pub q: &'a mut [S],
    pub k: &'a mut [S],
    pub v: &'a mut [S],
    pub w_out: &'a mut [S],
    pub b_out: &'a mut [S],
}

/// What one sequence's forward window recorded.
pub(crate) struct SeqTape<'a, S> {
    /// Inputs, `T × I`.
    pub x: &'a [S],
    /// Record rows, `T × rec.width`.
    pub rec: &'a [S],
    /// The manifold before each step, `T × M·H`.
    pub mem: &'a [S],
    /// The fast tensors at the start of each segment, `⌈T/seg⌉ × fast_len`, laid out as
    /// `[a, b, pa, pb, va, vb]`.
    pub snaps: &'a [S],
    pub seg: usize,
}

/// Reusable buffers of the backward pass.
#[derive(Default, Debug)]
pub struct BackWork<S> {
    fast: Vec<S>,
    v: [Vec<S>; 14],
}

/// The sizes of the fast tensors `[a, b, pa, pb, va, vb]` for these widths.
pub(crate) fn fast_sizes<S: Scalar>(c: &Consts<S>, s: Shape) -> [usize; 6] {
    let (ih, hh) = (s.i * s.h, s.h * s.h);
    let vel = usize::from(c.momentum());
    [ih, hh, ih, hh, vel * ih, vel * hh]
}

/// Splits `buf` into the six fast tensors.
pub(crate) fn split6<'a, S>(buf: &'a mut [S], sizes: &[usize; 6]) -> [&'a mut [S]; 6] {
    let mut rest = buf;
    sizes.map(|n| {
        let (a, b) = std::mem::take(&mut rest).split_at_mut(n);
        rest = b;
        a
    })
}

fn sign<S: Scalar>(v: S) -> S {
    if v > S::zero() {
        S::one()
    } else if v < S::zero() {
        -S::one()
    } else {
        S::zero()
    }
}

/// `g[i] += Σ_j w[i·n + j] · d[j]` (a row-major `W` times a column vector).
fn mat_vec<S: Scalar>(g: &mut [S], w: &[S], d: &[S]) {
    let n = d.len();
    for (gi, row) in g.iter_mut().zip(w.chunks_exact(n)) {
        let mut acc = S::zero();
        for (a, b) in row.iter().zip(d) {
            acc += *a * *b;
        }
        *gi += acc;
    }
}

/// `w[i·n + j] += a[i] · d[j]`.
fn outer_acc<S: Scalar>(w: &mut [S], a: &[S], d: &[S]) {
    let n = d.len();
    for (row, &ai) in w.chunks_exact_mut(n).zip(a) {
        if ai != S::zero() {
            for (x, &dj) in row.iter_mut().zip(d) {
                *x += ai * dj;
            }
        }
    }
}

/// Backpropagates one sequence's window. `g` holds ∂L/∂state after the window on entry and
/// ∂L/∂state before it on return; `dy` is `T × O`; parameter gradients are added to `pg`;
/// `dx` (`T × I`) receives the input gradients.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_seq<S: Scalar>(
    c: &Consts<S>,
    s: Shape,
    p: &ParamView<'_, S>,
    tape: &SeqTape<'_, S>,
    dy: &[S],
    g: SeqState<'_, S>,
    pg: &mut ParamGrads<'_, S>,
    dx: &mut [S],
    work: &mut BackWork<S>,
) {
    let (i, h, m, o) = (s.i, s.h, s.m, s.o);
    let rec = Rec::new(c, s);
    let t_len = tape.rec.len() / rec.width;
    let sizes = fast_sizes(c, s);
    let flen: usize = sizes.iter().sum();
    let seg = tape.seg;
    if work.fast.len() != seg * flen {
        work.fast.clear();
        work.fast.resize(seg * flen, S::zero());
    }
    let [
        hn,
        pre,
        post,
        d,
        gh,
        gd,
        gpre,
        gpost,
        gq,
        gk,
        gv,
        cols,
        gcols,
        kv,
    ] = &mut work.v;
    for (b, n) in [
        (&mut *hn, h),
        (&mut *pre, h),
        (&mut *post, h),
        (&mut *d, h),
        (&mut *gh, h),
        (&mut *gd, h),
        (&mut *gpre, h),
        (&mut *gpost, h),
        (&mut *gq, m),
        (&mut *gk, m.max(o)),
        (&mut *gv, h.max(m)),
        (&mut *cols, h),
        (&mut *gcols, h),
        (&mut *kv, h.max(m)),
    ] {
        b.clear();
        b.resize(n, S::zero());
    }
    let SeqState {
        h: g_h,
        pre: g_pre,
        post: g_post,
        m: g_m,
        a: g_a,
        b: g_b,
        pa: g_pa,
        pb: g_pb,
        va: g_va,
        vb: g_vb,
    } = g;
    let nseg = t_len.div_ceil(seg);
    for sg in (0..nseg).rev() {
        let (t0, t1) = (sg * seg, ((sg + 1) * seg).min(t_len));
        // Rebuild the fast tensors before each step of the segment.
        work.fast[..flen].copy_from_slice(&tape.snaps[sg * flen..(sg + 1) * flen]);
        for t in t0..t1.saturating_sub(1) {
            let k = t - t0;
            let (done, next) = work.fast.split_at_mut((k + 1) * flen);
            let next = &mut next[..flen];
            next.copy_from_slice(&done[k * flen..]);
            let row = &tape.rec[t * rec.width..(t + 1) * rec.width];
            let [a, b, pa, pb, va, vb] = split6(next, &sizes);
            for j in 0..h {
                pre[j] = trace(c, row[rec.f(F::PreR)][j]);
                post[j] = trace(c, row[rec.f(F::PostR)][j]);
                cols[j] = p.eta_in[j] * post[j];
            }
            let x = &tape.x[t * i..(t + 1) * i];
            fast::update(
                c,
                x,
                cols,
                Fast {
                    w0: p.w_in,
                    a,
                    p: pa,
                    v: va,
                },
            );
            for j in 0..h {
                cols[j] = p.eta_h[j] * post[j];
            }
            fast::update(
                c,
                pre,
                cols,
                Fast {
                    w0: p.w_h,
                    a: b,
                    p: pb,
                    v: vb,
                },
            );
        }
        for t in (t0..t1).rev() {
            let k = t - t0;
            let fw = &work.fast[k * flen..(k + 1) * flen];
            let (a0, rest) = fw.split_at(sizes[0]);
            let (b0, rest) = rest.split_at(sizes[1]);
            let (pa0, rest) = rest.split_at(sizes[2]);
            let pb0 = &rest[..sizes[3]];
            let row = &tape.rec[t * rec.width..(t + 1) * rec.width];
            let x = &tape.x[t * i..(t + 1) * i];
            let h0 = &row[rec.f(F::H0)];
            let dxt = &mut dx[t * i..(t + 1) * i];
            dxt.fill(S::zero());
            for j in 0..h {
                hn[j] = c.clip(row[rec.f(F::Hr)][j], LIM_H);
                pre[j] = trace(c, row[rec.f(F::PreR)][j]);
                post[j] = trace(c, row[rec.f(F::PostR)][j]);
                d[j] = c.clip(row[rec.f(F::D)][j], LIM_D);
            }

            // Output: y = clip(b_out + h W_out).
            let dyt = &dy[t * o..(t + 1) * o];
            let dyo = &mut gk[..o];
            dyo.copy_from_slice(dyt);
            if c.clamped() {
                let yr = &mut kv[..o];
                yr.copy_from_slice(p.b_out);
                S::gemv_acc(yr, hn, p.w_out);
                for (dv, &yv) in dyo.iter_mut().zip(yr.iter()) {
                    *dv *= c.pass(yv, LIM_OUT);
                }
            }
            gh.copy_from_slice(g_h);
            mat_vec(gh, p.w_out, dyo);
            outer_acc(pg.w_out, hn, dyo);
            for (gb, &dv) in pg.b_out.iter_mut().zip(dyo.iter()) {
                *gb += dv;
            }

            // Design write: M = γ M0 + (1 − γ) k vᵀ.
            if c.write == Write::After {
                let kr = &row[rec.k()];
                let vr = &row[rec.v()];
                let kk = &mut kv[..m];
                for (kv, &l) in kk.iter_mut().zip(kr) {
                    *kv = sigmoid(c.clip(l, LIM_ARG));
                }
                let vv = &mut cols[..h];
                vv.copy_from_slice(vr);
                S::tanh_inplace(vv);
                let gvv = &mut gv[..h];
                gvv.fill(S::zero());
                for (mi, grow) in g_m.chunks_exact_mut(h).enumerate() {
                    let mut acc = S::zero();
                    for j in 0..h {
                        acc += grow[j] * vv[j];
                        gvv[j] += grow[j] * kk[mi];
                        grow[j] *= c.gamma;
                    }
                    let km = kk[mi];
                    gk[mi] = acc * c.write_gain * km * (S::one() - km) * c.pass(kr[mi], LIM_ARG);
                }
                for j in 0..h {
                    gvv[j] *= c.write_gain * (S::one() - vv[j] * vv[j]);
                }
                mat_vec(gh, p.k, &gk[..m]);
                mat_vec(gh, p.v, gvv);
                outer_acc(pg.k, hn, &gk[..m]);
                outer_acc(pg.v, hn, gvv);
            }

            // The fast weights (adjoints of the traces and the input collect in gpre, gpost, dx).
            gpre.copy_from_slice(g_pre);
            gpost.copy_from_slice(g_post);
            let gcols_h = &mut gcols[..h];
            gcols_h.fill(S::zero());
            for j in 0..h {
                cols[j] = p.eta_h[j] * post[j];
            }
            fast::backward(
                c,
                pre,
                cols,
                (p.w_h, b0, pb0),
                FastGrad {
                    a: g_b,
                    p: g_pb,
                    v: g_vb,
                    w0: pg.w_h,
                },
                gpre,
                gcols_h,
            );
            for j in 0..h {
                pg.eta_h[j] += gcols_h[j] * post[j];
                gpost[j] += gcols_h[j] * p.eta_h[j];
                cols[j] = p.eta_in[j] * post[j];
            }
            gcols_h.fill(S::zero());
            fast::backward(
                c,
                x,
                cols,
                (p.w_in, a0, pa0),
                FastGrad {
                    a: g_a,
                    p: g_pa,
                    v: g_va,
                    w0: pg.w_in,
                },
                dxt,
                gcols_h,
            );
            for j in 0..h {
                pg.eta_in[j] += gcols_h[j] * post[j];
                gpost[j] += gcols_h[j] * p.eta_in[j];
            }

            // Traces, then the Euler step: h = clip(h0 + dt·clip(c − h0)).
            let lim_t = S::from_f64(LIM_TRACE);
            let tpass = |raw: S| {
                if !c.clamped() || (raw >= S::zero() && raw <= lim_t) {
                    S::one()
                } else {
                    S::zero()
                }
            };
            let crow = &row[rec.f(F::C)];
            let (ur, rr, mrr) = (&row[rec.f(F::U)], &row[rec.f(F::R)], &row[rec.f(F::Mr)]);
            let (gu, gr, gmr) = (&mut gd[..], &mut gv[..h], &mut kv[..h]);
            for j in 0..h {
                let gpr = gpre[j] * tpass(row[rec.f(F::PreR)][j]);
                gpre[j] = c.tau * gpr;
                let hv = hn[j];
                let mut ghj = gh[j] + c.tau_in * gpr * c.pass(hv.abs(), LIM_TRACE_IN) * sign(hv);
                let gpo = gpost[j] * tpass(row[rec.f(F::PostR)][j]);
                gpost[j] = c.tau * gpo;
                let dv = d[j];
                let mut gdj = c.tau_in * gpo * c.pass(dv.abs(), LIM_TRACE_IN) * sign(dv);
                ghj *= c.pass(row[rec.f(F::Hr)][j], LIM_H);
                gdj += c.dt * ghj;
                gdj *= c.pass(row[rec.f(F::D)][j], LIM_D);
                // ∂L/∂h0 so far: through h = h0 + dt·d and d = c − h0.
                gh[j] = ghj - gdj;
                let cv = crow[j];
                let z = c.clip(ur[j], LIM_ARG) + c.clip(rr[j], LIM_ARG) + c.clip(mrr[j], LIM_ARG);
                let gz = gdj * (S::one() - cv * cv) * c.pass(z, LIM_ARG);
                gu[j] = gz * c.pass(ur[j], LIM_ARG);
                gr[j] = gz * c.pass(rr[j], LIM_ARG);
                gmr[j] = gz * c.pass(mrr[j], LIM_ARG);
            }
            // u = b_h + x (W_in + a0).
            for (gb, &v) in pg.b_h.iter_mut().zip(gu.iter()) {
                *gb += v;
            }
            outer_acc(pg.w_in, x, gu);
            outer_acc(g_a, x, gu);
            mat_vec(dxt, p.w_in, gu);
            mat_vec(dxt, a0, gu);
            // r = h0 (W_h + b0).
            outer_acc(pg.w_h, h0, gr);
            outer_acc(g_b, h0, gr);
            mat_vec(gh, p.w_h, gr);
            mat_vec(gh, b0, gr);

            // Read: mr = σ(h0 Q) M_read, where M_read is M0, or M1 after ndm.c's early write.
            let m0 = &tape.mem[t * m * h..(t + 1) * m * h];
            let qr = &row[rec.q()];
            let before = c.write == Write::Before;
            for mi in 0..m {
                let qv = sigmoid(c.clip(qr[mi], LIM_ARG));
                let grow = &mut g_m[mi * h..(mi + 1) * h];
                let mrow = &m0[mi * h..(mi + 1) * h];
                let km = if before {
                    sigmoid(row[rec.k()][mi]) * c.write_gain
                } else {
                    S::zero()
                };
                let mut acc = S::zero();
                for j in 0..h {
                    let mv = if before {
                        c.gamma * mrow[j] + km * h0[j] * p.v[j * m + mi]
                    } else {
                        mrow[j]
                    };
                    acc += gmr[j] * mv;
                    grow[j] += qv * gmr[j];
                }
                gq[mi] = acc * qv * (S::one() - qv) * c.pass(qr[mi], LIM_ARG);
            }
            mat_vec(gh, p.q, gq);
            outer_acc(pg.q, h0, gq);

            if before {
                // ndm.c's write before the read: M1[m,j] = γ M0[m,j] + k_m h0_j V[j,m].
                for mi in 0..m {
                    let kmr = sigmoid(row[rec.k()][mi]);
                    let km = kmr * c.write_gain;
                    let grow = &mut g_m[mi * h..(mi + 1) * h];
                    let mut acc = S::zero();
                    for j in 0..h {
                        let vjm = p.v[j * m + mi];
                        acc += grow[j] * h0[j] * vjm;
                        gh[j] += grow[j] * km * vjm;
                        pg.v[j * m + mi] += grow[j] * km * h0[j];
                        grow[j] *= c.gamma;
                    }
                    gk[mi] = acc * c.write_gain * kmr * (S::one() - kmr);
                }
                mat_vec(gh, p.k, &gk[..m]);
                outer_acc(pg.k, h0, &gk[..m]);
            }
            g_h.copy_from_slice(gh);
            g_pre.copy_from_slice(gpre);
            g_post.copy_from_slice(gpost);
        }
    }
}
