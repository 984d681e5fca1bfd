//! DTPN's equations (the crate docs, both modes) as a naive f64 token loop, one step and one
//! unit at a time, sharing nothing with [`crate::cell`]: what the conformance suite's
//! `reference` property checks every form against.

use crate::DtpnParams;
use mnnn_core::naive::{sigmoid, values, vec_mat};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// The rows `out_t` for inputs `xs` from `state`.
pub(crate) fn naive(
    p: &DtpnParams,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (hn, mn, o) = (p.hidden, p.memory, dims.output);
    let design = p.compat == Compat::Design;
    let (w_in, u, w_k) = (values(w, "w_in")?, values(w, "u")?, values(w, "w_k")?);
    let (w_out, b_out) = (values(w, "w_out")?, values(w, "b_out")?);
    let (b_h, w_v, w_q, v) = if design {
        (
            values(w, "b_h")?,
            values(w, "w_v")?,
            values(w, "w_q")?,
            vec![],
        )
    } else {
        (vec![0.0; hn], vec![], vec![], values(w, "v")?)
    };
    let mut h = values(state, "h")?;
    let mut e = values(state, "e")?;
    let mut n = values(state, "n")?;
    let mut x_mem = values(state, "memory")?; // M × H
    let mut ys = Array2::zeros((xs.nrows(), o));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        let (xw, hu) = (vec_mat(&x, &w_in, hn), vec_mat(&h, &u, hn));
        let y: Vec<f64> = (0..hn)
            .map(|j| (xw[j] + hu[j] + b_h[j]).tanh() + p.beta * e[j])
            .collect();
        for j in 0..hn {
            n[j] = (1.0 - p.alpha) * n[j] + p.alpha * y[j];
        }
        e.clone_from(&y);
        let k: Vec<f64> = vec_mat(&y, &w_k, mn).into_iter().map(sigmoid).collect();
        let r: Vec<f64> = if design {
            let val: Vec<f64> = vec_mat(&y, &w_v, hn).into_iter().map(f64::tanh).collect();
            for m in 0..mn {
                for j in 0..hn {
                    x_mem[m * hn + j] = p.memory_decay * x_mem[m * hn + j] + k[m] * val[j];
                }
            }
            let logits = vec_mat(&y, &w_q, mn);
            let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let ex: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
            let total: f64 = ex.iter().sum();
            let q: Vec<f64> = ex.iter().map(|v| v / total).collect();
            vec_mat(&q, &x_mem, hn)
        } else {
            for m in 0..mn {
                for j in 0..hn {
                    x_mem[m * hn + j] = p.memory_decay * x_mem[m * hn + j] + k[m] * v[m * hn + j];
                }
            }
            (0..hn)
                .map(|j| (0..mn).map(|m| x_mem[m * hn + j]).sum::<f64>() / mn as f64)
                .collect()
        };
        for j in 0..hn {
            h[j] = (y[j] + n[j] + r[j]).tanh();
        }
        let z = vec_mat(&h, &w_out, o);
        for kk in 0..o {
            ys[[t, kk]] = z[kk] + b_out[kk];
        }
    }
    Some(ys)
}
