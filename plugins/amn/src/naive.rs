//! AMN's equations (the crate docs, both modes) as a naive f64 token loop, one step and one
//! unit at a time, sharing nothing with [`crate::cell`]: what the conformance suite's
//! `reference` property checks every form against.

use crate::AmnParams;
use mnnn_core::naive::{sigmoid, softplus, values, vec_mat};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

fn clip(v: f64, lim: f64) -> f64 {
    v.clamp(-lim, lim)
}

/// The rows `y_t` for inputs `xs` from `state`.
pub(crate) fn naive(
    p: &AmnParams,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (hn, mn, o) = (p.hidden, p.manifold, dims.output);
    let design = p.compat == Compat::Design;
    // Design mode trains unconstrained values and maps them; reference mode uses the values.
    let (a, bf, lam): (Vec<f64>, Vec<f64>, Vec<f64>) = if design {
        (
            values(w, "a_raw")?.into_iter().map(softplus).collect(),
            values(w, "bf_raw")?.into_iter().map(softplus).collect(),
            values(w, "lambda_raw")?.into_iter().map(sigmoid).collect(),
        )
    } else {
        (values(w, "a")?, values(w, "bf")?, values(w, "lambda")?)
    };
    let (b, c, d) = (values(w, "b")?, values(w, "c")?, values(w, "d")?);
    let (k, v, q) = (values(w, "k")?, values(w, "v")?, values(w, "q")?);
    let e = if design { values(w, "e")? } else { vec![] };
    let mut h = values(state, "h")?;
    let mut s = values(state, "s")?;
    let mut m = values(state, "m")?; // manifold × hidden
    let mut ys = Array2::zeros((xs.nrows(), o));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        let f: Vec<f64> = vec_mat(&x, &b, hn).into_iter().map(f64::tanh).collect();
        let xe = if design {
            vec_mat(&x, &e, hn)
        } else {
            vec![0.0; hn]
        };
        for j in 0..hn {
            let tau = a[j] + bf[j] * f[j].abs();
            let step = p.dt * (-tau * h[j] + bf[j] * f[j]);
            // Design: the Euler increment feeds the LRU; reference: the whole stepped state.
            let liquid = if design {
                clip(step, p.lc_clip)
            } else {
                clip(h[j] + step, p.lc_clip)
            };
            s[j] = clip(lam[j] * s[j] + liquid + xe[j], p.lru_clip);
        }
        let qv: Vec<f64> = vec_mat(&s, &q, mn).into_iter().map(f64::tanh).collect();
        let r = vec_mat(&qv, &m, hn);
        for j in 0..hn {
            h[j] = p.mix * s[j] + (1.0 - p.mix) * r[j];
        }
        let (hc, xd) = (vec_mat(&h, &c, o), vec_mat(&x, &d, o));
        for kk in 0..o {
            ys[[t, kk]] = clip(hc[kk] + xd[kk], p.output_clip);
        }
        let kv: Vec<f64> = vec_mat(&h, &k, mn)
            .into_iter()
            .zip(vec_mat(&h, &v, mn))
            .map(|(kj, vj)| sigmoid(kj) * vj)
            .collect();
        for j in 0..mn {
            for i in 0..hn {
                let cell = &mut m[j * hn + i];
                *cell = clip(
                    p.memory_decay * *cell + p.write_scale * kv[j] * h[i],
                    p.manifold_clip,
                );
            }
        }
    }
    Some(ys)
}
