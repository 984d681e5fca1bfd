//! The AMRC cell: batched step, windowed forward with a tape, and full-BPTT backward.

use crate::AmrcParams;
use mnnn_core::buf::{mat, mat_mut, split_blocks, zeroed};
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::ops::linear;
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};

const W_H: usize = 0;
const B_H: usize = 1;
const W_O: usize = 2;
const B_O: usize = 3;
const MEM: usize = 0;
const ECHO: usize = 1;

/// The AMRC cell for one scalar type and set of widths.
#[derive(Clone, Debug)]
pub struct AmrcCell<S> {
    dims: Dims,
    hidden: usize,
    pub(crate) alpha: S,
    pub(crate) beta: S,
    /// The reference's lag-2 echo (state `p` holds `s_{t−2}`).
    pub(crate) reference: bool,
}

impl<S: Scalar> AmrcCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &AmrcParams, dims: Dims) -> Self {
        AmrcCell {
            dims,
            hidden: params.hidden,
            alpha: S::from_f64(params.alpha),
            beta: S::from_f64(params.beta),
            reference: params.compat == Compat::Reference,
        }
    }
}

/// Work space of [`AmrcCell::step`].
#[derive(Default, Debug)]
pub struct Scratch<S> {
    a: Vec<S>,
}

/// What the forward window keeps for the backward pass (rows are `t·B + b`).
#[derive(Default, Debug)]
pub struct Tape<S> {
    steps: usize,
    batch: usize,
    x: Vec<S>,
    n: Vec<S>,
    s: Vec<S>,
    y: Vec<S>,
}

impl<S: Scalar> AmrcCell<S> {
    /// The elementwise memory update of one step for a block of rows, given the input
    /// projection `a` (already holding `x W_h`); `a` becomes `n`.
    #[inline]
    /// `p` is empty in design mode; in reference mode it holds `s_{t−2}` and the echo reads it.
    fn update(&self, bh: &[S], a: &mut [S], m: &mut [S], s: &mut [S], p: &mut [S]) {
        let h = self.hidden;
        for (ar, mr) in a.chunks_exact_mut(h).zip(m.chunks_exact(h)) {
            for j in 0..h {
                ar[j] = ar[j] + bh[j] + mr[j];
            }
        }
        S::tanh_inplace(a);
        let keep = S::one() - self.alpha;
        if self.reference {
            for i in 0..a.len() {
                let n = a[i];
                let echo = n + self.beta * p[i];
                p[i] = s[i];
                s[i] = echo;
                m[i] = keep * m[i] + self.alpha * n;
            }
        } else {
            for i in 0..a.len() {
                let n = a[i];
                s[i] = n + self.beta * s[i];
                m[i] = keep * m[i] + self.alpha * n;
            }
        }
    }

    /// `y = tanh(s W_o + b_o)` for a block of rows.
    fn output(&self, params: &Tensors<S>, s: &[S], y: &mut [S]) {
        let (h, o) = (self.hidden, self.dims.output);
        let rows = s.len() / h;
        let (s, w, bo) = (mat(s, rows, h), params.mat(W_O), Some(params.vec(B_O)));
        linear::forward(s, w, bo, mat_mut(y, rows, o));
        S::tanh_inplace(y);
    }
}

impl<S: Scalar> Cell<S> for AmrcCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        Layout::new()
            .with("w_h", &[i, h])
            .with("b_h", &[h])
            .with("w_o", &[h, o])
            .with("b_o", &[o])
    }

    fn state_layout(&self) -> Layout {
        let l = Layout::new()
            .with("m", &[self.hidden])
            .with("s", &[self.hidden]);
        if self.reference {
            l.with("p", &[self.hidden])
        } else {
            l
        }
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // Glorot-uniform weights, zero biases.
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        for (idx, fan_in, fan_out) in [(W_H, i, h), (W_O, h, o)] {
            init::uniform(
                rng,
                params.slice_mut(idx),
                init::glorot_limit(fan_in, fan_out),
            );
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
        zeroed(&mut scratch.a, b * h);
        linear::accumulate(x, params.mat(W_H), mat_mut(&mut scratch.a, b, h));
        let [m, s, p] = split_blocks(state.data_mut(), b * h);
        self.update(params.slice(B_H), &mut scratch.a, m, s, p);
        match y.as_slice_mut() {
            Some(out) => self.output(params, s, out),
            None => {
                let mut out = vec![S::zero(); b * o];
                self.output(params, s, &mut out);
                y.assign(&mat(&out, b, o));
            }
        }
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
        let mut local = Tape::default();
        let tape = tape.unwrap_or(&mut local);
        tape.steps = t;
        tape.batch = b;
        let rows = t * b;
        tape.x.clear();
        tape.x.extend(xs.iter().copied());
        zeroed(&mut tape.n, rows * h);
        zeroed(&mut tape.s, rows * h);
        zeroed(&mut tape.y, rows * o);
        // The input projection of every step at once; only the memory update is sequential.
        linear::accumulate(
            mat(&tape.x, rows, i),
            params.mat(W_H),
            mat_mut(&mut tape.n, rows, h),
        );
        let [m, s, p] = split_blocks(state.data_mut(), b * h);
        let bh = params.slice(B_H);
        for (n_t, s_t) in tape
            .n
            .chunks_exact_mut(b * h)
            .zip(tape.s.chunks_exact_mut(b * h))
        {
            self.update(bh, n_t, m, s, p);
            s_t.copy_from_slice(s);
        }
        self.output(params, &tape.s, &mut tape.y);
        ys.assign(&ndarray::ArrayView3::from_shape((t, b, o), &tape.y).expect("sized above"));
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
        let rows = t * b;
        let one = S::one();
        // Output layer: dz = dy ⊙ (1 − y²).
        let mut dz: Vec<S> = dys.iter().copied().collect();
        for (d, &y) in dz.iter_mut().zip(&tape.y) {
            *d *= one - y * y;
        }
        let dz_m = mat(&dz, rows, o);
        let s_m = mat(&tape.s, rows, h);
        let mut ds = vec![S::zero(); rows * h];
        linear::backward(
            s_m,
            params.mat(W_O),
            dz_m,
            grads.mat_mut(W_O),
            None,
            Some((mat_mut(&mut ds, rows, h), false)),
        );
        grads.vec_mut(B_O).scaled_add(one, &dz_m.sum_axis(Axis(0)));
        // The recurrence, backwards in time; `ds` becomes da in place.
        let keep = one - self.alpha;
        let [dm, dsc, dpc] = split_blocks(dstate.data_mut(), b * h);
        for (da_t, n_t) in ds
            .chunks_exact_mut(b * h)
            .zip(tape.n.chunks_exact(b * h))
            .rev()
        {
            for k in 0..b * h {
                let ds_tot = da_t[k] + dsc[k];
                let dm_tot = dm[k];
                let n = n_t[k];
                let da = (ds_tot + self.alpha * dm_tot) * (one - n * n);
                da_t[k] = da;
                dm[k] = keep * dm_tot + da;
                if self.reference {
                    // s_t = n_t + β p_{t−1} and p_t = s_{t−1}
                    dsc[k] = dpc[k];
                    dpc[k] = self.beta * ds_tot;
                } else {
                    dsc[k] = self.beta * ds_tot;
                }
            }
        }
        let da_m = mat(&ds, rows, h);
        let x_m = mat(&tape.x, rows, i);
        general_mat_mul(one, &x_m.t(), &da_m, one, &mut grads.mat_mut(W_H));
        grads.vec_mut(B_H).scaled_add(one, &da_m.sum_axis(Axis(0)));
        if let Some(dx) = dxs {
            linear::backward_inputs(&[(da_m, params.mat(W_H))], dx);
        }
    }

    fn forward_chunked(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        chunk: usize,
        _scratch: &mut Scratch<S>,
    ) {
        let t = xs.dim().0;
        let chunk = chunk.max(1);
        let mut tape = Tape::default();
        let mut start = 0;
        while start < t {
            let end = (start + chunk).min(t);
            self.forward_window(
                params,
                state,
                xs.slice(ndarray::s![start..end, .., ..]),
                ys.slice_mut(ndarray::s![start..end, .., ..]),
                Some(&mut tape),
            );
            start = end;
        }
    }

    fn diagnostics(&self, _params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let h = self.hidden;
        vec![
            Diagnostic {
                name: "mean_abs_memory",
                value: mean_abs(&state.slice(MEM)[..h]),
            },
            Diagnostic {
                name: "mean_abs_hidden",
                value: mean_abs(&state.slice(ECHO)[..h]),
            },
        ]
    }
}
