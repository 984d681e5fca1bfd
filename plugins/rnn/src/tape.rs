//! What a window records for its backward pass, and the buffers the passes reuse.
//!
//! Everything is a flat row-major buffer whose rows are `(step, sequence)` pairs in that order
//! (row `s·B + b`), so a whole window of one layer is one matrix and its products are single
//! calls. The buffers keep their allocations from window to window.

use mnnn_core::Scalar;
use std::sync::Mutex;

/// One layer's record of a window.
#[derive(Debug, Default)]
pub(crate) struct LayerTape<S> {
    /// `h_{−1} … h_{T−1}`: `(T + 1)·B × H` (the first block is the state the window began in).
    pub hs: Vec<S>,
    /// LSTM: `c_{−1} … c_{T−1}`, `(T + 1)·B × H`.
    pub cs: Vec<S>,
    /// The activated gates, `T·B × G·H` (LSTM `i f g o`, GRU `r z n`); before the recurrence
    /// runs, the input projection of the whole window.
    pub acts: Vec<S>,
    /// `T·B × H`: LSTM `tanh(c_t)`; GRU `W_hn h_{t−1} + b_hn`, which the reset gate scales.
    pub aux: Vec<S>,
    /// GRU: the recurrent product of one step, `B × 3H`.
    pub gh: Vec<S>,
    /// `W_hhᵀ` (`G·H × H`) packed by [`pack`](crate::mat::pack), filled when recording, for
    /// the backward pass's product of each step.
    pub w_hh_t: Vec<S>,
    /// `W_ihᵀ` (`G·H × in`), likewise.
    pub w_ih_t: Vec<S>,
}

/// Work space of the backward pass (behind a lock because the tape is shared read-only).
#[derive(Debug, Default)]
pub(crate) struct Back<S> {
    /// Gradients of the gate pre-activations, `T·B × G·H` (GRU: of the input projection).
    pub dg: Vec<S>,
    /// GRU: gradients of the recurrent product, `T·B × 3H`.
    pub dgh: Vec<S>,
    /// `∂L/∂h_t` from above for the layer being processed, `T·B × H`.
    pub dh_above: Vec<S>,
    /// `∂L/∂x_t` of that layer, which is the `dh_above` of the layer below.
    pub dh_below: Vec<S>,
    /// The output gradients, contiguous.
    pub dys: Vec<S>,
    /// Input gradients when the caller's view is not contiguous.
    pub dxs: Vec<S>,
}

/// What [`RnnCell::forward_window`](crate::RnnCell) records (and, as scratch, what a step
/// reuses).
#[derive(Debug, Default)]
pub struct Tape<S> {
    pub(crate) steps: usize,
    pub(crate) batch: usize,
    /// Layer-0 inputs, `T·B × input`.
    pub(crate) x: Vec<S>,
    pub(crate) layers: Vec<LayerTape<S>>,
    /// `w_outᵀ`, `output × H`.
    pub(crate) w_out_t: Vec<S>,
    /// Each layer's `W_hh` packed for the forward pass (see [`Weights`](crate::lstm)).
    pub(crate) packed: Vec<Vec<S>>,
    pub(crate) back: Mutex<Back<S>>,
}

/// Makes `v` hold `n` elements (their values are about to be overwritten), reusing its
/// allocation.
pub(crate) fn sized<S: Scalar>(v: &mut Vec<S>, n: usize) {
    v.resize(n, S::zero());
}

/// Writes the transpose of the row-major `rows × cols` matrix `w` into `out`.
pub(crate) fn transpose_into<S: Scalar>(out: &mut Vec<S>, w: &[S], rows: usize, cols: usize) {
    sized(out, rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
}
