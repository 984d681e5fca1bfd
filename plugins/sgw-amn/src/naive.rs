//! SGW-AMN's equations (the crate docs, both modes) as a naive f64 token loop, one unit at a
//! time, sharing nothing with [`crate::cell`] or [`crate::forward`]: what the conformance
//! suite's `reference` property checks every form against. The winners are chosen by the
//! plainest rule there is — W times the highest remaining score, ties to the lower index.

// The equations index units and matrices the way the docs write them.
#![allow(clippy::needless_range_loop)]

use crate::SgwAmnParams;
use mnnn_core::naive::{sigmoid, softplus, values};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// GELU, tanh-approximated.
fn gelu(u: f64) -> f64 {
    0.5 * u * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (u + 0.044715 * u * u * u)).tanh())
}

/// The indices of the `w` largest scores, largest first, ties to the lower index; with more
/// winners than scores, the extra winners are unit 0 (as in the reference).
fn winners(scores: &[f64], w: usize) -> Vec<usize> {
    let mut taken = vec![false; scores.len()];
    (0..w)
        .map(|_| {
            let mut best: Option<usize> = None;
            for (i, &s) in scores.iter().enumerate() {
                if !taken[i] && best.is_none_or(|b| s > scores[b]) {
                    best = Some(i);
                }
            }
            let b = best.unwrap_or(0);
            taken[b] = true;
            b
        })
        .collect()
}

/// The rows `y_t` for inputs `xs` from `state`.
pub(crate) fn naive(
    p: &SgwAmnParams,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (ni, np, nw, nq, nm, no) = (
        dims.input,
        p.pre,
        p.workspace,
        p.post,
        p.manifold,
        dims.output,
    );
    let design = p.compat == Compat::Design;
    // Design trains softplus preimages of the time constants; reference the values.
    let (a, bf) = if design {
        (
            values(w, "a_raw")?.into_iter().map(softplus).collect(),
            values(w, "bf_raw")?.into_iter().map(softplus).collect(),
        )
    } else {
        (values(w, "a")?, values(w, "bf")?)
    };
    let (a, bf): (Vec<f64>, Vec<f64>) = (a, bf);
    let (wip, comp, wwq) = (values(w, "w_ip")?, values(w, "comp")?, values(w, "w_wq")?);
    let (kk, qq, vv, wout) = (
        values(w, "k")?,
        values(w, "q")?,
        values(w, "v")?,
        values(w, "w_out")?,
    );
    let mut ws = values(state, "ws")?;
    let mut wm = values(state, "wm")?; // W × W
    let mut mf = values(state, "m")?; // M × Q
    let mut ys = Array2::zeros((xs.nrows(), no));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        let pre: Vec<f64> = (0..np)
            .map(|i| gelu((0..ni).map(|j| x[j] * wip[j * np + i]).sum()))
            .collect();
        let score: Vec<f64> = (0..np)
            .map(|i| pre[i].abs() * (0..nw).map(|j| comp[i * nw + j].abs()).sum::<f64>())
            .collect();
        let win = winners(&score, nw);
        // Design: the winners weighted by W·softmax of their scores; reference: weight 1.
        let gain: Vec<f64> = if design {
            let e: Vec<f64> = win
                .iter()
                .map(|&i| (score[i] / p.temperature).exp())
                .collect();
            let sum: f64 = e.iter().sum();
            e.iter().map(|v| nw as f64 * v / sum).collect()
        } else {
            vec![1.0; nw]
        };
        // Design carries the workspace; the reference starts it from zero every step.
        let mut w0 = if design { ws.clone() } else { vec![0.0; nw] };
        for j in 0..nw {
            for (n, &i) in win.iter().enumerate() {
                w0[j] += gain[n] * pre[i] * comp[i * nw + j];
            }
        }
        for i in 0..nw {
            let recalled: f64 = (0..nw).map(|j| wm[i * nw + j] * w0[j]).sum();
            let f = (w0[i] + recalled).tanh();
            let tau = a[i] + bf[i] * f.abs();
            let next = w0[i] + p.dt * (bf[i] * f - tau * w0[i]);
            ws[i] = if design {
                next.clamp(-p.state_clip, p.state_clip)
            } else {
                next
            };
        }
        for i in 0..nw {
            for j in 0..nw {
                wm[i * nw + j] =
                    p.workspace_decay * wm[i * nw + j] + (1.0 - p.workspace_decay) * ws[i] * ws[j];
            }
        }
        let p0: Vec<f64> = (0..nq)
            .map(|i| (0..nw).map(|j| ws[j] * wwq[j * nq + i]).sum::<f64>().tanh())
            .collect();
        let write = if design { 1.0 - p.memory_decay } else { 1.0 };
        for r in 0..nm {
            let key = sigmoid((0..nq).map(|i| p0[i] * kk[i * nm + r]).sum());
            for i in 0..nq {
                mf[r * nq + i] =
                    p.memory_decay * mf[r * nq + i] + write * key * p0[i] * vv[r * nq + i];
            }
        }
        let qry: Vec<f64> = (0..nm)
            .map(|r| sigmoid((0..nq).map(|i| p0[i] * qq[i * nm + r]).sum()))
            .collect();
        let out: Vec<f64> = (0..nq)
            .map(|i| {
                let read: f64 = (0..nm).map(|r| qry[r] * mf[r * nq + i]).sum();
                p.mix * p0[i] + (1.0 - p.mix) * read.tanh()
            })
            .collect();
        for o in 0..no {
            ys[[t, o]] = (0..nq).map(|j| out[j] * wout[j * no + o]).sum();
        }
    }
    Some(ys)
}
