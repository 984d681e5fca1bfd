//! The exact delta rule over one block as a single tape primitive, with its hand-derived
//! vector–Jacobian product (the gated form is Gated DeltaNet's recurrence).
//!
//! For `n` tokens with keys `K`, queries `Q`, values `V`, rates `θ` and, with a forget gate,
//! `c = cumsum(log keep)`, `D[t,s] = e^(c_t − c_s)` (`s ≤ t`), `b_t = e^(c_t)`,
//! `p_t = e^(c_t − log keep_t)`, `ι_t = 1/keep_t` (all ones without the gate):
//!
//! ```text
//! A[t,s] = (K Kᵀ)[t,s] D[t,s] θ_s ι_t   (s < t)      R = (I + A)⁻¹ (V − diag(p) K W₀)
//! P[t,s] = (Q Kᵀ)[t,s] D[t,s] θ_s       (s ≤ t)      O = diag(b) Q W₀ + P R
//! W_end  = b_n W₀ + Kᵀ diag(D[n,·] θ) R
//! ```
//!
//! The primitive's value packs `[O; W_end; R]` by rows; the residuals `R` are an output so
//! that the surprise score can be taken from them. The backward recomputes every
//! intermediate from the inputs and `R`: nothing per token is stored beyond the packed value.

use super::{back_substitute_transposed, forward_substitute, product};
use mnnn_core::Scalar;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};

/// The inputs' values.
pub(crate) struct In<'a, S> {
    pub w0: ArrayView2<'a, S>,
    pub q: ArrayView2<'a, S>,
    pub k: ArrayView2<'a, S>,
    pub v: ArrayView2<'a, S>,
    /// `n × 1`.
    pub theta: ArrayView2<'a, S>,
    /// `n × 1` log keep factors, with a forget gate.
    pub log_keep: Option<ArrayView2<'a, S>>,
}

/// What the forward and the backward share.
struct Coeffs<S> {
    /// `D`, lower triangular with its diagonal.
    d: Array2<S>,
    b: Array1<S>,
    p: Array1<S>,
    inv_keep: Array1<S>,
    theta: Array1<S>,
    /// `(I + A)`'s strict lower part, `A`.
    a: Array2<S>,
    /// `P`.
    pm: Array2<S>,
    kk: Array2<S>,
    qk: Array2<S>,
}

fn coeffs<S: Scalar>(x: &In<S>) -> Coeffs<S> {
    let n = x.q.nrows();
    let theta: Array1<S> = x.theta.column(0).to_owned();
    let (d, b, p, inv_keep) = match x.log_keep {
        Some(lk) => {
            let lk = lk.column(0);
            let mut c = Array1::zeros(n);
            let mut acc = S::zero();
            for t in 0..n {
                acc += lk[t];
                c[t] = acc;
            }
            let d = Array2::from_shape_fn((n, n), |(t, s)| {
                if s <= t {
                    (c[t] - c[s]).exp()
                } else {
                    S::zero()
                }
            });
            let b = c.mapv(|v| v.exp());
            let p = Array1::from_shape_fn(n, |t| (c[t] - lk[t]).exp());
            let ik = lk.mapv(|v| (-v).exp());
            (d, b, p, ik)
        }
        None => (
            Array2::from_shape_fn((n, n), |(t, s)| if s <= t { S::one() } else { S::zero() }),
            Array1::ones(n),
            Array1::ones(n),
            Array1::ones(n),
        ),
    };
    let kk = product(x.k, x.k.t());
    let qk = product(x.q, x.k.t());
    let a = Array2::from_shape_fn((n, n), |(t, s)| {
        if s < t {
            kk[(t, s)] * d[(t, s)] * theta[s] * inv_keep[t]
        } else {
            S::zero()
        }
    });
    let pm = Array2::from_shape_fn((n, n), |(t, s)| {
        if s <= t {
            qk[(t, s)] * d[(t, s)] * theta[s]
        } else {
            S::zero()
        }
    });
    Coeffs {
        d,
        b,
        p,
        inv_keep,
        theta,
        a,
        pm,
        kk,
        qk,
    }
}

/// `[O; W_end; R]`.
pub(crate) fn forward<S: Scalar>(x: &In<S>) -> Array2<S> {
    let (n, dk) = x.k.dim();
    let dv = x.v.ncols();
    let c = coeffs(x);
    let g = product(x.k, x.w0);
    let mut rhs = x.v.to_owned();
    for t in 0..n {
        let pt = c.p[t];
        rhs.row_mut(t)
            .zip_mut_with(&g.row(t), |r, &gv| *r -= pt * gv);
    }
    let r = forward_substitute(c.a.view(), rhs.view());
    let mut out = Array2::zeros((2 * n + dk, dv));
    {
        let mut o = out.slice_mut(s![..n, ..]);
        o.assign(&product(x.q, x.w0));
        for t in 0..n {
            let bt = c.b[t];
            o.row_mut(t).mapv_inplace(|v| v * bt);
        }
        o += &product(c.pm.view(), r.view());
    }
    {
        let last = c.b[n - 1];
        let cf: Array1<S> = (0..n).map(|s| c.d[(n - 1, s)] * c.theta[s]).collect();
        let mut rc = r.clone();
        for t in 0..n {
            let f = cf[t];
            rc.row_mut(t).mapv_inplace(|v| v * f);
        }
        let mut we = out.slice_mut(s![n..n + dk, ..]);
        we.assign(&x.w0.mapv(|v| v * last));
        we += &product(x.k.t(), rc.view());
    }
    out.slice_mut(s![n + dk.., ..]).assign(&r);
    out
}

/// Gradients of the inputs.
pub(crate) struct Grads<S> {
    pub w0: Array2<S>,
    pub q: Array2<S>,
    pub k: Array2<S>,
    pub v: Array2<S>,
    pub theta: Array2<S>,
    pub log_keep: Option<Array2<S>>,
}

/// The VJP: `value` is [`forward`]'s output and `dout` its cotangent.
pub(crate) fn backward<S: Scalar>(
    x: &In<S>,
    value: ArrayView2<S>,
    dout: ArrayView2<S>,
) -> Grads<S> {
    let (n, dk) = x.k.dim();
    let c = coeffs(x);
    let r = value.slice(s![n + dk.., ..]);
    let d_o = dout.slice(s![..n, ..]);
    let d_we = dout.slice(s![n..n + dk, ..]);
    let d_rx = dout.slice(s![n + dk.., ..]);
    let cf: Array1<S> = (0..n).map(|s| c.d[(n - 1, s)] * c.theta[s]).collect();
    // W_end = b_n W₀ + Kᵀ diag(cf) R.
    let kdw = product(x.k, d_we);
    let mut dr = product(c.pm.t(), d_o);
    dr += &d_rx;
    let mut dcf = Array1::<S>::zeros(n);
    for t in 0..n {
        let f = cf[t];
        dr.row_mut(t).zip_mut_with(&kdw.row(t), |a, &b| *a += f * b);
        dcf[t] = kdw.row(t).dot(&r.row(t));
    }
    let mut dk = product(r, d_we.t());
    for t in 0..n {
        let f = cf[t];
        dk.row_mut(t).mapv_inplace(|v| v * f);
    }
    let last = c.b[n - 1];
    let mut dw0 = d_we.mapv(|v| v * last);
    let dbn = (&x.w0 * &d_we).sum();
    // O = diag(b) Q W₀ + P R.
    let y = product(x.q, x.w0);
    let mut dy = d_o.to_owned();
    let mut db = Array1::<S>::zeros(n);
    for t in 0..n {
        db[t] = d_o.row(t).dot(&y.row(t));
        let bt = c.b[t];
        dy.row_mut(t).mapv_inplace(|v| v * bt);
    }
    dw0 += &product(x.q.t(), dy.view());
    let mut dq = product(dy.view(), x.w0.t());
    let dp = product(d_o, r.t());
    // R = (I + A)⁻¹ (V − diag(p) K W₀).
    let drhs = back_substitute_transposed(c.a.view(), dr.view());
    let da = product(drhs.view(), r.t());
    let g = product(x.k, x.w0);
    let mut dpv = Array1::<S>::zeros(n);
    let mut dg = drhs.clone();
    for t in 0..n {
        dpv[t] = -drhs.row(t).dot(&g.row(t));
        let pt = c.p[t];
        dg.row_mut(t).mapv_inplace(|v| -(v * pt));
    }
    dw0 += &product(x.k.t(), dg.view());
    dk += &product(dg.view(), x.w0.t());
    // P and A through their factors.
    let mut dd = Array2::<S>::zeros((n, n));
    let mut dtheta = Array1::<S>::zeros(n);
    let mut dik = Array1::<S>::zeros(n);
    let mut e_p = Array2::<S>::zeros((n, n));
    let mut e_a = Array2::<S>::zeros((n, n));
    for t in 0..n {
        for s_ in 0..=t {
            let (dpe, dme, th) = (dp[(t, s_)], c.d[(t, s_)], c.theta[s_]);
            e_p[(t, s_)] = dpe * dme * th;
            dd[(t, s_)] += dpe * c.qk[(t, s_)] * th;
            dtheta[s_] += dpe * c.qk[(t, s_)] * dme;
            if s_ < t {
                let dae = -da[(t, s_)];
                let ik = c.inv_keep[t];
                e_a[(t, s_)] = dae * dme * th * ik;
                dd[(t, s_)] += dae * c.kk[(t, s_)] * th * ik;
                dtheta[s_] += dae * c.kk[(t, s_)] * dme * ik;
                dik[t] += dae * c.kk[(t, s_)] * dme * th;
            }
        }
    }
    dq += &product(e_p.view(), x.k);
    dk += &product(e_p.t(), x.q);
    dk += &product(e_a.view(), x.k);
    dk += &product(e_a.t(), x.k);
    for s_ in 0..n {
        dtheta[s_] += dcf[s_] * c.d[(n - 1, s_)];
        dd[(n - 1, s_)] += dcf[s_] * c.theta[s_];
    }
    let log_keep = x.log_keep.map(|_| {
        let mut dc = Array1::<S>::zeros(n);
        for t in 0..n {
            for s_ in 0..=t {
                let w = dd[(t, s_)] * c.d[(t, s_)];
                dc[t] += w;
                dc[s_] -= w;
            }
            dc[t] += db[t] * c.b[t] + dpv[t] * c.p[t];
        }
        dc[n - 1] += dbn * c.b[n - 1];
        let mut dlk = Array1::<S>::zeros(n);
        let mut acc = S::zero();
        for t in (0..n).rev() {
            acc += dc[t];
            dlk[t] = acc - dpv[t] * c.p[t] - dik[t] * c.inv_keep[t];
        }
        dlk.insert_axis(Axis(1))
    });
    Grads {
        w0: dw0,
        q: dq,
        k: dk,
        v: drhs,
        theta: dtheta.insert_axis(Axis(1)),
        log_keep,
    }
}
