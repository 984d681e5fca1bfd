//! The independent reference: a plain f64 token loop, one sequence and one layer at a time,
//! written from the equations with explicit sums. It shares no code with the fast forms
//! (different sigmoid formula, no window products, no batching); the tests check every fast
//! form against it.

use crate::cell::Kind;
use mnnn_core::Tensors;
use ndarray::{Array3, ArrayView3};

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `Σ_i x_i W[i, col]` for a row-major `W` with `cols` columns.
fn dot_col(x: &[f64], w: &[f64], cols: usize, col: usize) -> f64 {
    x.iter()
        .enumerate()
        .map(|(i, xi)| xi * w[i * cols + col])
        .sum()
}

/// Runs `xs` (`T × B × input`) from the batched `state`, which it advances, through a stack of
/// `layers` cells of `hidden` units with the parameters named as in
/// [`RnnCell`](crate::RnnCell); returns `T × B × output`.
pub fn run(
    kind: Kind,
    hidden: usize,
    layers: usize,
    params: &Tensors<f64>,
    state: &mut Tensors<f64>,
    xs: ArrayView3<f64>,
) -> Array3<f64> {
    let get = |name: &str| {
        let i = params.layout().index_of(name).expect("parameter");
        params.slice(i).to_vec()
    };
    let (steps, batch, _) = xs.dim();
    let w_out = get("w_out");
    let b_out = get("b_out");
    let out = b_out.len();
    let g = kind.gates() * hidden;
    let mut ys = Array3::zeros((steps, batch, out));
    let layout = state.layout().clone();
    let si = |name: String| layout.index_of(&name).expect("state");
    for b in 0..batch {
        let mut h: Vec<Vec<f64>> = (0..layers)
            .map(|k| state.slice(si(format!("h{k}")))[b * hidden..(b + 1) * hidden].to_vec())
            .collect();
        let mut c: Vec<Vec<f64>> = match kind {
            Kind::Lstm => (0..layers)
                .map(|k| state.slice(si(format!("c{k}")))[b * hidden..(b + 1) * hidden].to_vec())
                .collect(),
            Kind::Gru => Vec::new(),
        };
        for t in 0..steps {
            let mut input: Vec<f64> = xs.slice(ndarray::s![t, b, ..]).to_vec();
            for k in 0..layers {
                let (w_ih, w_hh) = (get(&format!("w_ih{k}")), get(&format!("w_hh{k}")));
                let (b_ih, b_hh) = (get(&format!("b_ih{k}")), get(&format!("b_hh{k}")));
                let xi: Vec<f64> = (0..g)
                    .map(|j| dot_col(&input, &w_ih, g, j) + b_ih[j])
                    .collect();
                let hh: Vec<f64> = (0..g)
                    .map(|j| dot_col(&h[k], &w_hh, g, j) + b_hh[j])
                    .collect();
                let n = hidden;
                let mut new_h = vec![0.0; n];
                match kind {
                    Kind::Lstm => {
                        for j in 0..n {
                            let i = sigmoid(xi[j] + hh[j]);
                            let f = sigmoid(xi[n + j] + hh[n + j]);
                            let gg = (xi[2 * n + j] + hh[2 * n + j]).tanh();
                            let o = sigmoid(xi[3 * n + j] + hh[3 * n + j]);
                            c[k][j] = f * c[k][j] + i * gg;
                            new_h[j] = o * c[k][j].tanh();
                        }
                    }
                    Kind::Gru => {
                        for j in 0..n {
                            let r = sigmoid(xi[j] + hh[j]);
                            let z = sigmoid(xi[n + j] + hh[n + j]);
                            let nn = (xi[2 * n + j] + r * hh[2 * n + j]).tanh();
                            new_h[j] = (1.0 - z) * nn + z * h[k][j];
                        }
                    }
                }
                h[k] = new_h;
                input = h[k].clone();
            }
            for o in 0..out {
                ys[[t, b, o]] = dot_col(&input, &w_out, out, o) + b_out[o];
            }
        }
        for k in 0..layers {
            let i = si(format!("h{k}"));
            state.slice_mut(i)[b * hidden..(b + 1) * hidden].copy_from_slice(&h[k]);
            if kind == Kind::Lstm {
                let i = si(format!("c{k}"));
                state.slice_mut(i)[b * hidden..(b + 1) * hidden].copy_from_slice(&c[k]);
            }
        }
    }
    ys
}

/// [`run`] for one sequence `xs` (`T × input`) from a copy of its `state`: the rows the
/// conformance suite's `reference` property checks every form against.
pub fn rows(
    kind: Kind,
    p: &crate::RnnParams,
    params: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ndarray::ArrayView2<f64>,
) -> ndarray::Array2<f64> {
    let ys = run(
        kind,
        p.hidden,
        p.layers,
        params,
        &mut state.clone(),
        xs.insert_axis(ndarray::Axis(1)),
    );
    ys.index_axis_move(ndarray::Axis(1), 0)
}
