//! One LSTM layer over a window, forward and backward (PyTorch's `nn.LSTM` equations, gate
//! blocks `i f g o` along the columns):
//!
//! ```text
//! [a_i a_f a_g a_o] = x_t W_ih + b_ih + h_{t−1} W_hh + b_hh
//! i, f, o = σ(a_i), σ(a_f), σ(a_o);   g = tanh(a_g)
//! c_t = f ⊙ c_{t−1} + i ⊙ g;          h_t = o ⊙ tanh(c_t)
//! ```
//!
//! The input product of the whole window is one matrix product; each step adds one product of
//! the batch's `h_{t−1}` with `W_hh` and runs the gate arithmetic in place. Backward, each step
//! computes the pre-activation gradients and one product with `W_hhᵀ`; the weight gradients
//! are then one product each over every step of the window.

use crate::mat::{mul, mul_acc, mul_acc_packed, mul_any, mul_t_acc, sum_rows_acc};
use crate::row;
use crate::tape::{LayerTape, sized};
use mnnn_core::Scalar;

/// Sizes of one layer's window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Steps T.
    pub t: usize,
    /// Sequences B.
    pub b: usize,
    /// Input width of this layer.
    pub n_in: usize,
    /// Hidden width H.
    pub h: usize,
}

/// This layer's weights.
pub(crate) struct Weights<'a, S> {
    pub w_ih: &'a [S],
    pub w_hh: &'a [S],
    pub b_ih: &'a [S],
    pub b_hh: &'a [S],
    /// `W_hh` packed by [`pack`](crate::mat::pack), when the window is long enough to repay
    /// the copy.
    pub w_hh_packed: Option<&'a [S]>,
    /// At batch 1, `W_hh` packed by [`pack_units`](crate::row::pack_units) instead, and the
    /// number of threads (1 or 2) the steps run on.
    pub units: Option<(&'a [S], usize)>,
}

impl<S: Scalar> Weights<'_, S> {
    /// `y += h · W_hh` for the `b` rows of `h` (`b × H`, `y` is `b × G·H`), the same bits
    /// whether `W_hh` is packed or not.
    #[inline]
    pub(crate) fn recur(&self, y: &mut [S], hs: &[S], b: usize, h: usize) {
        let g = self.w_hh.len() / h;
        match self.w_hh_packed {
            Some(wp) => mul_acc_packed(y, hs, wp, b, h, g),
            None => mul_acc(y, hs, self.w_hh, b, h, g),
        }
    }
}

/// Runs the window; `lt.hs[..B·H]` and `lt.cs[..B·H]` hold the initial state on entry, and
/// every later block is written.
pub(crate) fn forward<S: Scalar>(x: &[S], sh: Shape, w: &Weights<S>, lt: &mut LayerTape<S>) {
    let Shape { t, b, n_in, h } = sh;
    let (g, rows, bh) = (4 * h, t * b, b * h);
    sized(&mut lt.acts, rows * g);
    sized(&mut lt.aux, rows * h);
    mul(&mut lt.acts, x, w.w_ih, rows, n_in, g);
    // Both biases enter every pre-activation; adding them once per row keeps one pass.
    for row in lt.acts.chunks_exact_mut(g) {
        for ((v, a), c) in row.iter_mut().zip(w.b_ih).zip(w.b_hh) {
            *v += *a + *c;
        }
    }
    if let Some((wu, threads)) = w.units {
        debug_assert_eq!(b, 1, "the unit layout is the batch-1 step's");
        row::forward(t, h, wu, lt, threads);
        return;
    }
    let half = S::from_f64(0.5);
    for s in 0..t {
        let (h_done, h_rest) = lt.hs.split_at_mut((s + 1) * bh);
        let (h_prev, h_new) = (&h_done[s * bh..], &mut h_rest[..bh]);
        let (c_done, c_rest) = lt.cs.split_at_mut((s + 1) * bh);
        let (c_prev, c_new) = (&c_done[s * bh..], &mut c_rest[..bh]);
        let a = &mut lt.acts[s * b * g..(s + 1) * b * g];
        w.recur(a, h_prev, b, h);
        // σ(v) = ½ + ½·tanh(v/2): one vectorised tanh over all four blocks.
        for row in a.chunks_exact_mut(g) {
            row[..2 * h].iter_mut().for_each(|v| *v *= half);
            row[3 * h..].iter_mut().for_each(|v| *v *= half);
        }
        S::tanh_inplace(a);
        let tc = &mut lt.aux[s * bh..(s + 1) * bh];
        for (k, row) in a.chunks_exact_mut(g).enumerate() {
            row[..2 * h].iter_mut().for_each(|v| *v = half + half * *v);
            row[3 * h..].iter_mut().for_each(|v| *v = half + half * *v);
            let (i, rest) = row.split_at(h);
            let (f, rest) = rest.split_at(h);
            let gg = &rest[..h];
            let r = k * h..(k + 1) * h;
            for ((((cn, &cp), &i), &f), &gg) in c_new[r.clone()]
                .iter_mut()
                .zip(&c_prev[r.clone()])
                .zip(i)
                .zip(f)
                .zip(gg)
            {
                *cn = f * cp + i * gg;
            }
            tc[r.clone()].copy_from_slice(&c_new[r]);
        }
        S::tanh_inplace(tc);
        for (k, row) in a.chunks_exact(g).enumerate() {
            let o = &row[3 * h..];
            let r = k * h..(k + 1) * h;
            for ((hn, &o), &tc) in h_new[r.clone()].iter_mut().zip(o).zip(&tc[r]) {
                *hn = o * tc;
            }
        }
    }
}

/// Gradients of one layer's weights.
pub(crate) struct Grads<'a, S> {
    pub w_ih: &'a mut [S],
    pub w_hh: &'a mut [S],
    pub b_ih: &'a mut [S],
    pub b_hh: &'a mut [S],
}

/// The backward pass of [`forward`]. `dh_out` is `∂L/∂h_t` from above (`T·B × H`); `dh` and
/// `dc` hold `∂L/∂(h, c)` after the window on entry and before it on return; `dg` is work
/// space; `dx` (`T·B × in`), when given, receives `∂L/∂x_t`. At batch 1 the steps run on
/// `threads` threads (see [`row`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<S: Scalar>(
    x: &[S],
    sh: Shape,
    lt: &LayerTape<S>,
    dh_out: &[S],
    dh: &mut [S],
    dc: &mut [S],
    dg: &mut Vec<S>,
    grads: Grads<S>,
    dx: Option<&mut [S]>,
    threads: usize,
) {
    let Shape { t, b, n_in, h } = sh;
    let (g, rows, bh) = (4 * h, t * b, b * h);
    sized(dg, rows * g);
    let one = S::one();
    if b == 1 {
        row::backward(t, h, lt, &lt.w_hh_t, dh_out, dh, dc, dg, threads);
    }
    for s in (0..t).rev().filter(|_| b != 1) {
        for (d, o) in dh.iter_mut().zip(&dh_out[s * bh..(s + 1) * bh]) {
            *d += *o;
        }
        let a = &lt.acts[s * b * g..(s + 1) * b * g];
        let tc = &lt.aux[s * bh..(s + 1) * bh];
        let c_prev = &lt.cs[s * bh..(s + 1) * bh];
        let dgs = &mut dg[s * b * g..(s + 1) * b * g];
        for k in 0..b {
            let (row, drow) = (&a[k * g..(k + 1) * g], &mut dgs[k * g..(k + 1) * g]);
            for j in 0..h {
                let q = k * h + j;
                let (i, f, gg, o) = (row[j], row[h + j], row[2 * h + j], row[3 * h + j]);
                let (dhv, tcv) = (dh[q], tc[q]);
                let dcv = dc[q] + dhv * o * (one - tcv * tcv);
                drow[j] = dcv * gg * i * (one - i);
                drow[h + j] = dcv * c_prev[q] * f * (one - f);
                drow[2 * h + j] = dcv * i * (one - gg * gg);
                drow[3 * h + j] = dhv * tcv * o * (one - o);
                dc[q] = dcv * f;
            }
        }
        dh.fill(S::zero());
        mul_acc_packed(dh, dgs, &lt.w_hh_t, b, g, h);
    }
    mul_t_acc(grads.w_hh, &lt.hs[..rows * h], dg, rows, h, g);
    mul_t_acc(grads.w_ih, x, dg, rows, n_in, g);
    sum_rows_acc(grads.b_ih, dg);
    sum_rows_acc(grads.b_hh, dg);
    if let Some(dx) = dx {
        mul_any(dx, dg, &lt.w_ih_t, rows, g, n_in);
    }
}
