//! AMRC's equations in core's tape operations: the derived reference that the hand-written
//! backward of [`AmrcCell`] is checked against (`Derived<AmrcTape<S>>` is a full
//! [`Cell`] whose backward core derives).

use crate::AmrcCell;
use mnnn_core::autodiff::{Rec, TapeCell, Var};
use mnnn_core::cell::{Cell, Diagnostic, Dims};
use mnnn_core::{Layout, Rng, Scalar, Tensors};

/// AMRC written as its forward step only (same params, state and widths as the
/// [`AmrcCell`] it wraps).
#[derive(Clone, Debug)]
pub struct AmrcTape<S>(pub AmrcCell<S>);

impl<S: Scalar> TapeCell<S> for AmrcTape<S> {
    fn dims(&self) -> Dims {
        Cell::<S>::dims(&self.0)
    }

    fn param_layout(&self) -> Layout {
        Cell::<S>::param_layout(&self.0)
    }

    fn state_layout(&self) -> Layout {
        Cell::<S>::state_layout(&self.0)
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        Cell::<S>::init_params(&self.0, rng, params)
    }

    fn record_step(&self, r: &mut Rec<'_, S>, x: Var, state: &mut [Var]) -> Var {
        let c = &self.0;
        let (w_h, b_h) = (r.param_named("w_h"), r.param_named("b_h"));
        let (w_o, b_o) = (r.param_named("w_o"), r.param_named("b_o"));
        let (m, s_prev) = (state[0], state[1]);
        // n = tanh(x W_h + b_h + m)
        let a = r.linear(x, w_h, b_h);
        let a = r.add(a, m);
        let n = r.tanh(a);
        // s = n + β·(s_{t−1}, or s_{t−2} = p in reference mode)
        let echo = if c.reference { state[2] } else { s_prev };
        let s = r.axpby(S::one(), n, c.beta, echo);
        // m = (1 − α) m + α n
        state[0] = r.axpby(S::one() - c.alpha, m, c.alpha, n);
        state[1] = s;
        if c.reference {
            state[2] = s_prev;
        }
        // y = tanh(s W_o + b_o)
        let z = r.linear(s, w_o, b_o);
        r.tanh(z)
    }

    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        Cell::<S>::diagnostics(&self.0, params, state)
    }
}
