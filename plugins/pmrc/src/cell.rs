//! The PMRC cell: batched step, windowed forward with a tape and full-BPTT backward, in the
//! design form and in the reference implementation's form.

use crate::PmrcParams;
use mnnn_core::buf::{mat, mat_mut, zeroed};
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::ops::linear;
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

/// Indices of the gate tensors in the parameter set.
#[derive(Clone, Copy, Debug)]
struct GateIdx {
    w_g: usize,
    u_g: usize,
    b_g: usize,
    w_c: usize,
    b_c: usize,
}

/// Indices of the cell's tensors in the parameter set (only those the configuration has).
#[derive(Clone, Copy, Debug)]
struct Idx {
    w_h: usize,
    b_h: usize,
    u_r: Option<usize>,
    gates: Option<GateIdx>,
    w_o: usize,
    b_o: usize,
}

/// The PMRC cell for one scalar type, configuration and set of widths.
#[derive(Clone, Debug)]
pub struct PmrcCell<S> {
    dims: Dims,
    hidden: usize,
    alpha: S,
    beta: S,
    output_beta: S,
    recurrent: bool,
    gates: bool,
    output_memory: bool,
    compat: Compat,
    idx: Idx,
}

/// Work space of [`PmrcCell::step`]: the three pre-activations and the output row(s).
#[derive(Default, Debug)]
pub struct Scratch<S> {
    buf: Vec<S>,
    y: Vec<S>,
}

/// What the forward window keeps for the backward pass. Rows are `t·B + b`; the `s` and `m`
/// histories hold one `B × hidden` block per step plus the blocks before the window (one
/// for `m`; one for `s` in design mode, two — `y_{t−2}` and `y_{t−1}` — in reference mode).
#[derive(Default, Debug)]
pub struct Tape<S> {
    steps: usize,
    batch: usize,
    x: Vec<S>,
    n: Vec<S>,
    g: Vec<S>,
    c: Vec<S>,
    s: Vec<S>,
    m: Vec<S>,
    z: Vec<S>,
    y: Vec<S>,
}

/// One sequence block's state tensors, split out of the flat batched state (absent tensors
/// are empty slices).
struct Parts<'a, S> {
    m: &'a mut [S],
    s: &'a mut [S],
    p: &'a mut [S],
    y: &'a mut [S],
    zp: &'a mut [S],
}

/// `dst += Σ_rows src` (rows of `dst.len()`).
fn add_col_sums<S: Scalar>(dst: &mut [S], src: &[S]) {
    for r in src.chunks_exact(dst.len().max(1)) {
        for (d, &v) in dst.iter_mut().zip(r) {
            *d += v;
        }
    }
}

/// `σ(x) = ½ + ½ tanh(x/2)` of one value.
#[inline]
fn sigmoid<S: Scalar>(x: S) -> S {
    let half = S::from_f64(0.5);
    half + half * (half * x).tanh()
}

/// `a[j] += Σ_{i<j} u[i,j] s[i] + Σ_{i≥j} u[i,j] p[i]` for one row: the reference's
/// Gauss–Seidel recurrence, `u` input-major (`u[i,j]` is from unit `i` to unit `j`).
fn gs_forward<S: Scalar>(u: &[S], s: &[S], p: &[S], a: &mut [S]) {
    let h = a.len();
    for (i, row) in u.chunks_exact(h).enumerate() {
        let (lo, hi) = row.split_at(i + 1);
        let pv = p[i];
        for (ak, &w) in a[..=i].iter_mut().zip(lo) {
            *ak += pv * w;
        }
        let sv = s[i];
        for (ak, &w) in a[i + 1..].iter_mut().zip(hi) {
            *ak += sv * w;
        }
    }
}

/// VJP of [`gs_forward`] with respect to `s` and `p`, added to `ds` and `dp`.
fn gs_backward<S: Scalar>(u: &[S], da: &[S], ds: &mut [S], dp: &mut [S]) {
    let h = da.len();
    for (i, row) in u.chunks_exact(h).enumerate() {
        let (lo, hi) = row.split_at(i + 1);
        let mut acc_p = S::zero();
        for (&w, &d) in lo.iter().zip(&da[..=i]) {
            acc_p += w * d;
        }
        let mut acc_s = S::zero();
        for (&w, &d) in hi.iter().zip(&da[i + 1..]) {
            acc_s += w * d;
        }
        dp[i] += acc_p;
        ds[i] += acc_s;
    }
}

/// The reference's gated memory for one row, neuron by neuron in order: `gp` holds
/// `x W_g + b_g` on entry and the gates `g` on return; `m` holds the old memory on entry and
/// the new one on return. Neuron `j`'s gate reads the memory already updated for `i < j`:
/// `g_j = σ(gp_j + Σ_{i≥j} u[i,j] m_old[i] + Σ_{i<j} u[i,j] m_new[i])`,
/// `m_new[j] = g_j c_j + (1 − g_j) m_old[j]`.
fn gate_forward<S: Scalar>(u: &[S], gp: &mut [S], m: &mut [S], c: &[S]) {
    let h = gp.len();
    for (i, row) in u.chunks_exact(h).enumerate() {
        let mv = m[i];
        for (g, &w) in gp[..=i].iter_mut().zip(&row[..=i]) {
            *g += mv * w;
        }
    }
    let one = S::one();
    for (j, row) in u.chunks_exact(h).enumerate() {
        let g = sigmoid(gp[j]);
        gp[j] = g;
        let mn = g * c[j] + (one - g) * m[j];
        m[j] = mn;
        for (gk, &w) in gp[j + 1..].iter_mut().zip(&row[j + 1..]) {
            *gk += mn * w;
        }
    }
}

/// VJP of [`gate_forward`] for one row, neurons in reverse order. `dmn` holds `∂L/∂m_new`
/// from outside the step (consumed); writes the gate and candidate pre-activation gradients
/// and assigns `∂L/∂m_old` to `dm_old`.
#[allow(clippy::too_many_arguments)]
fn gate_backward<S: Scalar>(
    u: &[S],
    g: &[S],
    c: &[S],
    m_old: &[S],
    dmn: &[S],
    dgp: &mut [S],
    dcp: &mut [S],
    dm_old: &mut [S],
) {
    let h = g.len();
    let one = S::one();
    for j in (0..h).rev() {
        let row = &u[j * h..(j + 1) * h];
        let mut acc = dmn[j];
        for (&w, &d) in row[j + 1..].iter().zip(&dgp[j + 1..]) {
            acc += w * d;
        }
        let (gv, cv) = (g[j], c[j]);
        dgp[j] = acc * (cv - m_old[j]) * gv * (one - gv);
        dcp[j] = acc * gv * (one - cv * cv);
        dm_old[j] = acc * (one - gv);
    }
    for (i, row) in u.chunks_exact(h).enumerate() {
        let mut acc = S::zero();
        for (&w, &d) in row[..=i].iter().zip(&dgp[..=i]) {
            acc += w * d;
        }
        dm_old[i] += acc;
    }
}

/// `dst[i,j] += if i < j { upper[i,j] } else { lower[i,j] }` for square `n × n` matrices.
fn add_split<S: Scalar>(dst: &mut [S], upper: &[S], lower: &[S], n: usize) {
    for i in 0..n {
        for j in 0..n {
            let k = i * n + j;
            dst[k] += if i < j { upper[k] } else { lower[k] };
        }
    }
}

impl<S: Scalar> PmrcCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &PmrcParams, dims: Dims) -> Self {
        let mut cell = PmrcCell {
            dims,
            hidden: params.hidden,
            alpha: S::from_f64(params.alpha),
            beta: S::from_f64(params.beta),
            output_beta: S::from_f64(params.output_beta),
            recurrent: params.use_recurrent,
            gates: params.use_learnable_gates,
            output_memory: params.use_output_memory,
            compat: params.compat,
            idx: Idx {
                w_h: 0,
                b_h: 0,
                u_r: None,
                gates: None,
                w_o: 0,
                b_o: 0,
            },
        };
        let layout = cell.param_layout();
        let at = |name: &str| layout.index_of(name);
        let must = |name: &str| at(name).expect("tensor in the layout built above");
        cell.idx = Idx {
            w_h: must("w_h"),
            b_h: must("b_h"),
            u_r: at("u_r"),
            gates: cell.gates.then(|| GateIdx {
                w_g: must("w_g"),
                u_g: must("u_g"),
                b_g: must("b_g"),
                w_c: must("w_c"),
                b_c: must("b_c"),
            }),
            w_o: must("w_o"),
            b_o: must("b_o"),
        };
        cell
    }

    fn reference(&self) -> bool {
        self.compat == Compat::Reference
    }

    /// Blocks of the `s` history before the window: `s_{t−1}` (design) or also `s_{t−2}`
    /// (reference).
    fn lag(&self) -> usize {
        if self.reference() { 2 } else { 1 }
    }

    fn parts<'a>(&self, data: &'a mut [S], b: usize) -> Parts<'a, S> {
        let (bh, bo) = (b * self.hidden, b * self.dims.output);
        let reference = self.reference();
        let (m, rest) = data.split_at_mut(bh);
        let (s, rest) = rest.split_at_mut(bh);
        let (p, rest) = rest.split_at_mut(if reference { bh } else { 0 });
        let (y, rest) = rest.split_at_mut(if self.output_memory { bo } else { 0 });
        let (zp, _) = rest.split_at_mut(if reference && self.output_memory {
            bo
        } else {
            0
        });
        Parts { m, s, p, y, zp }
    }

    /// Design mode, before the nonlinearities of one step for a block of rows: `a` holds
    /// `x W_h + s U_r` and becomes the pre-activation `a + b_h + m`; `g` (gates) holds
    /// `x W_g + m U_g` and becomes half its pre-activation, `(g + b_g)/2`, so that one tanh
    /// gives the sigmoid.
    fn design_pre(&self, params: &Tensors<S>, a: &mut [S], g: &mut [S], m: &[S]) {
        let h = self.hidden;
        let bh = params.slice(self.idx.b_h);
        for (ar, mr) in a.chunks_exact_mut(h).zip(m.chunks_exact(h)) {
            for ((v, &b), &mv) in ar.iter_mut().zip(bh).zip(mr) {
                *v = *v + b + mv;
            }
        }
        if let Some(gi) = self.idx.gates {
            let half = S::from_f64(0.5);
            let bg = params.slice(gi.b_g);
            for gr in g.chunks_exact_mut(h) {
                for (v, &b) in gr.iter_mut().zip(bg) {
                    *v = half * (*v + b);
                }
            }
        }
    }

    /// Design mode, after the nonlinearities: `a` holds `n`, `g` holds `tanh((g + b_g)/2)` and
    /// becomes the gate `σ`, `c` the candidate; `m`, `s` go from the previous state to the new.
    fn design_post(&self, a: &[S], g: &mut [S], c: &[S], m: &mut [S], s: &mut [S]) {
        let one = S::one();
        if self.gates {
            let half = S::from_f64(0.5);
            for k in 0..a.len() {
                let gv = half + half * g[k];
                g[k] = gv;
                s[k] = a[k] + self.beta * s[k];
                m[k] = gv * c[k] + (one - gv) * m[k];
            }
        } else {
            let keep = one - self.alpha;
            for k in 0..a.len() {
                let n = a[k];
                s[k] = n + self.beta * s[k];
                m[k] = keep * m[k] + self.alpha * n;
            }
        }
    }

    /// Reference mode, the hidden layer and memory of one step for a block of rows. On entry
    /// `a` holds `x W_h`, `gp` holds `x W_g` (gates), `c` the candidate, `m` the old memory;
    /// `s_prev = y_{t−1}` and `p_prev = y_{t−2}`. On return `a` holds `n`, `gp` the gates and
    /// `m` the new memory.
    #[allow(clippy::too_many_arguments)]
    fn reference_core(
        &self,
        params: &Tensors<S>,
        a: &mut [S],
        gp: &mut [S],
        c: &[S],
        m: &mut [S],
        s_prev: &[S],
        p_prev: &[S],
    ) {
        let h = self.hidden;
        let bh = params.slice(self.idx.b_h);
        for (r, ar) in a.chunks_exact_mut(h).enumerate() {
            let rows = r * h..(r + 1) * h;
            for (v, &b) in ar.iter_mut().zip(bh) {
                *v += b;
            }
            if let Some(u) = self.idx.u_r {
                gs_forward(
                    params.slice(u),
                    &s_prev[rows.clone()],
                    &p_prev[rows.clone()],
                    ar,
                );
            }
            for (v, &mv) in ar.iter_mut().zip(&m[rows]) {
                *v += mv;
            }
        }
        S::tanh_inplace(a);
        match self.idx.gates {
            Some(gi) => {
                let (u, bg) = (params.slice(gi.u_g), params.slice(gi.b_g));
                for ((gr, mr), cr) in gp
                    .chunks_exact_mut(h)
                    .zip(m.chunks_exact_mut(h))
                    .zip(c.chunks_exact(h))
                {
                    for (v, &b) in gr.iter_mut().zip(bg) {
                        *v += b;
                    }
                    gate_forward(u, gr, mr, cr);
                }
            }
            None => {
                let keep = S::one() - self.alpha;
                for (mv, &n) in m.iter_mut().zip(a.iter()) {
                    *mv = keep * *mv + self.alpha * n;
                }
            }
        }
    }

    /// The output echo of one step for a block of rows: `out` holds `tanh(s W_o + b_o)` on
    /// entry and the output on return; `y` (and `zp` in reference mode) is the echo state.
    fn output_echo(&self, out: &mut [S], y: &mut [S], zp: &mut [S]) {
        if !self.output_memory {
            return;
        }
        let bo = self.output_beta;
        if self.reference() {
            // ŷ_t = q_t + β_o ŷ_{t−2}: z holds ŷ_{t−1}, zp holds ŷ_{t−2}.
            for ((v, z), zp) in out.iter_mut().zip(y.iter_mut()).zip(zp.iter_mut()) {
                let nv = *v + bo * *zp;
                *zp = *z;
                *z = nv;
                *v = nv;
            }
        } else {
            for (v, yp) in out.iter_mut().zip(y.iter_mut()) {
                *v += bo * *yp;
                *yp = *v;
            }
        }
    }

    /// VJP of [`PmrcCell::output_echo`]: `d` holds `∂L/∂output` from outside and becomes
    /// `∂L/∂tanh(s W_o + b_o)`; `dy` (and `dzp`) carry the echo state's gradient from after the
    /// step to before it.
    fn output_echo_backward(&self, d: &mut [S], dy: &mut [S], dzp: &mut [S]) {
        if !self.output_memory {
            return;
        }
        let bo = self.output_beta;
        if self.reference() {
            // z_t = v_t, zp_t = z_{t−1}, v_t = q_t + β_o zp_{t−1}.
            for ((dv, dz), dzp) in d.iter_mut().zip(dy.iter_mut()).zip(dzp.iter_mut()) {
                *dv += *dz;
                *dz = *dzp;
                *dzp = bo * *dv;
            }
        } else {
            for (dv, dyp) in d.iter_mut().zip(dy.iter_mut()) {
                *dv += *dyp;
                *dyp = bo * *dv;
            }
        }
    }
}

impl<S: Scalar> Cell<S> for PmrcCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        let mut l = Layout::new().with("w_h", &[i, h]).with("b_h", &[h]);
        if self.recurrent {
            l.push("u_r", &[h, h]);
        }
        if self.gates {
            l.push("w_g", &[i, h]);
            l.push("u_g", &[h, h]);
            l.push("b_g", &[h]);
            l.push("w_c", &[i, h]);
            l.push("b_c", &[h]);
        }
        l.with("w_o", &[h, o]).with("b_o", &[o])
    }

    fn state_layout(&self) -> Layout {
        let (h, o) = (self.hidden, self.dims.output);
        let mut l = Layout::new().with("m", &[h]).with("s", &[h]);
        if self.reference() {
            l.push("p", &[h]);
            if self.output_memory {
                l.push("z", &[o]);
                l.push("zp", &[o]);
            }
        } else if self.output_memory {
            l.push("y", &[o]);
        }
        l
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // Glorot-uniform input and output matrices, the reference's U(±sqrt(1/H)) for the
        // hidden-to-hidden ones (spectral radius ≈ 0.58), zero biases.
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        let glorot_in = init::glorot_limit(i, h);
        let recur = (1.0 / h as f64).sqrt();
        let mut draws = vec![(self.idx.w_h, glorot_in)];
        if let Some(u) = self.idx.u_r {
            draws.push((u, recur));
        }
        if let Some(g) = self.idx.gates {
            draws.extend([(g.w_g, glorot_in), (g.u_g, recur), (g.w_c, glorot_in)]);
        }
        draws.push((self.idx.w_o, init::glorot_limit(h, o)));
        for (idx, lim) in draws {
            init::uniform(rng, params.slice_mut(idx), lim);
        }
    }

    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>,
    ) {
        let (b, h, o) = (x.nrows(), self.hidden, self.dims.output);
        let bh = b * h;
        scratch.buf.resize(3 * bh, S::zero());
        scratch.y.resize(b * o, S::zero());
        let st = self.parts(state.data_mut(), b);
        let (a, rest) = scratch.buf.split_at_mut(bh);
        let (g, rest) = rest.split_at_mut(bh);
        let c = &mut rest[..bh];
        a.fill(S::zero());
        linear::accumulate(x, params.mat(self.idx.w_h), mat_mut(a, b, h));
        if let Some(gi) = self.idx.gates {
            g.fill(S::zero());
            linear::accumulate(x, params.mat(gi.w_g), mat_mut(g, b, h));
            let bc = Some(params.vec(gi.b_c));
            linear::forward(x, params.mat(gi.w_c), bc, mat_mut(c, b, h));
        }
        if self.reference() {
            if self.gates {
                S::tanh_inplace(c);
            }
            self.reference_core(params, a, g, c, st.m, st.s, st.p);
            for ((&n, p), s) in a.iter().zip(st.p.iter_mut()).zip(st.s.iter_mut()) {
                let out = n + self.beta * *p;
                *p = *s;
                *s = out;
            }
        } else {
            if let Some(u) = self.idx.u_r {
                linear::accumulate(mat(st.s, b, h), params.mat(u), mat_mut(a, b, h));
            }
            if let Some(gi) = self.idx.gates {
                linear::accumulate(mat(st.m, b, h), params.mat(gi.u_g), mat_mut(g, b, h));
            }
            self.design_pre(params, a, g, st.m);
            // One pass of the tanh kernel over [a | g/2 | c] (contiguous in the scratch).
            let used = if self.gates { 3 * bh } else { bh };
            S::tanh_inplace(&mut scratch.buf[..used]);
            let (a, rest) = scratch.buf.split_at_mut(bh);
            let (g, rest) = rest.split_at_mut(bh);
            self.design_post(a, g, &rest[..bh], st.m, st.s);
        }
        let out = &mut scratch.y;
        linear::forward(
            mat(st.s, b, h),
            params.mat(self.idx.w_o),
            Some(params.vec(self.idx.b_o)),
            mat_mut(out, b, o),
        );
        S::tanh_inplace(out);
        self.output_echo(out, st.y, st.zp);
        y.assign(&mat(out, b, o));
    }

    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        let (t, b, i) = xs.dim();
        let (h, o) = (self.hidden, self.dims.output);
        let (rows, bh, bo) = (t * b, b * h, b * o);
        let lag = self.lag();
        let reference = self.reference();
        let one = S::one();
        let mut local = Tape::default();
        let tape = tape.unwrap_or(&mut local);
        tape.steps = t;
        tape.batch = b;
        let gated_rows = if self.gates { rows * h } else { 0 };
        for (buf, len) in [
            (&mut tape.n, rows * h),
            (&mut tape.g, gated_rows),
            (&mut tape.c, gated_rows),
            (&mut tape.s, (t + lag) * bh),
            (&mut tape.m, (t + 1) * bh),
            (&mut tape.z, rows * o),
            (&mut tape.y, rows * o),
        ] {
            zeroed(buf, len);
        }
        tape.x.clear();
        tape.x.extend(xs.iter().copied());
        // Every input projection of the window at once; only the recurrence is sequential.
        let xm = mat(&tape.x, rows, i);
        let zero = S::zero();
        let nm = &mut mat_mut(&mut tape.n, rows, h);
        general_mat_mul(one, &xm, &params.mat(self.idx.w_h), zero, nm);
        if let Some(gi) = self.idx.gates {
            let gm = &mut mat_mut(&mut tape.g, rows, h);
            general_mat_mul(one, &xm, &params.mat(gi.w_g), zero, gm);
            let bc = Some(params.vec(gi.b_c));
            linear::forward(xm, params.mat(gi.w_c), bc, mat_mut(&mut tape.c, rows, h));
            S::tanh_inplace(&mut tape.c);
        }
        {
            let st = self.parts(state.data_mut(), b);
            if reference {
                tape.s[..bh].copy_from_slice(st.p);
                tape.s[bh..2 * bh].copy_from_slice(st.s);
            } else {
                tape.s[..bh].copy_from_slice(st.s);
            }
            tape.m[..bh].copy_from_slice(st.m);
        }
        for k in 0..t {
            let r = k * bh..(k + 1) * bh;
            let (m_old, m_new) = tape.m.split_at_mut((k + 1) * bh);
            let m_prev = &m_old[k * bh..];
            let m_next = &mut m_new[..bh];
            m_next.copy_from_slice(m_prev);
            let (s_old, s_new) = tape.s.split_at_mut((k + lag) * bh);
            let s_prev = &s_old[(k + lag - 1) * bh..];
            let s_next = &mut s_new[..bh];
            let a = &mut tape.n[r.clone()];
            let (g, c): (&mut [S], &[S]) = if self.gates {
                (&mut tape.g[r.clone()], &tape.c[r])
            } else {
                (&mut [], &[])
            };
            if reference {
                let p_prev = &s_old[k * bh..(k + 1) * bh];
                self.reference_core(params, a, g, c, m_next, s_prev, p_prev);
                for j in 0..bh {
                    s_next[j] = a[j] + self.beta * p_prev[j];
                }
            } else {
                if let Some(u) = self.idx.u_r {
                    linear::accumulate(mat(s_prev, b, h), params.mat(u), mat_mut(a, b, h));
                }
                if let Some(gi) = self.idx.gates {
                    linear::accumulate(mat(m_prev, b, h), params.mat(gi.u_g), mat_mut(g, b, h));
                }
                s_next.copy_from_slice(s_prev);
                self.design_pre(params, a, g, m_prev);
                S::tanh_inplace(a);
                S::tanh_inplace(g);
                self.design_post(a, g, c, m_next, s_next);
            }
        }
        let st = self.parts(state.data_mut(), b);
        st.m.copy_from_slice(&tape.m[t * bh..]);
        st.s.copy_from_slice(&tape.s[(t + lag - 1) * bh..]);
        if reference {
            st.p.copy_from_slice(&tape.s[t * bh..(t + 1) * bh]);
        }
        // The output layer for every step at once, then its (cheap, sequential) echo.
        linear::forward(
            mat(&tape.s[lag * bh..], rows, h),
            params.mat(self.idx.w_o),
            Some(params.vec(self.idx.b_o)),
            mat_mut(&mut tape.z, rows, o),
        );
        S::tanh_inplace(&mut tape.z);
        tape.y.copy_from_slice(&tape.z);
        for yk in tape.y.chunks_exact_mut(bo) {
            self.output_echo(yk, st.y, st.zp);
        }
        ys.assign(&ArrayView3::from_shape((t, b, o), &tape.y).expect("sized above"));
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
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        let (rows, bh, bo) = (t * b, b * h, b * o);
        let lag = self.lag();
        let reference = self.reference();
        let (one, zero) = (S::one(), S::zero());
        let dst = self.parts(dstate.data_mut(), b);

        // Output echo, backwards in time (O wide), then dz = ∂L/∂(tanh output) ⊙ (1 − z²).
        let mut dz: Vec<S> = dys.iter().copied().collect();
        for dk in dz.chunks_exact_mut(bo).rev() {
            self.output_echo_backward(dk, dst.y, dst.zp);
        }
        for (d, &z) in dz.iter_mut().zip(&tape.z) {
            *d *= one - z * z;
        }
        let dz_m = mat(&dz, rows, o);
        let mut dse = vec![zero; rows * h];
        linear::backward(
            mat(&tape.s[lag * bh..], rows, h),
            params.mat(self.idx.w_o),
            dz_m,
            grads.mat_mut(self.idx.w_o),
            None,
            Some((mat_mut(&mut dse, rows, h), false)),
        );
        add_col_sums(grads.slice_mut(self.idx.b_o), &dz);

        // The recurrence, backwards in time.
        let gated_rows = if self.gates { rows * h } else { 0 };
        let mut da = vec![zero; rows * h];
        let mut dgp = vec![zero; gated_rows];
        let mut dcp = vec![zero; gated_rows];
        let mut ds = dst.s.to_vec();
        let mut dm = dst.m.to_vec();
        let mut dp = dst.p.to_vec();
        let (mut ds2, mut dm2, mut dp2) = (vec![zero; bh], vec![zero; bh], vec![zero; dp.len()]);
        let keep = one - self.alpha;
        for k in (0..t).rev() {
            let r = k * bh..(k + 1) * bh;
            let (n_t, dse_t) = (&tape.n[r.clone()], &dse[r.clone()]);
            let m_prev = &tape.m[r.clone()];
            let da_t = &mut da[r.clone()];
            for j in 0..bh {
                let st = dse_t[j] + ds[j];
                let n = n_t[j];
                let dn = if self.gates {
                    st
                } else {
                    st + self.alpha * dm[j]
                };
                da_t[j] = dn * (one - n * n);
                if reference {
                    // s_t = n_t + β p_{t−1}; p_t = s_{t−1}.
                    dp2[j] = self.beta * st;
                    ds2[j] = dp[j];
                } else {
                    ds2[j] = self.beta * st;
                }
            }
            if let Some(u) = self.idx.u_r {
                if reference {
                    let u = params.slice(u);
                    for ((dar, dsr), dpr) in da_t
                        .chunks_exact(h)
                        .zip(ds2.chunks_exact_mut(h))
                        .zip(dp2.chunks_exact_mut(h))
                    {
                        gs_backward(u, dar, dsr, dpr);
                    }
                } else {
                    linear::accumulate(mat(da_t, b, h), params.mat(u).t(), mat_mut(&mut ds2, b, h));
                }
            }
            match self.idx.gates {
                Some(gi) => {
                    let (g_t, c_t) = (&tape.g[r.clone()], &tape.c[r.clone()]);
                    let (dgp_t, dcp_t) = (&mut dgp[r.clone()], &mut dcp[r]);
                    if reference {
                        let u = params.slice(gi.u_g);
                        for row in 0..b {
                            let q = row * h..(row + 1) * h;
                            gate_backward(
                                u,
                                &g_t[q.clone()],
                                &c_t[q.clone()],
                                &m_prev[q.clone()],
                                &dm[q.clone()],
                                &mut dgp_t[q.clone()],
                                &mut dcp_t[q.clone()],
                                &mut dm2[q],
                            );
                        }
                    } else {
                        for j in 0..bh {
                            let (g, c, dmc) = (g_t[j], c_t[j], dm[j]);
                            dgp_t[j] = dmc * (c - m_prev[j]) * g * (one - g);
                            dcp_t[j] = dmc * g * (one - c * c);
                            dm2[j] = dmc * (one - g);
                        }
                        linear::accumulate(
                            mat(dgp_t, b, h),
                            params.mat(gi.u_g).t(),
                            mat_mut(&mut dm2, b, h),
                        );
                    }
                    for (d, &a) in dm2.iter_mut().zip(da_t.iter()) {
                        *d += a;
                    }
                }
                None => {
                    for j in 0..bh {
                        dm2[j] = keep * dm[j] + da_t[j];
                    }
                }
            }
            std::mem::swap(&mut ds, &mut ds2);
            std::mem::swap(&mut dm, &mut dm2);
            std::mem::swap(&mut dp, &mut dp2);
        }
        dst.s.copy_from_slice(&ds);
        dst.m.copy_from_slice(&dm);
        dst.p.copy_from_slice(&dp);

        // Weight gradients over every step at once.
        let xm = mat(&tape.x, rows, i);
        let da_m = mat(&da, rows, h);
        general_mat_mul(one, &xm.t(), &da_m, one, &mut grads.mat_mut(self.idx.w_h));
        add_col_sums(grads.slice_mut(self.idx.b_h), &da);
        // In reference mode a square matrix splits: unit i → j (i < j) reads the newer
        // vector, i ≥ j the older one.
        let split = |grads: &mut Tensors<S>, w: usize, newer: &[S], older: &[S], d: &[S]| {
            let dm = mat(d, rows, h);
            let mut up = vec![zero; h * h];
            let mut lo = vec![zero; h * h];
            general_mat_mul(
                one,
                &mat(newer, rows, h).t(),
                &dm,
                zero,
                &mut mat_mut(&mut up, h, h),
            );
            general_mat_mul(
                one,
                &mat(older, rows, h).t(),
                &dm,
                zero,
                &mut mat_mut(&mut lo, h, h),
            );
            add_split(grads.slice_mut(w), &up, &lo, h);
        };
        if let Some(u) = self.idx.u_r {
            if reference {
                split(grads, u, &tape.s[bh..(t + 1) * bh], &tape.s[..t * bh], &da);
            } else {
                let sp = mat(&tape.s[..t * bh], rows, h);
                general_mat_mul(one, &sp.t(), &da_m, one, &mut grads.mat_mut(u));
            }
        }
        if let Some(gi) = self.idx.gates {
            let dgp_m = mat(&dgp, rows, h);
            let dcp_m = mat(&dcp, rows, h);
            general_mat_mul(one, &xm.t(), &dgp_m, one, &mut grads.mat_mut(gi.w_g));
            general_mat_mul(one, &xm.t(), &dcp_m, one, &mut grads.mat_mut(gi.w_c));
            add_col_sums(grads.slice_mut(gi.b_g), &dgp);
            add_col_sums(grads.slice_mut(gi.b_c), &dcp);
            if reference {
                split(grads, gi.u_g, &tape.m[bh..], &tape.m[..t * bh], &dgp);
            } else {
                let mp = mat(&tape.m[..t * bh], rows, h);
                general_mat_mul(one, &mp.t(), &dgp_m, one, &mut grads.mat_mut(gi.u_g));
            }
        }
        if let Some(dx) = dxs {
            let mut terms = vec![(da_m, params.mat(self.idx.w_h))];
            if let Some(gi) = self.idx.gates {
                terms.push((mat(&dgp, rows, h), params.mat(gi.w_g)));
                terms.push((mat(&dcp, rows, h), params.mat(gi.w_c)));
            }
            linear::backward_inputs(&terms, dx);
        }
    }

    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let h = self.hidden;
        let m = &state.slice(0)[..h];
        let mean_abs_memory = mean_abs(m);
        let mean_gate = match self.idx.gates {
            Some(gi) => {
                // σ(m U_g + b_g): the gate's openness driven by the memory alone.
                let (u, bg) = (params.slice(gi.u_g), params.slice(gi.b_g));
                let mut pre: Vec<f64> = bg.iter().map(|v| v.as_f64()).collect();
                for (row, mv) in u.chunks_exact(h).zip(m) {
                    let mv = mv.as_f64();
                    for (p, w) in pre.iter_mut().zip(row) {
                        *p += mv * w.as_f64();
                    }
                }
                pre.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).sum::<f64>() / h as f64
            }
            None => 0.0,
        };
        vec![
            Diagnostic {
                name: "mean_gate",
                value: mean_gate,
            },
            Diagnostic {
                name: "mean_abs_memory",
                value: mean_abs_memory,
            },
        ]
    }
}
