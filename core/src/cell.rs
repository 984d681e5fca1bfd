//! The memory-native contract as a trait: a cell with intrinsic state, self-contained
//! dynamics and a state size fixed by its configuration.

use crate::{Layout, Rng, Scalar, Tensors};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s};

/// Widths of the rows a cell reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dims {
    /// Input width.
    pub input: usize,
    /// Output width.
    pub output: usize,
}

/// A named scalar an entry reports about its memory (e.g. mean |memory|).
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Short snake_case name.
    pub name: &'static str,
    /// The value, computed from the current parameters and state.
    pub value: f64,
}

/// The mean of `|v|`, in f64: what most entries report about a block of their state in
/// [`Cell::diagnostics`] (NaN for an empty block).
pub fn mean_abs<S: Scalar>(v: &[S]) -> f64 {
    v.iter().map(|x| x.as_f64().abs()).sum::<f64>() / v.len() as f64
}

/// A memory-native cell: parameters (slow weights), a fixed-size state (everything the next
/// step reads, fast weights included) and the equations that update it.
///
/// State is a value the caller holds (a [`Tensors`] with [`Cell::state_layout`] batched over
/// `B` independent sequences), so streaming, snapshots and batching need nothing from the cell
/// beyond these methods. Sequences are time-major: `xs` is `T × B × input`.
pub trait Cell<S: Scalar>: Clone + Send + Sync + 'static {
    /// What [`Cell::forward_window`] records for [`Cell::backward_window`].
    type Tape: Default + Send + Sync;
    /// Reusable work space for [`Cell::step`], so per-token steps do not allocate.
    type Scratch: Default + Send + Sync;

    /// Input and output widths.
    fn dims(&self) -> Dims;

    /// Names and shapes of the parameters.
    fn param_layout(&self) -> Layout;

    /// Names and shapes of one sequence's state. Its total is the state size, which must not
    /// depend on how many steps have been run.
    fn state_layout(&self) -> Layout;

    /// Whether a state of `layout` (batched, one sequence), other than the one
    /// [`Cell::state_layout`] gives, is one this cell can continue from. No member's is: its
    /// state has one fixed layout, and the default says no. Only a control whose memory grows
    /// with the stream (attention's key–value cache, which replaces its state tensors as they
    /// grow) says yes, so that its grown state can be restored and saved like any other — and
    /// the conformance suite then rejects it on `no-growth`, not on a failed load.
    fn accepts_grown_state(&self, _layout: &Layout) -> bool {
        false
    }

    /// Fills freshly allocated parameters from `rng`.
    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>);

    /// Puts every sequence of a batched state back to the start of a stream. The default
    /// zeroes everything; a cell whose fresh state is not zero overrides it.
    fn reset_state(&self, _params: &Tensors<S>, state: &mut Tensors<S>) {
        state.fill(S::zero());
    }

    /// The vector–Jacobian product of [`Cell::reset_state`]: given `dstate`, `∂L/∂state` of a
    /// freshly reset batched state, **adds** to `grads` what it says about the parameters the
    /// fresh state is made of (a learned initial memory, say). Training calls it for every
    /// window that starts from a reset, so such parameters are trained like any other. The
    /// default (a fresh state that does not depend on the parameters) adds nothing; a cell
    /// that overrides [`Cell::reset_state`] with parameters must override this too (the
    /// conformance suite's gradient property checks it from a fresh state).
    fn reset_state_backward(
        &self,
        _params: &Tensors<S>,
        _dstate: &Tensors<S>,
        _grads: &mut Tensors<S>,
    ) {
    }

    /// One step for `B` sequences at once: reads `x` (`B × input`), advances `state`, writes
    /// `y` (`B × output`).
    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Self::Scratch,
    );

    /// Runs a window of `T` steps for `B` sequences, recording in `tape` (when given) what the
    /// backward pass needs. Must compute the same function as `T` calls of [`Cell::step`]
    /// (up to floating-point reassociation).
    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Self::Tape>,
    );

    /// The vector–Jacobian product of the last [`Cell::forward_window`] that filled `tape`.
    ///
    /// `dys` is `∂L/∂y_t` for every step; `dstate` holds `∂L/∂state` after the window on
    /// entry (zeros for a truncated window) and `∂L/∂state` before it on return. Parameter
    /// gradients are **added** to `grads`; input gradients are written to `dxs` when asked.
    fn backward_window(
        &self,
        params: &Tensors<S>,
        tape: &Self::Tape,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    );

    /// An auxiliary term of the training loss, computed from the window recorded in `tape`:
    /// a penalty on the cell's own activity (an L1 sparsity penalty on a hidden layer, a
    /// load-balancing term of a router) that the training engine adds to the data loss.
    ///
    /// `row_weights` has one weight per row `t·B + b` of the recorded window: the engine
    /// gives padding rows (steps past the end of a shorter sequence) 0 and every other row
    /// `1 / (number of such rows)`, so the term is a mean over the window's real steps. The
    /// cell returns `Σ_r row_weights[r]·penalty_r` and keeps the weights in `tape`: the next
    /// [`Cell::backward_window`] on that tape adds the term's gradient (through the whole
    /// window, state included) to what `dys` gives. A cell without an auxiliary loss keeps
    /// the default, which returns 0 and keeps nothing.
    fn aux_loss(&self, _params: &Tensors<S>, _tape: &mut Self::Tape, _row_weights: &[S]) -> f64 {
        0.0
    }

    /// The chunked form: processes `xs` in chunks of `chunk` steps. The default is the step
    /// loop, which any chunked form must equal (exactly, or within a tolerance the entry
    /// declares).
    fn forward_chunked(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        _chunk: usize,
        scratch: &mut Self::Scratch,
    ) {
        for (x, y) in xs.axis_iter(Axis(0)).zip(ys.axis_iter_mut(Axis(0))) {
            self.step(params, state, x, y, scratch);
        }
    }

    /// Named scalars about the memory, from parameters and the state of sequence 0.
    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic>;

    /// For a linear model — a cell whose output is an affine function of features of the
    /// inputs it has seen, its parameters being the coefficients — the features' width and
    /// the model orders to choose among (see [`LinearFeatures`]); training then fits it by
    /// least squares in closed form instead of by gradient. `None`, the default, for every
    /// other cell.
    fn linear_features(&self) -> Option<LinearFeatures> {
        None
    }

    /// With [`Cell::linear_features`]: the features of every step of one sequence run from a
    /// fresh state, `xs` (`T × input`, as the cell reads them) into `out` (`T × width`).
    fn features(&self, _xs: ArrayView2<S>, _out: ArrayViewMut2<f64>) {}

    /// With [`Cell::linear_features`]: sets the parameters from least-squares coefficients
    /// of the first `coef.nrows() − 1` features (`coef`'s last row is the intercept); the
    /// features after those get zero weight.
    fn set_coefficients(&self, _coef: ArrayView2<f64>, _params: &mut Tensors<S>) {}
}

/// [`Cell::set_coefficients`] for a cell whose parameters are an affine map of its features:
/// weights (tensor `w`, `features × output`) and bias (tensor `b`, `output`). The first
/// `coef.nrows() − 1` rows of the weights take the coefficients, the rest zero, and the bias
/// takes the intercept row.
pub fn set_affine<S: Scalar>(coef: ArrayView2<f64>, params: &mut Tensors<S>, w: usize, b: usize) {
    let used = coef.nrows() - 1;
    let mut wm = params.mat_mut(w);
    wm.fill(S::zero());
    wm.slice_mut(s![..used, ..])
        .zip_mut_with(&coef.slice(s![..used, ..]), |w, &c| *w = S::from_f64(c));
    params
        .vec_mut(b)
        .zip_mut_with(&coef.row(used), |b, &c| *b = S::from_f64(c));
}

/// What a linear model ([`Cell::linear_features`]) offers its closed-form fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearFeatures {
    /// Features per step.
    pub width: usize,
    /// Model orders as counts of leading features, ascending: each is fitted on the training
    /// part and the one with the lowest validation error is kept (the last, without
    /// validation data).
    pub orders: Vec<usize>,
}
