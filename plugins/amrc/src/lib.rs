//! # AMRC — the adaptive memory recurrent cell
//!
//! A tanh hidden layer with an internal memory `m` (a leaky average of the hidden activity at
//! rate `alpha`) and an echo of the previous step's hidden output scaled by `beta`, then a
//! tanh output layer. For input `x_t`:
//!
//! ```text
//! n_t = tanh(x_t W_h + b_h + m_{t−1})
//! s_t = n_t + β s_{t−1}                 (the echo reads the previous step: lag 1)
//! m_t = (1 − α) m_{t−1} + α n_t
//! y_t = tanh(s_t W_o + b_o)
//! ```
//!
//! With `compat: "reference"` the cell computes the reference implementation's forward pass
//! instead, whose echo reads two steps back (`s_t = n_t + β s_{t−2}`; the state gains
//! `p = s_{t−1}`), so that models imported from reference files ([`import`]) run as they did
//! there. Both modes are trained by full BPTT. The backward pass is hand-written;
//! [`AmrcTape`] writes the same equations in core's tape operations, and the tests check the
//! hand-written backward against the one core derives from it (within 1e-10, f64).
//!
//! The state is `(m, s)`: everything the next step reads, so a reset equals a freshly built
//! model and a saved model continues exactly. Size: `2·hidden`. `W_h`, `b_h`, `W_o`, `b_o`
//! are trained by full backpropagation through time; `alpha` and `beta` are fixed
//! hyper-parameters in `[0, 1]`.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_amrc::Amrc>();
//! let mut model = entry.create::<f32>(Some("(hidden: 8, beta: 0.5)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod cell;
mod derived;
mod import;
mod naive;
mod params;

pub use cell::AmrcCell;
pub use derived::AmrcTape;
pub use import::import;
pub use params::AmrcParams;

use mnnn_core::reference::Compat;
use mnnn_core::registry::{Architecture, Capability, Family, ImportFn, ParamRange};
use mnnn_core::{Dims, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The AMRC registry entry.
pub struct Amrc;

impl Architecture for Amrc {
    const NAME: &'static str = "amrc";
    const FAMILY: Family = Family::Member;
    const SUMMARY: &'static str = "Adaptive memory recurrent cell: tanh layer with a leaky internal memory and a lag-1 output echo";
    const CITATION: &'static str = "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), memory_net_dll.c: the Adaptive Memory Recurrent Cell";
    const STATE_FORMULA: &'static str =
        "2·hidden (m, s); 3·hidden with compat \"reference\" (m, s, p)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["mean_abs_memory", "mean_abs_hidden"];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("hidden", 1, 1 << 24, 6),
        ParamRange::float("alpha", 0.0, 1.0),
        ParamRange::float("beta", 0.0, 1.0),
        ParamRange::choice("compat", Compat::NAMES),
    ];

    type Params = AmrcParams;
    type Cell<S: Scalar> = AmrcCell<S>;

    fn validate(params: &AmrcParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &AmrcParams, dims: Dims) -> AmrcCell<S> {
        AmrcCell::new(params, dims)
    }

    fn state_size(params: &AmrcParams, _dims: Dims) -> usize {
        match params.compat {
            Compat::Design => 2 * params.hidden,
            Compat::Reference => 3 * params.hidden,
        }
    }

    const IMPORT_REFERENCE: Option<ImportFn> = Some(import::import);

    fn naive(
        params: &AmrcParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(Amrc);
