//! Causal softmax attention over a key–value cache, one head:
//!
//! ```text
//! q_t, k_t, v_t = x_t W_q, x_t W_k, x_t W_v
//! a_t = softmax_u(q_t·k_u / √d + m_u)  over the cached steps u (the current one included)
//! y_t = (Σ_u a_t,u v_u) W_o + b_o
//! ```
//!
//! The cache is the state. Without a window it keeps every step (`k`, `v`: `n × d` after `n`
//! steps) — a transformer's cache, which grows with the stream. With a window `w` it keeps the
//! last `w` steps in `w` slots, oldest first, and each slot's log-weight `m_u`: 0 for a
//! filled slot, [`EMPTY`] for one not yet filled (its weight `exp(m_u + …)` underflows to
//! exactly 0), so a fresh cache attends only to what it has seen.

use mnnn_core::cell::{Cell, Diagnostic, Dims};
use mnnn_core::kernels::gemm;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s};

/// The log-weight of an empty slot of a windowed cache.
pub const EMPTY: f64 = -1.0e4;

const W_Q: usize = 0;
const W_K: usize = 1;
const W_V: usize = 2;
const W_O: usize = 3;
const B_O: usize = 4;
const K: usize = 0;
const V: usize = 1;
/// The windowed cache's slot log-weights.
const M: usize = 2;
/// The growing cache's count of steps seen.
const SEEN: usize = 2;

/// One attention head over a growing (`window: None`) or windowed cache.
#[derive(Clone, Debug)]
pub struct AttnCell {
    dim: usize,
    window: Option<usize>,
    dims: Dims,
}

/// What a window records for the backward pass.
#[derive(Debug, Default)]
pub struct Tape<S> {
    steps: usize,
    batch: usize,
    cached: usize,
    x: Array2<S>,
    q: Array2<S>,
    o: Array2<S>,
    /// Per sequence: the cache before the window followed by the window's keys, values and
    /// log-weights, `(n0 + T) × d`.
    kall: Vec<Array2<S>>,
    vall: Vec<Array2<S>>,
    mall: Vec<Vec<S>>,
    /// Per sequence: every step's attention weights, one after the other.
    attn: Vec<Vec<S>>,
}

fn mul<S: Scalar>(a: ArrayView2<S>, b: ArrayView2<S>) -> Array2<S> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm(S::one(), a, b, S::zero(), c.view_mut());
    c
}

fn mul_acc<S: Scalar>(a: ArrayView2<S>, b: ArrayView2<S>, c: ArrayViewMut2<S>) {
    gemm(S::one(), a, b, S::one(), c);
}

impl AttnCell {
    /// The cell; `window: None` keeps every step.
    pub fn new(dim: usize, window: Option<usize>, dims: Dims) -> Self {
        AttnCell { dim, window, dims }
    }

    /// The state layout holding `n` cached steps.
    fn layout_with(&self, n: usize) -> Layout {
        let l = Layout::new()
            .with("k", &[n, self.dim])
            .with("v", &[n, self.dim]);
        // The growing cache also counts its steps, so that even a fresh cache is a state (a
        // model with no state at all is run as memoryless rows).
        match self.window {
            Some(_) => l.with("m", &[n]),
            None => l.with("seen", &[1]),
        }
    }

    /// Sequences and cached steps of a batched state.
    fn extent<S: Scalar>(state: &Tensors<S>) -> (usize, usize) {
        let sh = &state.layout().entries()[K].shape;
        (sh[0], sh[1])
    }

    /// A fresh batched state for `b` sequences.
    fn fresh<S: Scalar>(&self, b: usize) -> Tensors<S> {
        let mut st = Tensors::zeros(self.layout_with(self.window.unwrap_or(0)).batched(b));
        if self.window.is_some() {
            st.slice_mut(M).fill(S::from_f64(EMPTY));
        }
        st
    }

    /// Cached steps after a window of `t` steps from `n0`.
    fn kept(&self, n0: usize, t: usize) -> usize {
        self.window.unwrap_or(n0 + t)
    }

    /// The first cache row step `s` of a window attends to (rows are the cache before the
    /// window, then the window's steps).
    fn first(&self, s: usize) -> usize {
        match self.window {
            Some(_) => s + 1,
            None => 0,
        }
    }

    fn run<S: Scalar>(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
    ) {
        let (t, b, i) = xs.dim();
        let (d, (_, n0)) = (self.dim, Self::extent(state));
        let x = Array2::from_shape_vec((t * b, i), xs.iter().copied().collect()).expect("sizes");
        let q = mul(x.view(), p.mat(W_Q));
        let k = mul(x.view(), p.mat(W_K));
        let v = mul(x.view(), p.mat(W_V));
        let scale = S::from_f64(1.0 / (d as f64).sqrt());
        let n = self.kept(n0, t);
        let mut next = Tensors::zeros(self.layout_with(n).batched(b));
        let mut o = Array2::zeros((t * b, d));
        tape.kall.clear();
        tape.vall.clear();
        tape.mall.clear();
        tape.attn.clear();
        for j in 0..b {
            let mut kall = Array2::zeros((n0 + t, d));
            let mut vall = Array2::zeros((n0 + t, d));
            let mut mall = vec![S::zero(); n0 + t];
            kall.slice_mut(s![..n0, ..])
                .assign(&state.view(K).index_axis(Axis(0), j));
            vall.slice_mut(s![..n0, ..])
                .assign(&state.view(V).index_axis(Axis(0), j));
            if self.window.is_some() {
                mall[..n0].copy_from_slice(&state.slice(M)[j * n0..(j + 1) * n0]);
            }
            for s in 0..t {
                kall.row_mut(n0 + s).assign(&k.row(s * b + j));
                vall.row_mut(n0 + s).assign(&v.row(s * b + j));
            }
            let mut attn = Vec::new();
            for s in 0..t {
                let (lo, hi) = (self.first(s), n0 + s + 1);
                let qr = q.row(s * b + j);
                let scores: Vec<S> = (lo..hi)
                    .map(|u| qr.dot(&kall.row(u)) * scale + mall[u])
                    .collect();
                let max = scores.iter().copied().fold(S::neg_infinity(), S::max);
                let e: Vec<S> = scores.iter().map(|sc| (*sc - max).exp()).collect();
                let sum = e.iter().copied().fold(S::zero(), |a, b| a + b);
                let mut orow = o.row_mut(s * b + j);
                for (u, ev) in (lo..hi).zip(&e) {
                    let a = *ev / sum;
                    orow.scaled_add(a, &vall.row(u));
                    attn.push(a);
                }
            }
            let from = n0 + t - n;
            next.slice_mut(K)[j * n * d..(j + 1) * n * d].copy_from_slice(
                kall.slice(s![from.., ..])
                    .as_standard_layout()
                    .as_slice()
                    .expect("rows"),
            );
            next.slice_mut(V)[j * n * d..(j + 1) * n * d].copy_from_slice(
                vall.slice(s![from.., ..])
                    .as_standard_layout()
                    .as_slice()
                    .expect("rows"),
            );
            match self.window {
                Some(_) => next.slice_mut(M)[j * n..(j + 1) * n].copy_from_slice(&mall[from..]),
                None => next.slice_mut(SEEN)[j] = state.slice(SEEN)[j] + S::from_f64(t as f64),
            }
            tape.kall.push(kall);
            tape.vall.push(vall);
            tape.mall.push(mall);
            tape.attn.push(attn);
        }
        let mut y = mul(o.view(), p.mat(W_O));
        for mut row in y.rows_mut() {
            row += &p.vec(B_O);
        }
        ys.assign(
            &y.into_shape_with_order((t, b, self.dims.output))
                .expect("sizes"),
        );
        *state = next;
        (tape.steps, tape.batch, tape.cached) = (t, b, n0);
        (tape.x, tape.q, tape.o) = (x, q, o);
    }
}

impl<S: Scalar> Cell<S> for AttnCell {
    type Tape = Tape<S>;
    type Scratch = Tape<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, d, o) = (self.dims.input, self.dim, self.dims.output);
        Layout::new()
            .with("w_q", &[i, d])
            .with("w_k", &[i, d])
            .with("w_v", &[i, d])
            .with("w_o", &[d, o])
            .with("b_o", &[o])
    }

    fn state_layout(&self) -> Layout {
        self.layout_with(self.window.unwrap_or(0))
    }

    fn accepts_grown_state(&self, layout: &Layout) -> bool {
        // Only the growing cache takes other sizes: keys and values of the same length.
        let e = layout.entries();
        self.window.is_none()
            && e.len() == 3
            && e[0].name == "k"
            && e[1].name == "v"
            && e[0].shape.len() == 3
            && e[0].shape == e[1].shape
            && e[0].shape[0] == 1
            && e[0].shape[2] == self.dim
            && e[2].name == "seen"
            && e[2].shape == [1, 1]
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        let lim = init::glorot_limit(self.dims.input, self.dim);
        for i in [W_Q, W_K, W_V] {
            init::uniform(rng, params.slice_mut(i), lim);
        }
        let lim = init::glorot_limit(self.dim, self.dims.output);
        init::uniform(rng, params.slice_mut(W_O), lim);
    }

    fn reset_state(&self, _params: &Tensors<S>, state: &mut Tensors<S>) {
        *state = self.fresh(Self::extent(state).0);
    }

    fn step(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        scratch: &mut Tape<S>,
    ) {
        let ys = y.view_mut().insert_axis(Axis(0));
        self.run(p, state, x.insert_axis(Axis(0)), ys, scratch);
    }

    fn forward_window(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        match tape {
            Some(tape) => self.run(p, state, xs, ys, tape),
            None => self.run(p, state, xs, ys, &mut Tape::default()),
        }
    }

    fn backward_window(
        &self,
        p: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b, n0, d) = (tape.steps, tape.batch, tape.cached, self.dim);
        let scale = S::from_f64(1.0 / (d as f64).sqrt());
        let dy = Array2::from_shape_vec((t * b, self.dims.output), dys.iter().copied().collect())
            .expect("sizes");
        mul_acc(tape.o.t(), dy.view(), grads.mat_mut(W_O));
        grads
            .vec_mut(B_O)
            .scaled_add(S::one(), &dy.sum_axis(Axis(0)));
        let dout = mul(dy.view(), p.mat(W_O).t());
        let (mut dq, mut dk, mut dv) = (
            Array2::zeros((t * b, d)),
            Array2::zeros((t * b, d)),
            Array2::zeros((t * b, d)),
        );
        let n = self.kept(n0, t);
        // ∂L/∂state after the window, when the caller has one (a truncated window's is zero
        // and may come in another shape).
        let after = (dstate.layout() == &self.layout_with(n).batched(b)).then_some(&*dstate);
        let mut before = Tensors::zeros(self.layout_with(n0).batched(b));
        for j in 0..b {
            let (kall, vall) = (&tape.kall[j], &tape.vall[j]);
            let mut dkall = Array2::<S>::zeros((n0 + t, d));
            let mut dvall = Array2::<S>::zeros((n0 + t, d));
            let mut dmall = vec![S::zero(); n0 + t];
            let from = n0 + t - n;
            if let Some(g) = after {
                dkall
                    .slice_mut(s![from.., ..])
                    .assign(&g.view(K).index_axis(Axis(0), j));
                dvall
                    .slice_mut(s![from.., ..])
                    .assign(&g.view(V).index_axis(Axis(0), j));
                if self.window.is_some() {
                    dmall[from..].copy_from_slice(&g.slice(M)[j * n..(j + 1) * n]);
                }
            }
            let mut off = 0;
            for s in 0..t {
                let (lo, hi) = (self.first(s), n0 + s + 1);
                let a = &tape.attn[j][off..off + hi - lo];
                off += hi - lo;
                let (row, qr) = (dout.row(s * b + j), tape.q.row(s * b + j));
                let da: Vec<S> = (lo..hi).map(|u| row.dot(&vall.row(u))).collect();
                let mean = a
                    .iter()
                    .zip(&da)
                    .fold(S::zero(), |acc, (a, g)| acc + *a * *g);
                let mut dqr = dq.row_mut(s * b + j);
                for (idx, u) in (lo..hi).enumerate() {
                    dvall.row_mut(u).scaled_add(a[idx], &row);
                    let ds = a[idx] * (da[idx] - mean);
                    dqr.scaled_add(ds * scale, &kall.row(u));
                    dkall.row_mut(u).scaled_add(ds * scale, &qr);
                    dmall[u] += ds;
                }
            }
            for s in 0..t {
                dk.row_mut(s * b + j).assign(&dkall.row(n0 + s));
                dv.row_mut(s * b + j).assign(&dvall.row(n0 + s));
            }
            let per = n0 * d;
            before.slice_mut(K)[j * per..(j + 1) * per].copy_from_slice(
                dkall
                    .slice(s![..n0, ..])
                    .as_standard_layout()
                    .as_slice()
                    .expect("rows"),
            );
            before.slice_mut(V)[j * per..(j + 1) * per].copy_from_slice(
                dvall
                    .slice(s![..n0, ..])
                    .as_standard_layout()
                    .as_slice()
                    .expect("rows"),
            );
            if self.window.is_some() {
                before.slice_mut(M)[j * n0..(j + 1) * n0].copy_from_slice(&dmall[..n0]);
            }
        }
        *dstate = before;
        let x = tape.x.view();
        mul_acc(x.t(), dq.view(), grads.mat_mut(W_Q));
        mul_acc(x.t(), dk.view(), grads.mat_mut(W_K));
        mul_acc(x.t(), dv.view(), grads.mat_mut(W_V));
        if let Some(mut dxs) = dxs {
            let mut dx = mul(dq.view(), p.mat(W_Q).t());
            mul_acc(dk.view(), p.mat(W_K).t(), dx.view_mut());
            mul_acc(dv.view(), p.mat(W_V).t(), dx.view_mut());
            dxs.assign(
                &dx.into_shape_with_order((t, b, self.dims.input))
                    .expect("sizes"),
            );
        }
    }

    fn diagnostics(&self, _p: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let (_, n) = Self::extent(state);
        // A window's empty slots do not count: only the steps it attends to.
        let filled = match self.window {
            Some(_) => {
                let half = S::from_f64(EMPTY / 2.0);
                state.slice(M)[..n].iter().filter(|m| **m > half).count()
            }
            None => n,
        };
        vec![Diagnostic {
            name: "cached_steps",
            value: filled as f64,
        }]
    }
}
