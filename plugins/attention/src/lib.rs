//! # attention — the transformer's memory, as a control and as a baseline
//!
//! Two entries over one causal softmax attention head ([`AttnCell`]):
//!
//! * **`attention`** (family `control`): the key–value cache keeps every step, as a
//!   transformer's does, so the state grows with the stream (`k`, `v`: `n × dim` after `n`
//!   steps, and the count `seen`). It is a real, trainable model,
//!   and it **fails** the conformance suite on `no-growth` — the membership rule seen on a
//!   real architecture: every other property (persistence of the grown cache, chunked and
//!   streaming equivalence, gradients, determinism, bad input) holds.
//! * **`sliding-window`** (family `baseline`): the cache keeps the last `window` steps in
//!   fixed slots, a state of fixed size `window·(2·dim + 1)`; it passes the suite.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let io = IoSpec::regression(3, 2);
//! let mut grow = Entry::of::<mnnn_attention::Attention>().create::<f64>(None, &io, 0)?;
//! let mut slide = Entry::of::<mnnn_attention::SlidingWindow>()
//!     .create::<f64>(Some("(dim: 8, window: 4)"), &io, 0)?;
//! let x = Inputs::Real(ndarray::Array2::zeros((10, 3)));
//! grow.predict(&x)?;
//! slide.predict(&x)?;
//! assert_eq!(grow.state_size(), 1 + 2 * 32 * 10, "the cache grew with the stream");
//! assert_eq!(slide.state_size(), 4 * (2 * 8 + 1), "the window did not");
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod cell;
mod naive;
mod params;

pub use cell::{AttnCell, EMPTY, Tape};
pub use params::{AttentionParams, MAX_DIM, MAX_WINDOW, SlidingParams};

use mnnn_core::cell::Dims;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The `attention` registry entry: a growing key–value cache (a control that is not a
/// member).
pub struct Attention;

/// The `sliding-window` registry entry: attention over the last `window` steps.
pub struct SlidingWindow;

const CITATION: &str = "Vaswani et al., Attention Is All You Need, NeurIPS 2017";

impl Architecture for Attention {
    const NAME: &'static str = "attention";
    const FAMILY: Family = Family::Control;
    const SUMMARY: &'static str =
        "Causal softmax attention whose key-value cache grows with the stream: not a member";
    const CITATION: &'static str = CITATION;
    const STATE_FORMULA: &'static str =
        "1 + 2·dim·steps seen (grows with the stream; 1 when fresh)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["cached_steps"];
    const PARAM_RANGES: &'static [ParamRange] = params::ATTENTION_RANGES;
    type Params = AttentionParams;
    type Cell<S: Scalar> = AttnCell;

    fn validate(p: &AttentionParams) -> Result<()> {
        p.validate()
    }

    fn build<S: Scalar>(p: &AttentionParams, dims: Dims) -> AttnCell {
        AttnCell::new(p.dim, None, dims)
    }

    fn state_size(_: &AttentionParams, _: Dims) -> usize {
        1
    }

    fn naive(
        p: &AttentionParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(p.dim, None, dims, weights, state, xs)
    }
}

impl Architecture for SlidingWindow {
    const NAME: &'static str = "sliding-window";
    const FAMILY: Family = Family::Baseline;
    const SUMMARY: &'static str =
        "Causal softmax attention over the last `window` steps: a fixed-size cache";
    const CITATION: &'static str = "Beltagy, Peters & Cohan, Longformer: The Long-Document \
        Transformer, 2020 (sliding-window attention); Vaswani et al., 2017";
    const STATE_FORMULA: &'static str = "window·(2·dim + 1)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["cached_steps"];
    const PARAM_RANGES: &'static [ParamRange] = params::SLIDING_RANGES;
    type Params = SlidingParams;
    type Cell<S: Scalar> = AttnCell;

    fn validate(p: &SlidingParams) -> Result<()> {
        p.validate()
    }

    fn build<S: Scalar>(p: &SlidingParams, dims: Dims) -> AttnCell {
        AttnCell::new(p.dim, Some(p.window), dims)
    }

    fn state_size(p: &SlidingParams, _: Dims) -> usize {
        p.window * (2 * p.dim + 1)
    }

    fn naive(
        p: &SlidingParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(p.dim, Some(p.window), dims, weights, state, xs)
    }
}

mnnn_core::register!(Attention);
mnnn_core::register!(SlidingWindow);
