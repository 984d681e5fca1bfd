//! One GRU layer over a window, forward and backward (PyTorch's `nn.GRU` equations, gate
//! blocks `r z n` along the columns, the reset gate applied to the recurrent product):
//!
//! ```text
//! [i_r i_z i_n] = x_t W_ih + b_ih;      [g_r g_z g_n] = h_{t−1} W_hh + b_hh
//! r = σ(i_r + g_r);   z = σ(i_z + g_z);   n = tanh(i_n + r ⊙ g_n)
//! h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
//! ```
//!
//! As for the LSTM: the input product of the whole window is one matrix product, each step one
//! product with `W_hh` over the batch, and the weight gradients one product each per window.

use crate::lstm::{Grads, Shape, Weights};
use crate::mat::{add_rows, mul, mul_acc_packed, mul_any, mul_t_acc, sum_rows_acc};
use crate::tape::{LayerTape, sized};
use mnnn_core::Scalar;

/// Runs the window; `lt.hs[..B·H]` holds the initial state on entry.
pub(crate) fn forward<S: Scalar>(x: &[S], sh: Shape, w: &Weights<S>, lt: &mut LayerTape<S>) {
    let Shape { t, b, n_in, h } = sh;
    let (g, rows, bh) = (3 * h, t * b, b * h);
    sized(&mut lt.acts, rows * g);
    sized(&mut lt.aux, rows * h);
    sized(&mut lt.gh, b * g);
    mul(&mut lt.acts, x, w.w_ih, rows, n_in, g);
    add_rows(&mut lt.acts, w.b_ih);
    let half = S::from_f64(0.5);
    for s in 0..t {
        let (h_done, h_rest) = lt.hs.split_at_mut((s + 1) * bh);
        let (h_prev, h_new) = (&h_done[s * bh..], &mut h_rest[..bh]);
        for row in lt.gh.chunks_exact_mut(g) {
            row.copy_from_slice(w.b_hh);
        }
        w.recur(&mut lt.gh, h_prev, b, h);
        let a = &mut lt.acts[s * b * g..(s + 1) * b * g];
        let ghn = &mut lt.aux[s * bh..(s + 1) * bh];
        for (k, (row, gr)) in a.chunks_exact_mut(g).zip(lt.gh.chunks_exact(g)).enumerate() {
            // r and z: σ(v) = ½ + ½·tanh(v/2).
            for (v, q) in row[..2 * h].iter_mut().zip(&gr[..2 * h]) {
                *v = half * (*v + *q);
            }
            S::tanh_inplace(&mut row[..2 * h]);
            row[..2 * h].iter_mut().for_each(|v| *v = half + half * *v);
            let (rz, n) = row.split_at_mut(2 * h);
            ghn[k * h..(k + 1) * h].copy_from_slice(&gr[2 * h..]);
            for ((v, &r), &q) in n.iter_mut().zip(&rz[..h]).zip(&gr[2 * h..]) {
                *v += r * q;
            }
            S::tanh_inplace(n);
            let hp = &h_prev[k * h..(k + 1) * h];
            for (((hn, &z), &n), &hp) in h_new[k * h..(k + 1) * h]
                .iter_mut()
                .zip(&rz[h..])
                .zip(n.iter())
                .zip(hp)
            {
                *hn = n + z * (hp - n);
            }
        }
    }
}

/// The backward pass of [`forward`]; arguments as the LSTM's
/// [`backward`](crate::lstm::backward), with `dgh` the work space of the recurrent product's
/// gradients (the input product's differ from them in the `n` block).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<S: Scalar>(
    x: &[S],
    sh: Shape,
    lt: &LayerTape<S>,
    dh_out: &[S],
    dh: &mut [S],
    dgi: &mut Vec<S>,
    dgh: &mut Vec<S>,
    grads: Grads<S>,
    dx: Option<&mut [S]>,
) {
    let Shape { t, b, n_in, h } = sh;
    let (g, rows, bh) = (3 * h, t * b, b * h);
    sized(dgi, rows * g);
    sized(dgh, rows * g);
    let one = S::one();
    for s in (0..t).rev() {
        for (d, o) in dh.iter_mut().zip(&dh_out[s * bh..(s + 1) * bh]) {
            *d += *o;
        }
        let a = &lt.acts[s * b * g..(s + 1) * b * g];
        let ghn = &lt.aux[s * bh..(s + 1) * bh];
        let hp = &lt.hs[s * bh..(s + 1) * bh];
        let (di, dr) = (
            &mut dgi[s * b * g..(s + 1) * b * g],
            &mut dgh[s * b * g..(s + 1) * b * g],
        );
        for k in 0..b {
            let row = &a[k * g..(k + 1) * g];
            for j in 0..h {
                let q = k * h + j;
                let (r, z, n) = (row[j], row[h + j], row[2 * h + j]);
                let dhv = dh[q];
                let dan = dhv * (one - z) * (one - n * n);
                let dar = dan * ghn[q] * r * (one - r);
                let daz = dhv * (hp[q] - n) * z * (one - z);
                let o = k * g;
                di[o + j] = dar;
                dr[o + j] = dar;
                di[o + h + j] = daz;
                dr[o + h + j] = daz;
                di[o + 2 * h + j] = dan;
                dr[o + 2 * h + j] = dan * r;
                dh[q] = dhv * z;
            }
        }
        mul_acc_packed(dh, dr, &lt.w_hh_t, b, g, h);
    }
    mul_t_acc(grads.w_hh, &lt.hs[..rows * h], dgh, rows, h, g);
    mul_t_acc(grads.w_ih, x, dgi, rows, n_in, g);
    sum_rows_acc(grads.b_ih, dgi);
    sum_rows_acc(grads.b_hh, dgh);
    if let Some(dx) = dx {
        mul_any(dx, dgi, &lt.w_ih_t, rows, g, n_in);
    }
}
