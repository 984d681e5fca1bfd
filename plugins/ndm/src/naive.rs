//! NDM's equations (the crate docs, every variant, both modes) as a naive f64 token loop, one
//! weight at a time, sharing nothing with [`crate::step`], [`crate::fast`] or
//! [`crate::consts`]: what the conformance suite's `reference` property checks every form
//! against. The reference mode's constants are written out again from the reference
//! programs (`ndm.c`, `ndm_.c`, `ndm_momentum.c`) rather than read from the crate.

// The equations index units and weights the way the docs write them.
#![allow(clippy::needless_range_loop)]

use crate::{NdmParams, Variant};
use mnnn_core::naive::{sigmoid, values};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// The constants of one step: `(dt, λ, τ, ρ, γ)`.
fn constants(p: &NdmParams) -> (f64, f64, f64, f64, f64) {
    match (p.compat, p.variant) {
        (Compat::Design, _) => (
            p.dt,
            p.weight_decay,
            p.trace_decay,
            p.plasticity_decay,
            p.memory_decay,
        ),
        (Compat::Reference, Variant::Clamped) => (0.05, 1e-3, 0.95, 0.999, 0.995),
        (Compat::Reference, _) => (0.1, 1e-4, 0.95, 0.999, 0.995),
    }
}

/// One sequence's state, by the state layout's names.
struct State {
    h: Vec<f64>,
    pre: Vec<f64>,
    post: Vec<f64>,
    m: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    pa: Vec<f64>,
    pb: Vec<f64>,
    va: Vec<f64>,
    vb: Vec<f64>,
}

/// The rows `y_t` for inputs `xs` from `state`.
pub(crate) fn naive(
    p: &NdmParams,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (ni, h, m, no) = (dims.input, p.hidden, p.manifold, dims.output);
    let design = p.compat == Compat::Design;
    let clamp = p.variant == Variant::Clamped;
    let mom = p.variant == Variant::Momentum;
    // Clips act in the clamped variant only.
    let cl = |v: f64, lim: f64| if clamp { v.clamp(-lim, lim) } else { v };
    let (dt, lam, tau, rho, gamma) = constants(p);
    let beta = p.momentum;
    let alpha = if design { dt * (1.0 - beta) } else { dt * 0.01 };
    let (win0, wh0, bh) = (values(w, "w_in")?, values(w, "w_h")?, values(w, "b_h")?);
    let (eta_in, eta_h, q) = (values(w, "eta_in")?, values(w, "eta_h")?, values(w, "q")?);
    let (wout, bout) = (values(w, "w_out")?, values(w, "b_out")?);
    // The key and value maps exist where the variant writes the manifold.
    let (kmap, vmap) = (values(w, "k"), values(w, "v"));
    let mut s = State {
        h: values(state, "h")?,
        pre: values(state, "pre")?,
        post: values(state, "post")?,
        m: values(state, "manifold")?,
        a: values(state, "fast_in")?,
        b: values(state, "fast_h")?,
        pa: values(state, "plasticity_in")?,
        pb: values(state, "plasticity_h")?,
        va: values(state, "velocity_in").unwrap_or_default(),
        vb: values(state, "velocity_h").unwrap_or_default(),
    };
    let mut ys = Array2::zeros((xs.nrows(), no));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        let h0 = s.h.clone();
        // Drives through the fast weights w0 + a.
        let mut u = bh.clone();
        let mut r = vec![0.0; h];
        for j in 0..h {
            for i in 0..ni {
                u[j] += x[i] * (win0[i * h + j] + s.a[i * h + j]);
            }
            for i in 0..h {
                r[j] += h0[i] * (wh0[i * h + j] + s.b[i * h + j]);
            }
        }
        // ndm.c writes before the read, from the previous hidden state, unbounded.
        if !design && p.variant == Variant::Original {
            let (k, v) = (kmap.as_ref()?, vmap.as_ref()?);
            for r_ in 0..m {
                let km = sigmoid((0..h).map(|i| h0[i] * k[i * m + r_]).sum());
                for i in 0..h {
                    s.m[r_ * h + i] = gamma * s.m[r_ * h + i] + km * h0[i] * v[i * m + r_];
                }
            }
        }
        let qv: Vec<f64> = (0..m)
            .map(|r_| sigmoid(cl((0..h).map(|i| h0[i] * q[i * m + r_]).sum(), 20.0)))
            .collect();
        let mut d = vec![0.0; h];
        for j in 0..h {
            let read: f64 = (0..m).map(|r_| qv[r_] * s.m[r_ * h + j]).sum();
            let z = cl(cl(u[j], 20.0) + cl(r[j], 20.0) + cl(read, 20.0), 20.0);
            d[j] = cl(z.tanh() - h0[j], 5.0);
            s.h[j] = cl(h0[j] + dt * d[j], 5.0);
            s.pre[j] = tau * s.pre[j] + (1.0 - tau) * cl(s.h[j].abs(), 5.0);
            s.post[j] = tau * s.post[j] + (1.0 - tau) * cl(d[j].abs(), 5.0);
            if clamp {
                s.pre[j] = s.pre[j].clamp(0.0, 2.0);
                s.post[j] = s.post[j].clamp(0.0, 2.0);
            }
        }
        // The Hebbian update of one fast matrix (rows: x or pre; columns η ⊙ post).
        let hebb = |w0: &[f64],
                    a: &mut [f64],
                    pl: &mut [f64],
                    vel: &mut [f64],
                    rows: &[f64],
                    eta: &[f64],
                    post: &[f64]| {
            for i in 0..rows.len() {
                for j in 0..h {
                    let k = i * h + j;
                    let e = cl(rows[i] * eta[j] * post[j], 5.0);
                    // Design pulls the deviation to 0 (the weight to w0); reference the weight.
                    let target = if design { a[k] } else { w0[k] + a[k] };
                    let g = cl(pl[k] * (e - lam * target), 5.0);
                    if mom {
                        vel[k] = beta * vel[k] + alpha * g;
                        a[k] += vel[k];
                    } else {
                        let wn = cl(w0[k] + a[k] + dt * g, 10.0);
                        a[k] = wn - w0[k];
                    }
                    pl[k] *= rho;
                }
            }
        };
        hebb(&win0, &mut s.a, &mut s.pa, &mut s.va, &x, &eta_in, &s.post);
        hebb(
            &wh0, &mut s.b, &mut s.pb, &mut s.vb, &s.pre, &eta_h, &s.post,
        );
        // Design: the bounded write after the read, from the new hidden state.
        if design {
            let (k, v) = (kmap.as_ref()?, vmap.as_ref()?);
            let val: Vec<f64> = (0..h)
                .map(|j| (0..h).map(|i| s.h[i] * v[i * h + j]).sum::<f64>().tanh())
                .collect();
            for r_ in 0..m {
                let km = sigmoid(cl((0..h).map(|i| s.h[i] * k[i * m + r_]).sum(), 20.0));
                for j in 0..h {
                    s.m[r_ * h + j] = gamma * s.m[r_ * h + j] + (1.0 - gamma) * km * val[j];
                }
            }
        }
        for o in 0..no {
            let v: f64 = bout[o] + (0..h).map(|j| s.h[j] * wout[j * no + o]).sum::<f64>();
            ys[[t, o]] = cl(v, 20.0);
        }
    }
    Some(ys)
}
