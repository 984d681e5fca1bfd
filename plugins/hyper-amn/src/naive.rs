//! Hyper-AMN's equations (the crate docs, both modes) as a naive f64 token loop, one head,
//! one step and one unit at a time, sharing nothing with [`crate::cell`] or
//! [`crate::forward`]: what the conformance suite's `reference` property checks every form
//! against.

// The equations index heads, units and manifold rows the way the docs write them.
#![allow(clippy::needless_range_loop)]

use crate::HyperAmnParams;
use mnnn_core::naive::{sigmoid, softplus, values};
use mnnn_core::reference::Compat;
use mnnn_core::{Dims, Tensors};
use ndarray::{Array2, ArrayView2};

/// `softmax(l)`, shifted by its largest entry.
fn softmax(l: &[f64]) -> Vec<f64> {
    let top = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = l.iter().map(|v| (v - top).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The rows `y_t` for inputs `xs` from `state`.
pub(crate) fn naive(
    p: &HyperAmnParams,
    dims: Dims,
    w: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Option<Array2<f64>> {
    let (ni, h, m, heads, no) = (dims.input, p.hidden, p.manifold, p.heads, dims.output);
    let design = p.compat == Compat::Design;
    // Design trains unconstrained values and maps them; reference uses the values.
    let mapped = |name: &str, f: fn(f64) -> f64| -> Option<Vec<f64>> {
        if design {
            Some(
                values(w, &format!("{name}_raw"))?
                    .into_iter()
                    .map(f)
                    .collect(),
            )
        } else {
            values(w, name)
        }
    };
    let (a, bf) = (mapped("a", softplus)?, mapped("bf", softplus)?);
    let (decay, lam) = (mapped("decay", sigmoid)?, mapped("lambda", sigmoid)?);
    let (b, kk, qq, vv) = (
        values(w, "b")?,
        values(w, "k")?,
        values(w, "q")?,
        values(w, "v")?,
    );
    let (g, cross, c, d) = (
        values(w, "g")?,
        values(w, "cross")?,
        values(w, "c")?,
        values(w, "d")?,
    );
    let mut s = values(state, "s")?; // heads × H
    let mut mf = values(state, "m")?; // heads × M × H
    // The merged state: read by the reference's gate, written every step in both modes.
    let mut mg = if design {
        vec![0.0; h]
    } else {
        values(state, "mg")?
    };
    let logit = |src: &[f64], k: usize| -> f64 { (0..h).map(|j| src[j] * g[k * h + j]).sum() };
    let mut ys = Array2::zeros((xs.nrows(), no));
    for (t, x) in xs.rows().into_iter().enumerate() {
        let x = x.to_vec();
        // The reference's gate: from the merged state of the step before.
        let late = softmax(&(0..heads).map(|k| logit(&mg, k)).collect::<Vec<_>>());
        let mut z = vec![0.0; heads * h];
        for k in 0..heads {
            let mut l = vec![0.0; h];
            for i in 0..h {
                let u: f64 = (0..ni).map(|j| x[j] * b[j * h + i]).sum();
                let pre = lam[i] * s[k * h + i] + u;
                let f = pre.tanh();
                let tau = a[k * h + i] + bf[k * h + i] * f.abs();
                l[i] = pre + p.dt * (bf[k * h + i] * f - tau * pre);
            }
            let weight = if design { 1.0 - decay[k] } else { 1.0 };
            let key: Vec<f64> = (0..m)
                .map(|r| sigmoid((0..h).map(|i| l[i] * kk[(k * h + i) * m + r]).sum()))
                .collect();
            for r in 0..m {
                for i in 0..h {
                    let at = (k * m + r) * h + i;
                    mf[at] = decay[k] * mf[at] + weight * key[r] * l[i] * vv[at];
                }
            }
            let qry: Vec<f64> = (0..m)
                .map(|r| sigmoid((0..h).map(|i| l[i] * qq[(k * h + i) * m + r]).sum()))
                .collect();
            for i in 0..h {
                let read: f64 = (0..m).map(|r| qry[r] * mf[(k * m + r) * h + i]).sum();
                z[k * h + i] = p.mix * l[i] + (1.0 - p.mix) * read.tanh();
            }
        }
        for k in 0..heads {
            for i in 0..h {
                let mixed: f64 = (0..heads)
                    .map(|j| cross[k * heads + j] * z[j * h + i])
                    .sum();
                s[k * h + i] = if design {
                    mixed.clamp(-p.state_clip, p.state_clip)
                } else {
                    mixed
                };
            }
        }
        let gate = if design {
            softmax(
                &(0..heads)
                    .map(|k| logit(&s[k * h..(k + 1) * h], k))
                    .collect::<Vec<_>>(),
            )
        } else {
            late
        };
        for i in 0..h {
            mg[i] = (0..heads).map(|k| gate[k] * s[k * h + i]).sum();
        }
        for o in 0..no {
            let read: f64 = (0..h).map(|j| mg[j] * c[j * no + o]).sum();
            let skip: f64 = (0..ni).map(|j| x[j] * d[j * no + o]).sum();
            ys[[t, o]] = read + skip;
        }
    }
    Some(ys)
}
