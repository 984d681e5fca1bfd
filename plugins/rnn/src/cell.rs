//! The stacked cell: `layers` LSTM or GRU layers run one after the other over a whole window
//! (layer `k` reads layer `k − 1`'s hidden states), then an affine read-out of the top layer's
//! hidden state, `y_t = h_t W_out + b_out`.

use crate::lstm::{self, Grads, Shape, Weights};
use crate::params::RnnParams;
use crate::tape::{Back, LayerTape, Tape, sized, transpose_into};
use crate::{gru, mat, pair, row};
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};

/// Rows (steps × sequences) per chunk of an inference window: enough that each chunk's input
/// product is a real matrix product, few enough that the chunk's gates stay in L2 beside
/// `W_hh`.
const CHUNK_ROWS: usize = 128;

/// Steps per chunk of an inference window at batch 1 on two threads: each chunk starts the
/// second thread once, so chunks are longer than [`CHUNK_ROWS`].
const PAIR_CHUNK_STEPS: usize = 512;

/// Steps from which a window packs `W_hh` for its products (the copy costs about one step).
const PACK_STEPS: usize = 4;

/// Which recurrence a [`RnnCell`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Long short-term memory: state `(h, c)`, four gates.
    Lstm,
    /// Gated recurrent unit: state `h`, three gates.
    Gru,
}

impl Kind {
    /// Gate blocks per layer (the `G` of the `G·H`-wide weight matrices).
    pub fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
        }
    }

    /// State tensors per layer (`h`, and `c` for the LSTM).
    pub fn carried(self) -> usize {
        match self {
            Kind::Lstm => 2,
            Kind::Gru => 1,
        }
    }
}

/// A stack of LSTM or GRU layers with an affine read-out.
///
/// Parameters, per layer `k`: `w_ih{k}` (`in_k × G·H`), `w_hh{k}` (`H × G·H`), `b_ih{k}`,
/// `b_hh{k}` (`G·H`), gate blocks in PyTorch's order; then `w_out` (`H × output`) and `b_out`.
/// The matrices are PyTorch's transposed (input-major), so each step reads rows. State, per
/// layer: `h{k}` and, for the LSTM, `c{k}`.
#[derive(Clone, Debug)]
pub struct RnnCell {
    kind: Kind,
    hidden: usize,
    layers: usize,
    dims: Dims,
}

impl RnnCell {
    /// The cell for these (validated) hyper-parameters and widths.
    pub fn new(kind: Kind, p: &RnnParams, dims: Dims) -> Self {
        RnnCell {
            kind,
            hidden: p.hidden,
            layers: p.layers,
            dims,
        }
    }

    /// Which recurrence it runs.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn n_in(&self, k: usize) -> usize {
        if k == 0 { self.dims.input } else { self.hidden }
    }

    fn shape(&self, k: usize, t: usize, b: usize) -> Shape {
        Shape {
            t,
            b,
            n_in: self.n_in(k),
            h: self.hidden,
        }
    }

    fn w_out(&self) -> usize {
        4 * self.layers
    }

    fn weights<'a, S: Scalar>(
        &self,
        p: &'a Tensors<S>,
        k: usize,
        w_hh_packed: Option<&'a [S]>,
        threads: Option<usize>,
    ) -> Weights<'a, S> {
        // At batch 1 (`threads` given), the packed copy is the LSTM's unit layout.
        let (w_hh_packed, units) = match (w_hh_packed, threads) {
            (Some(wp), Some(n)) => (None, Some((wp, n))),
            (wp, _) => (wp, None),
        };
        Weights {
            w_ih: p.slice(4 * k),
            w_hh: p.slice(4 * k + 1),
            b_ih: p.slice(4 * k + 2),
            b_hh: p.slice(4 * k + 3),
            w_hh_packed,
            units,
        }
    }

    /// Runs `x` (`T·B × input`, `T = tape.steps`, `B = tape.batch`) through every layer from
    /// `state`, leaves the final state in `state` and the outputs in `y` (`T·B × output`).
    ///
    /// With `record`, the window is one chunk and the tape keeps every layer's record of it
    /// (and the transposed weights the backward pass reads). Without, the window runs in
    /// chunks of about [`CHUNK_ROWS`] rows through buffers of that size, each chunk layer by
    /// layer (one input product per layer and chunk), so inference over a long window needs
    /// no window-sized buffers; chunking changes no bit (see [`mat`]).
    fn run<S: Scalar>(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        x: &[S],
        y: &mut [S],
        tape: &mut Tape<S>,
        record: bool,
    ) {
        let (t, b) = (tape.steps, tape.batch);
        let (h, bh, c, o) = (
            self.hidden,
            b * self.hidden,
            self.kind.carried(),
            self.dims.output,
        );
        let (layers, packed) = (&mut tape.layers, &mut tape.packed);
        layers.resize_with(self.layers, LayerTape::default);
        let gh = self.kind.gates() * h;
        let pack = t >= PACK_STEPS;
        // The LSTM's batch-1 steps: `W_hh` packed by units, and one thread or two.
        let single = (pack && b == 1 && self.kind == Kind::Lstm).then(|| pair::threads(b, h));
        if pack {
            packed.resize_with(self.layers, Vec::new);
            for (k, wp) in packed.iter_mut().enumerate() {
                let w_hh = p.slice(4 * k + 1);
                match single {
                    Some(_) => row::pack_units(wp, w_hh, h),
                    None => mat::pack(wp, h, gh, |i, j| w_hh[i * gh + j]),
                }
            }
        }
        let chunk = if record {
            t
        } else if single == Some(2) {
            PAIR_CHUNK_STEPS
        } else {
            (CHUNK_ROWS / b.max(1)).max(1)
        };
        let (w_out, b_out) = (p.slice(self.w_out()), p.slice(self.w_out() + 1));
        let n_in = self.dims.input;
        let chunk = chunk.max(1);
        // An empty window still runs once (with no rows), so that a recorded tape holds the
        // initial state the backward pass starts from.
        let mut s0 = 0;
        loop {
            let n = chunk.min(t - s0);
            for k in 0..self.layers {
                let (below, rest) = layers.split_at_mut(k);
                let lt = &mut rest[0];
                let xk: &[S] = if k == 0 {
                    &x[s0 * b * n_in..(s0 + n) * b * n_in]
                } else {
                    &below[k - 1].hs[bh..]
                };
                sized(&mut lt.hs, (n + 1) * bh);
                lt.hs[..bh].copy_from_slice(state.slice(c * k));
                let sh = self.shape(k, n, b);
                let w = self.weights(p, k, pack.then(|| &packed[k][..]), single);
                match self.kind {
                    Kind::Lstm => {
                        sized(&mut lt.cs, (n + 1) * bh);
                        lt.cs[..bh].copy_from_slice(state.slice(c * k + 1));
                        lstm::forward(xk, sh, &w, lt);
                        state.slice_mut(c * k + 1).copy_from_slice(&lt.cs[n * bh..]);
                    }
                    Kind::Gru => gru::forward(xk, sh, &w, lt),
                }
                state.slice_mut(c * k).copy_from_slice(&lt.hs[n * bh..]);
            }
            let top = &layers[self.layers - 1].hs[bh..];
            let yc = &mut y[s0 * b * o..(s0 + n) * b * o];
            mat::mul(yc, top, w_out, n * b, h, o);
            mat::add_rows(yc, b_out);
            s0 += n;
            if s0 >= t {
                break;
            }
        }
        if record {
            for (k, lt) in layers.iter_mut().enumerate() {
                let w = self.weights(p, k, None, None);
                mat::pack(&mut lt.w_hh_t, gh, h, |i, j| w.w_hh[j * gh + i]);
                transpose_into(&mut lt.w_ih_t, w.w_ih, self.n_in(k), gh);
            }
            transpose_into(&mut tape.w_out_t, w_out, h, o);
        }
    }

    fn run_views<S: Scalar>(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
        record: bool,
    ) {
        (tape.steps, tape.batch) = (xs.dim().0, xs.dim().1);
        // The backward pass reads layer 0's inputs from the tape; inference reads the caller's
        // buffer when it is contiguous.
        let mut x = std::mem::take(&mut tape.x);
        let direct = match xs.as_slice() {
            Some(v) if !record => Some(v),
            _ => {
                x.clear();
                match xs.as_slice() {
                    Some(v) => x.extend_from_slice(v),
                    None => x.extend(xs.iter().copied()),
                }
                None
            }
        };
        let xv = direct.unwrap_or(&x);
        match ys.as_slice_mut() {
            Some(y) => self.run(p, state, xv, y, tape, record),
            None => {
                let mut y = vec![S::zero(); ys.len()];
                self.run(p, state, xv, &mut y, tape, record);
                ys.iter_mut().zip(y).for_each(|(d, v)| *d = v);
            }
        }
        tape.x = x;
    }
}

/// The gradients of layer `k`'s four tensors (consecutive in the layout), as disjoint slices.
fn layer_grads<S: Scalar>(grads: &mut Tensors<S>, k: usize) -> Grads<'_, S> {
    let e = &grads.layout().entries()[4 * k..4 * k + 4];
    let (start, lens) = (e[0].offset, [e[0].len(), e[1].len(), e[2].len()]);
    let rest = &mut grads.data_mut()[start..];
    let (w_ih, rest) = rest.split_at_mut(lens[0]);
    let (w_hh, rest) = rest.split_at_mut(lens[1]);
    let (b_ih, rest) = rest.split_at_mut(lens[2]);
    Grads {
        w_ih,
        w_hh,
        b_ih,
        b_hh: &mut rest[..lens[2]],
    }
}

impl<S: Scalar> Cell<S> for RnnCell {
    type Tape = Tape<S>;
    type Scratch = Tape<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let gh = self.kind.gates() * self.hidden;
        let mut l = Layout::new();
        for k in 0..self.layers {
            l.push(format!("w_ih{k}"), &[self.n_in(k), gh]);
            l.push(format!("w_hh{k}"), &[self.hidden, gh]);
            l.push(format!("b_ih{k}"), &[gh]);
            l.push(format!("b_hh{k}"), &[gh]);
        }
        l.with("w_out", &[self.hidden, self.dims.output])
            .with("b_out", &[self.dims.output])
    }

    fn state_layout(&self) -> Layout {
        let mut l = Layout::new();
        for k in 0..self.layers {
            l.push(format!("h{k}"), &[self.hidden]);
            if self.kind == Kind::Lstm {
                l.push(format!("c{k}"), &[self.hidden]);
            }
        }
        l
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // PyTorch's initialisation: every recurrent weight and bias from U(−1/√H, 1/√H).
        let lim = 1.0 / (self.hidden as f64).sqrt();
        for i in 0..4 * self.layers {
            init::uniform(rng, params.slice_mut(i), lim);
        }
        let out = init::glorot_limit(self.hidden, self.dims.output);
        init::uniform(rng, params.slice_mut(self.w_out()), out);
    }

    fn step(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        scratch: &mut Tape<S>,
    ) {
        let (xs, ys) = (x.insert_axis(Axis(0)), y.view_mut().insert_axis(Axis(0)));
        self.run_views(p, state, xs, ys, scratch, false);
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
            Some(tape) => self.run_views(p, state, xs, ys, tape, true),
            None => self.run_views(p, state, xs, ys, &mut Tape::default(), false),
        }
    }

    fn backward_window(
        &self,
        _p: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b) = (tape.steps, tape.batch);
        let (h, rows, o, c) = (self.hidden, t * b, self.dims.output, self.kind.carried());
        let mut guard = tape.back.lock().unwrap_or_else(|e| e.into_inner());
        let Back {
            dg,
            dgh,
            dh_above,
            dh_below,
            dys: dy,
            dxs: dx_buf,
        } = &mut *guard;
        dy.clear();
        match dys.as_slice() {
            Some(v) => dy.extend_from_slice(v),
            None => dy.extend(dys.iter().copied()),
        }
        // The read-out: its weight gradients, and ∂L/∂h of the top layer.
        let top = &tape.layers[self.layers - 1].hs[b * h..];
        let wo = self.w_out();
        mat::mul_t_acc(grads.slice_mut(wo), top, dy, rows, h, o);
        mat::sum_rows_acc(grads.slice_mut(wo + 1), dy);
        sized(dh_above, rows * h);
        mat::mul_any(dh_above, dy, &tape.w_out_t, rows, o, h);
        let mut dxs = dxs;
        for k in (0..self.layers).rev() {
            let lt = &tape.layers[k];
            let sh = self.shape(k, t, b);
            let x: &[S] = if k == 0 {
                &tape.x
            } else {
                &tape.layers[k - 1].hs[b * h..]
            };
            // ∂L/∂x of this layer: the layer below's ∂L/∂h, or the caller's input gradient.
            let dx: Option<&mut [S]> = if k > 0 {
                sized(dh_below, rows * h);
                Some(dh_below)
            } else if let Some(d) = dxs.as_mut() {
                match d.as_slice_mut() {
                    Some(s) => Some(s),
                    None => {
                        sized(dx_buf, rows * sh.n_in);
                        Some(dx_buf)
                    }
                }
            } else {
                None
            };
            let mut dh = dstate.slice(c * k).to_vec();
            let g = layer_grads(grads, k);
            match self.kind {
                Kind::Lstm => {
                    let mut dc = dstate.slice(c * k + 1).to_vec();
                    let threads = pair::threads(b, h);
                    lstm::backward(x, sh, lt, dh_above, &mut dh, &mut dc, dg, g, dx, threads);
                    dstate.slice_mut(c * k + 1).copy_from_slice(&dc);
                }
                Kind::Gru => gru::backward(x, sh, lt, dh_above, &mut dh, dg, dgh, g, dx),
            }
            dstate.slice_mut(c * k).copy_from_slice(&dh);
            if k > 0 {
                std::mem::swap(dh_above, dh_below);
            }
        }
        if let Some(mut d) = dxs
            && d.as_slice_mut().is_none()
        {
            d.iter_mut().zip(dx_buf.iter()).for_each(|(d, v)| *d = *v);
        }
    }

    fn diagnostics(&self, _p: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let top = self.kind.carried() * (self.layers - 1);
        vec![Diagnostic {
            name: "mean_abs_h",
            value: mean_abs(&state.slice(top)[..self.hidden]),
        }]
    }
}
