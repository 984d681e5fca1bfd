//! # rnn — the LSTM and GRU baselines
//!
//! The two recurrent networks every sequence model is compared with, with PyTorch's equations
//! and parameter layout (`nn.LSTM`, `nn.GRU`: gate order `i f g o` and `r z n`, two bias
//! vectors, GRU's reset gate applied to the recurrent product), stacked `layers` deep, with an
//! affine read-out of the top layer and a hand-written backward pass through the whole window
//! (full BPTT).
//!
//! They are baselines, not members: their state (`h`, and `c` for the LSTM) is fixed in size,
//! so they pass the membership test, but they are the classic architectures the founding
//! article's cells are measured against.
//!
//! Speed comes from the shape of the work: for each layer, the input product of a whole window
//! is one matrix product (`T·B × in` by `in × G·H`); each step then adds one product of the
//! whole batch's `h_{t−1}` with `W_hh`, and runs the gate arithmetic in place with a vectorised
//! `tanh` (σ(v) = ½ + ½·tanh(v/2)). Backward, the weight gradients are one product each over
//! every step of the window. Nothing is allocated per step.
//!
//! At batch 1 a step is one row times `W_hh`, bound by streaming the matrix from L2; the
//! LSTM's steps then run on a layout packed by hidden units, one product per step with the
//! gate arithmetic right after it, and, when `RAYON_NUM_THREADS` asks for two threads or
//! more, on two threads that each keep half of `W_hh` in their core's L2 and meet once per
//! step, with results bit for bit those of one thread.
//!
//! A model saved from PyTorch is read by [`import_torch`] (`mnnn import --from torch`).
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let mut m = Entry::of::<mnnn_rnn::Lstm>()
//!     .create::<f32>(Some("(hidden: 8, layers: 2)"), &IoSpec::regression(3, 2), 0)?;
//! assert_eq!(m.state_size(), 2 * 2 * 8);
//! let y = m.predict(&Inputs::Real(ndarray::Array2::zeros((5, 3))))?;
//! assert_eq!(y.dim(), (5, 2));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod cell;
mod gru;
mod import;
mod lstm;
mod mat;
pub mod naive;
mod pair;
mod params;
mod row;
mod tape;

pub use cell::{Kind, RnnCell};
pub use import::import_torch;
pub use params::{MAX_HIDDEN, MAX_LAYERS, RnnParams};
pub use tape::Tape;

use mnnn_core::cell::Dims;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The `lstm` registry entry.
pub struct Lstm;

/// The `gru` registry entry.
pub struct Gru;

impl Architecture for Lstm {
    const NAME: &'static str = "lstm";
    const FAMILY: Family = Family::Baseline;
    const SUMMARY: &'static str =
        "Long short-term memory, PyTorch's nn.LSTM equations and layout, stacked";
    const CITATION: &'static str = "Hochreiter & Schmidhuber, Long Short-Term Memory, Neural \
        Computation 9(8), 1997; forget gate: Gers, Schmidhuber & Cummins, 2000";
    const STATE_FORMULA: &'static str = "2·hidden·layers";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["mean_abs_h"];
    const PARAM_RANGES: &'static [ParamRange] = params::RANGES;
    type Params = RnnParams;
    type Cell<S: Scalar> = RnnCell;

    fn validate(p: &RnnParams) -> Result<()> {
        p.validate()
    }

    fn build<S: Scalar>(p: &RnnParams, dims: Dims) -> RnnCell {
        RnnCell::new(Kind::Lstm, p, dims)
    }

    fn state_size(p: &RnnParams, _: Dims) -> usize {
        2 * p.hidden * p.layers
    }

    fn naive(
        p: &RnnParams,
        _: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        Some(naive::rows(Kind::Lstm, p, weights, state, xs))
    }
}

impl Architecture for Gru {
    const NAME: &'static str = "gru";
    const FAMILY: Family = Family::Baseline;
    const SUMMARY: &'static str =
        "Gated recurrent unit, PyTorch's nn.GRU equations and layout, stacked";
    const CITATION: &'static str = "Cho et al., Learning Phrase Representations using RNN \
        Encoder-Decoder for Statistical Machine Translation, EMNLP 2014";
    const STATE_FORMULA: &'static str = "hidden·layers";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["mean_abs_h"];
    const PARAM_RANGES: &'static [ParamRange] = params::RANGES;
    type Params = RnnParams;
    type Cell<S: Scalar> = RnnCell;

    fn validate(p: &RnnParams) -> Result<()> {
        p.validate()
    }

    fn build<S: Scalar>(p: &RnnParams, dims: Dims) -> RnnCell {
        RnnCell::new(Kind::Gru, p, dims)
    }

    fn state_size(p: &RnnParams, _: Dims) -> usize {
        p.hidden * p.layers
    }

    fn naive(
        p: &RnnParams,
        _: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        Some(naive::rows(Kind::Gru, p, weights, state, xs))
    }
}

mnnn_core::register!(Lstm);
mnnn_core::register!(Gru);
