//! The DTPN cell: batched step, windowed forward with a tape, and full-BPTT backward, in both
//! fidelity modes.
//!
//! Row conventions: a batch of vectors is a `B × n` block, a window's rows are `t·B + b`, and
//! the memory matrix of one sequence is an `M × H` row-major block.

use crate::DtpnParams;
use mnnn_core::buf::{mat, mat_mut, split_blocks, zeroed};
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::ops::{Activation, linear};
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s};

// Parameter indices. `w_in` and `u` come first in both modes.
const W_IN: usize = 0;
const U: usize = 1;
// Design mode.
const B_H: usize = 2;
const W_K: usize = 3;
const W_V: usize = 4;
const W_Q: usize = 5;
// Reference mode.
const K_REF: usize = 2;
const V_REF: usize = 3;

// State indices (both modes).
#[cfg(test)]
const ST_H: usize = 0;
const ST_E: usize = 1;
const ST_N: usize = 2;
const ST_MEM: usize = 3;

/// The DTPN cell for one scalar type, fidelity mode and set of widths.
#[derive(Clone, Debug)]
pub struct DtpnCell<S> {
    dims: Dims,
    hidden: usize,
    memory: usize,
    alpha: S,
    beta: S,
    decay: S,
    compat: Compat,
}

/// Work space of [`DtpnCell`]'s step, reused from step to step.
#[derive(Default, Debug)]
pub struct Scratch<S> {
    pre: Vec<S>,
    y: Vec<S>,
    k: Vec<S>,
    v: Vec<S>,
    q: Vec<S>,
}

/// What the forward window keeps for the backward pass (rows are `t·B + b`).
#[derive(Default, Debug)]
pub struct Tape<S> {
    steps: usize,
    batch: usize,
    /// Inputs, `rows × I`.
    x: Vec<S>,
    /// `h_0, h_1, …, h_T`, `(T + 1)·B × H` (the first block is the initial state).
    hs: Vec<S>,
    /// `tanh(pre_t)`, `rows × H`.
    c: Vec<S>,
    /// `y_t`, `rows × H`.
    y: Vec<S>,
    /// Design: `[k | v | q]`, `rows × (2M + H)`; reference: `k`, `rows × M`.
    g: Vec<S>,
    /// Design only: the memory after each step's write, `rows × M·H`.
    mem: Vec<S>,
    /// Design only: `[W_k | W_v | W_q]`, `H × (2M + H)`.
    w: Vec<S>,
    /// Cell outputs, `rows × O`.
    out: Vec<S>,
}

/// `v ← softmax(v)`, shifted by the maximum for stability.
fn softmax<S: Scalar>(v: &mut [S]) {
    let max = v.iter().copied().fold(S::neg_infinity(), S::max);
    let mut sum = S::zero();
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

impl<S: Scalar> DtpnCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &DtpnParams, dims: Dims) -> Self {
        DtpnCell {
            dims,
            hidden: params.hidden,
            memory: params.memory,
            alpha: S::from_f64(params.alpha),
            beta: S::from_f64(params.beta),
            decay: S::from_f64(params.memory_decay),
            compat: params.compat,
        }
    }

    /// Which function the cell computes.
    pub fn compat(&self) -> Compat {
        self.compat
    }

    fn design(&self) -> bool {
        self.compat == Compat::Design
    }

    /// Width of a row of the tape's `g` (key, value, query activations).
    fn g_width(&self) -> usize {
        if self.design() {
            2 * self.memory + self.hidden
        } else {
            self.memory
        }
    }

    fn w_out(&self) -> usize {
        if self.design() { 6 } else { 4 }
    }

    fn b_out(&self) -> usize {
        self.w_out() + 1
    }

    /// `y = c + β e`, then `e ← y` and `n ← (1 − α) n + α y`, for a block of rows; `c`
    /// holds `tanh(pre)`.
    #[inline]
    fn echo_reservoir(&self, c: &[S], e: &mut [S], n: &mut [S], y: &mut [S]) {
        let keep = S::one() - self.alpha;
        for i in 0..c.len() {
            let yi = c[i] + self.beta * e[i];
            y[i] = yi;
            e[i] = yi;
            n[i] = keep * n[i] + self.alpha * yi;
        }
    }

    /// Design, one row: `X ← decay·X + k vᵀ`, then `z = y + n + q X` (read after write).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn design_row(&self, k: &[S], v: &[S], q: &[S], y: &[S], n: &[S], x: &mut [S], z: &mut [S]) {
        let h = self.hidden;
        z.fill(S::zero());
        for ((row, &km), &qm) in x.chunks_exact_mut(h).zip(k).zip(q) {
            for j in 0..h {
                let xv = self.decay * row[j] + km * v[j];
                row[j] = xv;
                z[j] += qm * xv;
            }
        }
        for j in 0..h {
            z[j] = y[j] + n[j] + z[j];
        }
    }

    /// Reference, one row: `X[m,·] ← decay·X[m,·] + k_m V[m,·]`, then
    /// `z = y + n + (1/M) Σ_m X[m,·]` (the unaddressed column mean, after the write).
    #[inline]
    fn reference_row(&self, k: &[S], v: &[S], y: &[S], n: &[S], x: &mut [S], z: &mut [S]) {
        let h = self.hidden;
        z.fill(S::zero());
        for ((row, vrow), &km) in x.chunks_exact_mut(h).zip(v.chunks_exact(h)).zip(k) {
            for j in 0..h {
                let xv = self.decay * row[j] + km * vrow[j];
                row[j] = xv;
                z[j] += xv;
            }
        }
        let m = S::from_f64(self.memory as f64);
        for j in 0..h {
            z[j] = y[j] + n[j] + z[j] / m;
        }
    }

    /// Design activations of one row of `g = y [W_k | W_v | W_q]`: σ, tanh, softmax.
    #[inline]
    fn design_acts(&self, g: &mut [S]) {
        let (m, h) = (self.memory, self.hidden);
        let (k, rest) = g.split_at_mut(m);
        let (v, q) = rest.split_at_mut(h);
        Activation::Sigmoid.apply_inplace(k);
        S::tanh_inplace(v);
        softmax(q);
    }

    fn step_impl(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        sc: &mut Scratch<S>,
    ) {
        let (b, h, m) = (x.nrows(), self.hidden, self.memory);
        let bh = b * h;
        zeroed(&mut sc.pre, bh);
        let bias = self.design().then(|| params.vec(B_H));
        linear::forward(x, params.mat(W_IN), bias, mat_mut(&mut sc.pre, b, h));
        let [hs, e, n, mem] = split_blocks(state.data_mut(), bh);
        linear::accumulate(mat(hs, b, h), params.mat(U), mat_mut(&mut sc.pre, b, h));
        S::tanh_inplace(&mut sc.pre);
        zeroed(&mut sc.y, bh);
        self.echo_reservoir(&sc.pre, e, n, &mut sc.y);
        let yv = mat(&sc.y, b, h);
        zeroed(&mut sc.k, b * m);
        if self.design() {
            zeroed(&mut sc.v, bh);
            zeroed(&mut sc.q, b * m);
            linear::accumulate(yv, params.mat(W_K), mat_mut(&mut sc.k, b, m));
            linear::accumulate(yv, params.mat(W_V), mat_mut(&mut sc.v, b, h));
            linear::accumulate(yv, params.mat(W_Q), mat_mut(&mut sc.q, b, m));
            Activation::Sigmoid.apply_inplace(&mut sc.k);
            S::tanh_inplace(&mut sc.v);
            for r in 0..b {
                softmax(&mut sc.q[r * m..(r + 1) * m]);
                let rh = r * h..(r + 1) * h;
                self.design_row(
                    &sc.k[r * m..(r + 1) * m],
                    &sc.v[rh.clone()],
                    &sc.q[r * m..(r + 1) * m],
                    &sc.y[rh.clone()],
                    &n[rh.clone()],
                    &mut mem[r * m * h..(r + 1) * m * h],
                    &mut hs[rh],
                );
            }
        } else {
            linear::accumulate(yv, params.mat(K_REF), mat_mut(&mut sc.k, b, m));
            Activation::Sigmoid.apply_inplace(&mut sc.k);
            let vs = params.slice(V_REF);
            for r in 0..b {
                let rh = r * h..(r + 1) * h;
                self.reference_row(
                    &sc.k[r * m..(r + 1) * m],
                    vs,
                    &sc.y[rh.clone()],
                    &n[rh.clone()],
                    &mut mem[r * m * h..(r + 1) * m * h],
                    &mut hs[rh],
                );
            }
        }
        S::tanh_inplace(hs);
        let (wo, bo) = (params.mat(self.w_out()), params.vec(self.b_out()));
        linear::forward(mat(hs, b, h), wo, Some(bo), y);
    }

    /// The forward window. Always matrix products (never the single-row kernel), so a
    /// sequence computes the same bits alone or inside a batch. `record`: keep what the
    /// backward pass needs beyond what the forward itself uses (the memory history).
    fn window_impl(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
        record: bool,
    ) {
        let (t, b, i) = xs.dim();
        let (h, m, o) = (self.hidden, self.memory, self.dims.output);
        let (bh, rows, gw, mh) = (b * h, t * b, self.g_width(), m * h);
        let design = self.design();
        tape.steps = t;
        tape.batch = b;
        tape.x.clear();
        tape.x.extend(xs.iter().copied());
        zeroed(&mut tape.c, rows * h);
        zeroed(&mut tape.hs, (t + 1) * bh);
        zeroed(&mut tape.y, rows * h);
        zeroed(&mut tape.g, rows * gw);
        zeroed(&mut tape.out, rows * o);
        if design && record {
            zeroed(&mut tape.mem, rows * mh);
        } else {
            tape.mem.clear();
        }
        if design {
            // [W_k | W_v | W_q]: the three maps of y in one matrix product per step.
            zeroed(&mut tape.w, h * gw);
            let mut w = mat_mut(&mut tape.w, h, gw);
            w.slice_mut(s![.., ..m]).assign(&params.mat(W_K));
            w.slice_mut(s![.., m..m + h]).assign(&params.mat(W_V));
            w.slice_mut(s![.., m + h..]).assign(&params.mat(W_Q));
        } else {
            tape.w.clear();
        }
        // The input projection of every step at once.
        linear::forward(
            mat(&tape.x, rows, i),
            params.mat(W_IN),
            design.then(|| params.vec(B_H)),
            mat_mut(&mut tape.c, rows, h),
        );
        let [hst, e, n, mem] = split_blocks(state.data_mut(), bh);
        tape.hs[..bh].copy_from_slice(hst);
        let u = params.mat(U);
        let vs = params.slice(V_REF);
        for step in 0..t {
            let blk = step * bh..(step + 1) * bh;
            let (prev, cur) = tape.hs.split_at_mut((step + 1) * bh);
            let (hprev, hcur) = (&prev[step * bh..], &mut cur[..bh]);
            let c = &mut tape.c[blk.clone()];
            linear::accumulate(mat(hprev, b, h), u, mat_mut(c, b, h));
            S::tanh_inplace(c);
            let y = &mut tape.y[blk.clone()];
            self.echo_reservoir(c, e, n, y);
            let g = &mut tape.g[step * b * gw..(step + 1) * b * gw];
            if design {
                general_mat_mul(
                    S::one(),
                    &mat(y, b, h),
                    &mat(&tape.w, h, gw),
                    S::zero(),
                    &mut mat_mut(g, b, gw),
                );
                for r in 0..b {
                    let gr = &mut g[r * gw..(r + 1) * gw];
                    self.design_acts(gr);
                    let rh = r * h..(r + 1) * h;
                    self.design_row(
                        &gr[..m],
                        &gr[m..m + h],
                        &gr[m + h..],
                        &y[rh.clone()],
                        &n[rh.clone()],
                        &mut mem[r * mh..(r + 1) * mh],
                        &mut hcur[rh],
                    );
                }
                if record {
                    tape.mem[step * b * mh..(step + 1) * b * mh].copy_from_slice(mem);
                }
            } else {
                general_mat_mul(
                    S::one(),
                    &mat(y, b, h),
                    &params.mat(K_REF),
                    S::zero(),
                    &mut mat_mut(g, b, m),
                );
                Activation::Sigmoid.apply_inplace(g);
                for r in 0..b {
                    let rh = r * h..(r + 1) * h;
                    self.reference_row(
                        &g[r * m..(r + 1) * m],
                        vs,
                        &y[rh.clone()],
                        &n[rh.clone()],
                        &mut mem[r * mh..(r + 1) * mh],
                        &mut hcur[rh],
                    );
                }
            }
            S::tanh_inplace(hcur);
        }
        hst.copy_from_slice(&tape.hs[t * bh..]);
        linear::forward(
            mat(&tape.hs[bh..], rows, h),
            params.mat(self.w_out()),
            Some(params.vec(self.b_out())),
            mat_mut(&mut tape.out, rows, o),
        );
        ys.assign(&ArrayView3::from_shape((t, b, o), &tape.out).expect("sized above"));
    }
}

impl<S: Scalar> Cell<S> for DtpnCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, h, m, o) = (self.dims.input, self.hidden, self.memory, self.dims.output);
        let l = Layout::new().with("w_in", &[i, h]).with("u", &[h, h]);
        let l = if self.design() {
            l.with("b_h", &[h])
                .with("w_k", &[h, m])
                .with("w_v", &[h, h])
                .with("w_q", &[h, m])
        } else {
            l.with("w_k", &[h, m]).with("v", &[m, h])
        };
        l.with("w_out", &[h, o]).with("b_out", &[o])
    }

    fn state_layout(&self) -> Layout {
        let (h, m) = (self.hidden, self.memory);
        Layout::new()
            .with("h", &[h])
            .with("e", &[h])
            .with("n", &[h])
            .with("memory", &[m, h])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // The reference's initialisation: zero-mean normals with variance 2/(fan_in + fan_out)
        // for W_in and W_out and 1/H for the square and memory maps; zero biases.
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        let (hf, io) = (1.0 / h as f64, 2.0 / (i + h) as f64);
        let mut var = vec![(W_IN, io), (U, hf)];
        if self.design() {
            var.extend([(W_K, hf), (W_V, hf), (W_Q, hf)]);
        } else {
            var.extend([(K_REF, hf), (V_REF, hf)]);
        }
        var.push((self.w_out(), 2.0 / (h + o) as f64));
        for (idx, v) in var {
            init::normal(rng, params.slice_mut(idx), v.sqrt());
        }
    }

    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>,
    ) {
        self.step_impl(params, state, x, y, scratch);
    }

    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        match tape {
            Some(tape) => self.window_impl(params, state, xs, ys, tape, true),
            None => self.window_impl(params, state, xs, ys, &mut Tape::default(), false),
        }
    }

    fn backward_window(
        &self,
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b) = (tape.steps, tape.batch);
        let (i, h, m, o) = (self.dims.input, self.hidden, self.memory, self.dims.output);
        let (bh, rows, gw, mh) = (b * h, t * b, self.g_width(), m * h);
        let design = self.design();
        let one = S::one();
        let keep = one - self.alpha;
        let (w_out, b_out) = (self.w_out(), self.b_out());

        // Output layer, every step at once: dW_out, db_out, and ∂L/∂h_t from the outputs.
        let dys = dys.to_shape((rows, o)).expect("T × B × O");
        let mut dh_out = vec![S::zero(); rows * h];
        linear::backward(
            mat(&tape.hs[bh..], rows, h),
            params.mat(w_out),
            dys.view(),
            grads.mat_mut(w_out),
            None,
            Some((mat_mut(&mut dh_out, rows, h), false)),
        );
        grads.vec_mut(b_out).scaled_add(one, &dys.sum_axis(Axis(0)));

        let mut dpre = vec![S::zero(); rows * h];
        let mut dl = vec![S::zero(); rows * gw];
        let mut dy = vec![S::zero(); bh];
        let mut dv_ref = if design {
            Vec::new()
        } else {
            vec![S::zero(); mh]
        };
        // The transposed maps of the per-step products, contiguous, so that each step is
        // one `accumulate` (the matrix–vector kernel at batch 1, no per-step packing).
        let wkvq = if design {
            mat(&tape.w, h, gw)
        } else {
            params.mat(K_REF)
        };
        let wkvq_t = wkvq.t().as_standard_layout().into_owned();
        let u_t = params.mat(U).t().as_standard_layout().into_owned();
        let vs = params.slice(V_REF);
        let inv_m = one / S::from_f64(m as f64);
        let [gh, ge, gn, gx] = split_blocks(dstate.data_mut(), bh);
        for step in (0..t).rev() {
            let blk = step * bh..(step + 1) * bh;
            let hcur = &tape.hs[(step + 1) * bh..(step + 2) * bh];
            let dho = &dh_out[blk.clone()];
            let g = &tape.g[step * b * gw..(step + 1) * b * gw];
            let dlt = &mut dl[step * b * gw..(step + 1) * b * gw];
            for r in 0..b {
                let gr = &g[r * gw..(r + 1) * gw];
                let dlr = &mut dlt[r * gw..(r + 1) * gw];
                let gxr = &mut gx[r * mh..(r + 1) * mh];
                let base = r * h;
                // z = y + n + r: dz = ∂L/∂h ⊙ (1 − h²) reaches y, n and the read.
                for j in 0..h {
                    let k = base + j;
                    let hv = hcur[k];
                    let dz = (gh[k] + dho[k]) * (one - hv * hv);
                    let gn_tot = gn[k] + dz;
                    gn[k] = keep * gn_tot;
                    dy[k] = dz + ge[k] + self.alpha * gn_tot;
                    // Keep dz in gh (overwritten by the recurrent gradient below).
                    gh[k] = dz;
                }
                let dz = &gh[base..base + h];
                if design {
                    let (k, rest) = gr.split_at(m);
                    let (v, q) = rest.split_at(h);
                    let (dlk, rest) = dlr.split_at_mut(m);
                    let (dlv, dlq) = rest.split_at_mut(h);
                    let xm = &tape.mem[(step * b + r) * mh..(step * b + r + 1) * mh];
                    let mut sdq = S::zero();
                    for mi in 0..m {
                        let xrow = &xm[mi * h..(mi + 1) * h];
                        let grow = &mut gxr[mi * h..(mi + 1) * h];
                        let (qm, km) = (q[mi], k[mi]);
                        let (mut dq, mut dk) = (S::zero(), S::zero());
                        for j in 0..h {
                            dq += dz[j] * xrow[j];
                            let gt = grow[j] + qm * dz[j];
                            dk += gt * v[j];
                            dlv[j] += gt * km;
                            grow[j] = self.decay * gt;
                        }
                        dlq[mi] = dq;
                        sdq += qm * dq;
                        dlk[mi] = dk * km * (one - km);
                    }
                    for mi in 0..m {
                        dlq[mi] = q[mi] * (dlq[mi] - sdq);
                    }
                    for j in 0..h {
                        dlv[j] *= one - v[j] * v[j];
                    }
                } else {
                    for mi in 0..m {
                        let vrow = &vs[mi * h..(mi + 1) * h];
                        let grow = &mut gxr[mi * h..(mi + 1) * h];
                        let dvrow = &mut dv_ref[mi * h..(mi + 1) * h];
                        let km = gr[mi];
                        let mut dk = S::zero();
                        for j in 0..h {
                            let gt = grow[j] + dz[j] * inv_m;
                            dk += gt * vrow[j];
                            dvrow[j] += gt * km;
                            grow[j] = self.decay * gt;
                        }
                        dlr[mi] = dk * km * (one - km);
                    }
                }
            }
            // The key (and value, query) maps read y.
            linear::accumulate(mat(dlt, b, gw), wkvq_t.view(), mat_mut(&mut dy, b, h));
            let c = &tape.c[blk.clone()];
            let dp = &mut dpre[blk];
            for k in 0..bh {
                ge[k] = self.beta * dy[k];
                dp[k] = dy[k] * (one - c[k] * c[k]);
            }
            gh.fill(S::zero());
            linear::accumulate(mat(dp, b, h), u_t.view(), mat_mut(gh, b, h));
        }

        // Parameter gradients, every step at once.
        let dpre_m = mat(&dpre, rows, h);
        general_mat_mul(
            one,
            &mat(&tape.x, rows, i).t(),
            &dpre_m,
            one,
            &mut grads.mat_mut(W_IN),
        );
        general_mat_mul(
            one,
            &mat(&tape.hs[..rows * h], rows, h).t(),
            &dpre_m,
            one,
            &mut grads.mat_mut(U),
        );
        let y_m = mat(&tape.y, rows, h);
        let y_t = y_m.t();
        let dl_m = mat(&dl, rows, gw);
        if design {
            grads
                .vec_mut(B_H)
                .scaled_add(one, &dpre_m.sum_axis(Axis(0)));
            for (idx, cols) in [(W_K, 0..m), (W_V, m..m + h), (W_Q, m + h..gw)] {
                general_mat_mul(
                    one,
                    &y_t,
                    &dl_m.slice(s![.., cols]),
                    one,
                    &mut grads.mat_mut(idx),
                );
            }
        } else {
            general_mat_mul(one, &y_t, &dl_m, one, &mut grads.mat_mut(K_REF));
            for (gv, d) in grads.slice_mut(V_REF).iter_mut().zip(&dv_ref) {
                *gv += *d;
            }
        }
        if let Some(dx) = dxs {
            linear::backward_inputs(&[(dpre_m, params.mat(W_IN))], dx);
        }
    }

    fn diagnostics(&self, _params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let (h, mh) = (self.hidden, self.memory * self.hidden);
        vec![
            Diagnostic {
                name: "mean_abs_echo",
                value: mean_abs(&state.slice(ST_E)[..h]),
            },
            Diagnostic {
                name: "mean_abs_reservoir",
                value: mean_abs(&state.slice(ST_N)[..h]),
            },
            Diagnostic {
                name: "matrix_energy",
                value: mean_abs(&state.slice(ST_MEM)[..mh]),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let mut v = [1000.0f64, 1001.0, 999.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(v[1] > v[0] && v[0] > v[2]);
    }

    #[test]
    fn state_indices_follow_the_layout() {
        let cell = DtpnCell::<f64>::new(
            &DtpnParams::default(),
            Dims {
                input: 2,
                output: 1,
            },
        );
        let l = cell.state_layout();
        for (i, name) in [(ST_H, "h"), (ST_E, "e"), (ST_N, "n"), (ST_MEM, "memory")] {
            assert_eq!(l.index_of(name), Some(i));
        }
        let p = cell.param_layout();
        assert_eq!(p.index_of("w_out"), Some(cell.w_out()));
        assert_eq!(p.index_of("b_out"), Some(cell.b_out()));
        for (i, name) in [(W_IN, "w_in"), (U, "u"), (B_H, "b_h"), (W_K, "w_k")] {
            assert_eq!(p.index_of(name), Some(i));
        }
        assert_eq!(p.index_of("w_v"), Some(W_V));
        assert_eq!(p.index_of("w_q"), Some(W_Q));
        let r = DtpnCell::<f64>::new(
            &DtpnParams {
                compat: Compat::Reference,
                ..Default::default()
            },
            Dims {
                input: 2,
                output: 1,
            },
        );
        let p = r.param_layout();
        assert_eq!(p.index_of("w_k"), Some(K_REF));
        assert_eq!(p.index_of("v"), Some(V_REF));
        assert_eq!(p.index_of("w_out"), Some(r.w_out()));
    }
}
