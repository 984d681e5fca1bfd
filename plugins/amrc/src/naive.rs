//! AMRC's equations (the crate docs) as a naive f64 token loop, one step and one unit at a
//! time, sharing nothing with [`crate::cell`]: what the conformance suite's `reference`
//! property checks every form against.

use crate::AmrcParams;
use mnnn_core::naive::{values, vec_mat};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// The rows `y_t` for inputs `xs` from `state`, in either mode.
pub(crate) fn naive(
    p: &AmrcParams,
    dims: Dims,
    weights: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (h, o) = (p.hidden, dims.output);
    let (w_h, b_h) = (values(weights, "w_h")?, values(weights, "b_h")?);
    let (w_o, b_o) = (values(weights, "w_o")?, values(weights, "b_o")?);
    let mut m = values(state, "m")?;
    let mut s = values(state, "s")?;
    let reference = p.compat == Compat::Reference;
    // The reference echo reads s two steps back: s_{t−1} is kept as `p`.
    let mut before = if reference {
        values(state, "p")?
    } else {
        vec![]
    };
    let mut ys = Array2::zeros((xs.nrows(), o));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x: Vec<f64> = x.to_vec();
        let a = vec_mat(&x, &w_h, h);
        for j in 0..h {
            let n = (a[j] + b_h[j] + m[j]).tanh();
            let echoed = if reference {
                std::mem::replace(&mut before[j], s[j])
            } else {
                s[j]
            };
            s[j] = n + p.beta * echoed;
            m[j] = (1.0 - p.alpha) * m[j] + p.alpha * n;
        }
        let z = vec_mat(&s, &w_o, o);
        for k in 0..o {
            ys[[t, k]] = (z[k] + b_o[k]).tanh();
        }
    }
    Some(ys)
}
