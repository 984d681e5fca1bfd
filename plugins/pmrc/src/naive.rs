//! PMRC's equations (the crate docs, both modes) as a naive f64 token loop, one step and one
//! unit at a time, sharing nothing with [`crate::cell`]: what the conformance suite's
//! `reference` property checks every form against.

use crate::PmrcParams;
use mnnn_core::naive::{sigmoid, values, vec_mat};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// The rows the cell writes for inputs `xs` from `state`.
pub(crate) fn naive(
    p: &PmrcParams,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (h, o) = (p.hidden, dims.output);
    let reference = p.compat == Compat::Reference;
    let (w_h, b_h, w_o, b_o) = (
        values(w, "w_h")?,
        values(w, "b_h")?,
        values(w, "w_o")?,
        values(w, "b_o")?,
    );
    let u_r = if p.use_recurrent {
        values(w, "u_r")?
    } else {
        vec![0.0; h * h]
    };
    let gates = if p.use_learnable_gates {
        Some((
            values(w, "w_g")?,
            values(w, "u_g")?,
            values(w, "b_g")?,
            values(w, "w_c")?,
            values(w, "b_c")?,
        ))
    } else {
        None
    };
    let mut m = values(state, "m")?;
    let mut s = values(state, "s")?;
    let mut prev_s = if reference {
        values(state, "p")?
    } else {
        vec![]
    };
    let (mut z, mut zp) = match (reference, p.use_output_memory) {
        (true, true) => (values(state, "z")?, values(state, "zp")?),
        (false, true) => (values(state, "y")?, vec![]),
        _ => (vec![], vec![]),
    };
    let mut ys = Array2::zeros((xs.nrows(), o));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        let xw = vec_mat(&x, &w_h, h);
        // The hidden pre-activation: in design mode every unit reads the whole s_{t−1}; in
        // reference mode unit j reads y_{t−1} (`s`) of the units before it and y_{t−2}
        // (`prev_s`) of itself and those after.
        let n: Vec<f64> = (0..h)
            .map(|j| {
                let rec: f64 = (0..h)
                    .map(|i| {
                        let from = if reference && i >= j { prev_s[i] } else { s[i] };
                        u_r[i * h + j] * from
                    })
                    .sum();
                (xw[j] + b_h[j] + rec + m[j]).tanh()
            })
            .collect();
        // The memory.
        match &gates {
            Some((w_g, u_g, b_g, w_c, b_c)) => {
                let (xg, xc) = (vec_mat(&x, w_g, h), vec_mat(&x, w_c, h));
                let old = m.clone();
                for j in 0..h {
                    // Reference: unit j reads the new memory of the units before it.
                    let um: f64 = (0..h)
                        .map(|i| {
                            let from = if reference && i < j { m[i] } else { old[i] };
                            u_g[i * h + j] * from
                        })
                        .sum();
                    let g = sigmoid(xg[j] + um + b_g[j]);
                    let c = (xc[j] + b_c[j]).tanh();
                    m[j] = g * c + (1.0 - g) * old[j];
                }
            }
            None => {
                for j in 0..h {
                    m[j] = (1.0 - p.alpha) * m[j] + p.alpha * n[j];
                }
            }
        }
        // The hidden echo: lag 1 in design mode, lag 2 in reference mode.
        for j in 0..h {
            let echoed = if reference {
                std::mem::replace(&mut prev_s[j], s[j])
            } else {
                s[j]
            };
            s[j] = n[j] + p.beta * echoed;
        }
        let q = vec_mat(&s, &w_o, o);
        for k in 0..o {
            let q = (q[k] + b_o[k]).tanh();
            ys[[t, k]] = match (reference, p.use_output_memory) {
                (_, false) => q,
                (false, true) => {
                    z[k] = q + p.output_beta * z[k];
                    z[k]
                }
                (true, true) => {
                    let y = q + p.output_beta * zp[k];
                    zp[k] = std::mem::replace(&mut z[k], y);
                    y
                }
            };
        }
    }
    Some(ys)
}
