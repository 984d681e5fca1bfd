//! A cell written as its forward step only, and the [`Cell`] core derives from it.

use super::{Op, Rec, Tape, Var};
use crate::buf::zeroed;
use crate::cell::{Cell, Diagnostic, Dims};
use crate::{Layout, Rng, Scalar, Tensors};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};

/// A cell given by its forward step in tape operations; [`Derived`] makes it a [`Cell`] with
/// the windowed forward, the step and the full-BPTT backward derived by core.
///
/// The layouts, initialisation and diagnostics mean what they mean on [`Cell`]. State tensor
/// `k` of a batch of `B` sequences is seen as one `B × len_k` matrix (`len_k` the tensor's
/// size for one sequence), inputs as `B × input`, and [`TapeCell::record_step`] must return a
/// `B × output` value and leave every state value the shape it had.
pub trait TapeCell<S: Scalar>: Clone + Send + Sync + 'static {
    /// Input and output widths.
    fn dims(&self) -> Dims;

    /// Names and shapes of the parameters.
    fn param_layout(&self) -> Layout;

    /// Names and shapes of one sequence's state.
    fn state_layout(&self) -> Layout;

    /// Fills freshly allocated parameters from `rng`.
    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>);

    /// One step for the whole batch: reads the inputs `x` and the state `state` (one value
    /// per state tensor), replaces each state value with the next one, and returns the
    /// outputs.
    fn record_step(&self, r: &mut Rec<'_, S>, x: Var, state: &mut [Var]) -> Var;

    /// As [`Cell::reset_state`]: the default zeroes everything.
    fn reset_state(&self, _params: &Tensors<S>, state: &mut Tensors<S>) {
        state.fill(S::zero());
    }

    /// As [`Cell::reset_state_backward`]: the default (a fresh state made of no parameter)
    /// adds nothing.
    fn reset_state_backward(
        &self,
        _params: &Tensors<S>,
        _dstate: &Tensors<S>,
        _grads: &mut Tensors<S>,
    ) {
    }

    /// As [`Cell::diagnostics`]; the default reports nothing.
    fn diagnostics(&self, _params: &Tensors<S>, _state: &Tensors<S>) -> Vec<Diagnostic> {
        Vec::new()
    }
}

/// The [`Cell`] of a [`TapeCell`]: step, windowed forward and backward all run through the
/// tape, so they compute one function and the backward is its exact vector–Jacobian
/// product.
#[derive(Clone, Debug)]
pub struct Derived<C>(pub C);

impl<C> Derived<C> {
    /// Records a window of `xs` from `state` on `tape`, writes the outputs to `ys` and the end
    /// state back to `state`.
    fn record<S: Scalar>(
        &self,
        tape: &mut Tape<S>,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
    ) where
        C: TapeCell<S>,
    {
        let (_, b, i) = xs.dim();
        let o = ys.dim().2;
        let mut cur = std::mem::take(&mut tape.state_end);
        cur.clear();
        let mut r = Rec::begin(tape, params, b);
        for (k, e) in state.layout().entries().iter().enumerate() {
            let v = r.leaf(
                Op::State,
                b,
                e.len() / b.max(1),
                state.slice(k).iter().copied(),
            );
            r.tape.state_start.push(v);
            cur.push(v);
        }
        for (x, mut y) in xs.axis_iter(Axis(0)).zip(ys.axis_iter_mut(Axis(0))) {
            let xv = r.leaf(Op::Input, b, i, x.iter().copied());
            let yv = self.0.record_step(&mut r, xv, &mut cur);
            assert_eq!(
                r.dim(yv),
                (b, o),
                "record_step returned outputs of the wrong shape"
            );
            y.iter_mut().zip(r.value(yv)).for_each(|(y, &v)| *y = v);
            r.tape.inputs.push(xv);
            r.tape.outputs.push(yv);
        }
        for (k, &v) in cur.iter().enumerate() {
            let dst = state.slice_mut(k);
            let src = r.value(v);
            assert_eq!(
                src.len(),
                dst.len(),
                "record_step changed the shape of state tensor {k}"
            );
            dst.copy_from_slice(src);
        }
        tape.state_end = cur;
    }
}

impl<S: Scalar, C: TapeCell<S>> Cell<S> for Derived<C> {
    type Tape = Tape<S>;
    type Scratch = Tape<S>;

    fn dims(&self) -> Dims {
        self.0.dims()
    }

    fn param_layout(&self) -> Layout {
        self.0.param_layout()
    }

    fn state_layout(&self) -> Layout {
        self.0.state_layout()
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        self.0.init_params(rng, params)
    }

    fn reset_state(&self, params: &Tensors<S>, state: &mut Tensors<S>) {
        self.0.reset_state(params, state)
    }

    fn reset_state_backward(
        &self,
        params: &Tensors<S>,
        dstate: &Tensors<S>,
        grads: &mut Tensors<S>,
    ) {
        self.0.reset_state_backward(params, dstate, grads)
    }

    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Tape<S>,
    ) {
        let xs = x.insert_axis(Axis(0));
        self.record(scratch, params, state, xs, y.insert_axis(Axis(0)));
    }

    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        let mut local = Tape::default();
        self.record(tape.unwrap_or(&mut local), params, state, xs, ys);
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
        let mut g = tape.grads.lock().unwrap_or_else(|e| e.into_inner());
        zeroed(&mut g, tape.vals.len());
        for (&v, dy) in tape.outputs.iter().zip(dys.axis_iter(Axis(0))) {
            tape.seed(&mut g, grads, v, dy.iter().copied());
        }
        for (k, &v) in tape.state_end.iter().enumerate() {
            tape.seed(&mut g, grads, v, dstate.slice(k).iter().copied());
        }
        tape.sweep(params, &mut g, grads, dxs.is_some());
        for (k, &v) in tape.state_start.iter().enumerate() {
            match tape.grad_of(&g, v) {
                Some(d) => dstate.slice_mut(k).copy_from_slice(d),
                None => dstate.slice_mut(k).fill(S::zero()),
            }
        }
        if let Some(mut dxs) = dxs {
            for (&v, mut dx) in tape.inputs.iter().zip(dxs.axis_iter_mut(Axis(0))) {
                let d = tape.grad_of(&g, v).expect("an input takes gradients");
                dx.iter_mut().zip(d).for_each(|(dx, &d)| *dx = d);
            }
        }
    }

    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        self.0.diagnostics(params, state)
    }
}
