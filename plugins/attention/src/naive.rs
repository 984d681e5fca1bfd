//! The attention head's equations (see [`crate::cell`]) as a naive f64 token loop over a
//! cache kept as a list of `(key, value, log-weight)` entries, sharing nothing with the cell:
//! what the conformance suite's `reference` property checks every form against.

use mnnn_core::naive::{values, vec_mat};
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// The rows `y_t` for inputs `xs` from `state`, the head `dim` wide, keeping the last
/// `window` steps (every step when `None`).
pub(crate) fn naive(
    dim: usize,
    window: Option<usize>,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let o = dims.output;
    let (w_q, w_k, w_v) = (values(w, "w_q")?, values(w, "w_k")?, values(w, "w_v")?);
    let (w_o, b_o) = (values(w, "w_o")?, values(w, "b_o")?);
    let (keys, vals) = (values(state, "k")?, values(state, "v")?);
    let n = keys.len() / dim.max(1);
    let logw = match window {
        Some(_) => values(state, "m")?,
        None => vec![0.0; n],
    };
    let mut cache: Vec<(Vec<f64>, Vec<f64>, f64)> = (0..n)
        .map(|u| {
            (
                keys[u * dim..(u + 1) * dim].to_vec(),
                vals[u * dim..(u + 1) * dim].to_vec(),
                logw[u],
            )
        })
        .collect();
    let scale = 1.0 / (dim as f64).sqrt();
    let mut ys = Array2::zeros((xs.nrows(), o));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        let q = vec_mat(&x, &w_q, dim);
        cache.push((vec_mat(&x, &w_k, dim), vec_mat(&x, &w_v, dim), 0.0));
        if window.is_some_and(|w| cache.len() > w) {
            cache.remove(0);
        }
        let scores: Vec<f64> = cache
            .iter()
            .map(|(k, _, m)| q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() * scale + m)
            .collect();
        let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut read = vec![0.0; dim];
        for ((_, v, _), a) in cache.iter().zip(&weights) {
            for (r, vv) in read.iter_mut().zip(v) {
                *r += a / total * vv;
            }
        }
        let y = vec_mat(&read, &w_o, o);
        for k in 0..o {
            ys[[t, k]] = y[k] + b_o[k];
        }
    }
    Some(ys)
}
