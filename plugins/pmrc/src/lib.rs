//! # PMRC — the persistent memory recurrent cell
//!
//! A tanh hidden layer with a recurrent connection, a persistent memory `m` that is either a
//! learned gate over a tanh candidate or a fixed-rate leaky average, an echo of the previous
//! hidden output, and a tanh output layer with its own echo. Three switches turn the
//! recurrence (`use_recurrent`), the learnable gates (`use_learnable_gates`) and the output
//! memory (`use_output_memory`) on or off.
//!
//! ## Design mode (`compat: "design"`, the default)
//!
//! For input `x_t` (row vectors, input-major matrices; `[rec]` only with `use_recurrent`):
//!
//! ```text
//! a_t = x_t W_h + b_h + [rec] s_{t−1} U_r + m_{t−1}
//! n_t = tanh(a_t)
//! s_t = n_t + β s_{t−1}                                   (lag-1 echo)
//! gates on:  g_t = σ(x_t W_g + m_{t−1} U_g + b_g)
//!            c_t = tanh(x_t W_c + b_c)
//!            m_t = g_t ⊙ c_t + (1 − g_t) ⊙ m_{t−1}
//! gates off: m_t = (1 − α) m_{t−1} + α n_t
//! z_t = tanh(s_t W_o + b_o)
//! y_t = z_t + β_o y_{t−1}   with use_output_memory (lag-1), else y_t = z_t
//! ```
//!
//! The recurrent connection is a simultaneous update: every unit reads the whole previous
//! `s_{t−1}`. State `(m, s[, y])`: everything the next step reads, so a reset equals a freshly
//! built model and a saved model continues exactly. Size `2·hidden + output` with output
//! memory, `2·hidden` without.
//!
//! ## Reference mode (`compat: "reference"`)
//!
//! The forward pass of the reference `memory_net_extended.c` (spec §2.3), for models imported
//! from its files. At the start of step t the state holds `s = y_{t−1}`, `p = y_{t−2}`,
//! `z = ŷ_{t−1}`, `zp = ŷ_{t−2}` and `m`. The C code updates the neurons one by one in place,
//! which makes unit `j` read the newer value of every unit `i < j`:
//!
//! ```text
//! a_j = (x W_h + b_h)_j + [rec] Σ_{i<j} U_r[i,j] y_{t−1,i} + Σ_{i≥j} U_r[i,j] y_{t−2,i} + m_{t−1,j}
//! n = tanh(a)
//! gates on, for j = 0, 1, …, H−1 in order:
//!     g_j = σ((x W_g + b_g)_j + Σ_{i≥j} U_g[i,j] m_{t−1,i} + Σ_{i<j} U_g[i,j] m_{t,i})
//!     c_j = tanh((x W_c + b_c)_j)
//!     m_{t,j} = g_j c_j + (1 − g_j) m_{t−1,j}               (α is unused)
//! gates off: m_t = (1 − α) m_{t−1} + α n
//! y_t = n + β y_{t−2}                                      (lag-2 hidden echo)
//! q_t = tanh(y_t W_o + b_o)
//! ŷ_t = q_t + β_o ŷ_{t−2} with use_output_memory (lag-2 output echo), else q_t
//! ```
//!
//! The recurrence's split of `U_r` (strictly upper / lower with diagonal, in our input-major
//! orientation) is fixed, so it runs as one pass over `U_r`; the gate is genuinely sequential
//! across neurons (its backward runs them in reverse order). State `(m, s, p[, z, zp])`, size
//! `3·hidden + 2·output` with output memory, `3·hidden` without. Unlike the reference,
//! `reset_state` clears all of it, and saving keeps all of it.
//!
//! ## Chunked form
//!
//! The recurrence is nonlinear, so there is no cheaper chunked reformulation: the chunked form
//! is the step loop itself (batched over sequences), exact by construction. Measured at hidden
//! 128, batch 1, it is 5× faster than windows of per-step matrix products, whose one-row
//! products waste most of the GEMM micro-kernel. Training windows and `predict_batch` use
//! matrix products only, so a sequence gives bit for bit the same result alone or in a batch.
//!
//! ## Parameters
//!
//! | tensor | shape | exists | init |
//! |---|---|---|---|
//! | `w_h`, `b_h` | `input × hidden`, `hidden` | always | Glorot uniform, 0 |
//! | `u_r` | `hidden × hidden` | `use_recurrent` | U(±sqrt(1/hidden)) |
//! | `w_g`, `u_g`, `b_g` | `input × hidden`, `hidden × hidden`, `hidden` | `use_learnable_gates` | Glorot, U(±sqrt(1/hidden)), 0 |
//! | `w_c`, `b_c` | `input × hidden`, `hidden` | `use_learnable_gates` | Glorot, 0 |
//! | `w_o`, `b_o` | `hidden × output`, `output` | always | Glorot uniform, 0 |
//!
//! All of them are trained by full backpropagation through time (in both modes, each with its
//! own exact backward). α, β and β_o are fixed hyper-parameters in `[0, 1]`.
//!
//! ## Partial training
//!
//! Freezing is the model's [`mnnn_core::FreezeSpec`] over these tensor names. The reference's
//! layer groups are:
//!
//! * **hidden**: `w_h`, `b_h` and `u_r` (patterns `*_h` and `u_r`);
//! * **output**: `w_o`, `b_o` (pattern `*_o`);
//! * **gates** (memory gates and candidate): `w_g`, `u_g`, `b_g`, `w_c`, `b_c` (patterns
//!   `*_g` and `*_c`).
//!
//! A seeded exact percentage (`Percentage`), the largest or smallest magnitudes (`Magnitude`,
//! exactly as `largest` says) and specific neurons (`Neurons`: the incoming column of each
//! listed unit, e.g. in `w_h`) work on any of them; `unfreeze` takes the same specs.
//!
//! ## Diagnostics
//!
//! Both are computed from the parameters and the state of sequence 0 only, so they are right
//! straight after a load, a `set_state` or a reset:
//!
//! * `mean_gate`: mean over units of `σ(m U_g + b_g)`, the gate's openness driven by the
//!   current memory alone (the input term is not part of the state); `0` when the gates are
//!   off. The same definition in both modes.
//! * `mean_abs_memory`: mean `|m|`.
//!
//! ## Reference files
//!
//! [`import`] reads `save_network`'s layout (native-endian = little-endian):
//!
//! ```text
//! int I, H, O; f32 β, α, β_o, η; int steps; bool use_recurrent, use_learnable_gates, use_output_memory;
//! f32 W_h[H·I], W_o[O·H], U_r[H·H], b_h[H], b_o[O], W_g[H·I], U_g[H·H], b_g[H], W_c[H·I], b_c[H],
//!     m[H], p[H], q[H], zp[O], g[H]
//! ```
//!
//! `35 + 4·(3HI + HO + 2H² + 7H + 2O)` bytes. Matrices are stored `[out][in]` and transposed.
//! The file does not hold `s` or `z`: an imported model starts with them at zero (as the
//! reference does after a load in a fresh process).
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_pmrc::Pmrc>();
//! let mut model = entry.create::<f32>(Some("(hidden: 8, use_recurrent: false)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod cell;
mod import;
mod naive;
mod params;

pub use cell::{PmrcCell, Scratch, Tape};
pub use import::{file_size, import};
pub use params::{MAX_HIDDEN, PmrcParams};

use mnnn_core::reference::Compat;
use mnnn_core::registry::{Architecture, Capability, Family, ImportFn, ParamRange};
use mnnn_core::{Dims, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The PMRC registry entry.
pub struct Pmrc;

impl Architecture for Pmrc {
    const NAME: &'static str = "pmrc";
    const FAMILY: Family = Family::Member;
    const SUMMARY: &'static str = "Persistent memory recurrent cell: recurrent tanh layer with a learned gated memory, hidden and output echoes";
    const CITATION: &'static str = "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), memory_net_extended.c: the Persistent Memory Recurrent Cell";
    const STATE_FORMULA: &'static str = "design: 2·hidden + output·[use_output_memory] (m, s, y); reference: 3·hidden + 2·output·[use_output_memory] (m, s, p, z, zp)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["mean_gate", "mean_abs_memory"];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("hidden", 1, MAX_HIDDEN as u64, 6),
        ParamRange::float("alpha", 0.0, 1.0),
        ParamRange::float("beta", 0.0, 1.0),
        ParamRange::float("output_beta", 0.0, 1.0),
        ParamRange::flag("use_recurrent"),
        ParamRange::flag("use_learnable_gates"),
        ParamRange::flag("use_output_memory"),
        ParamRange::choice("compat", Compat::NAMES),
    ];
    const IMPORT_REFERENCE: Option<ImportFn> = Some(import);

    type Params = PmrcParams;
    type Cell<S: Scalar> = PmrcCell<S>;

    fn validate(params: &PmrcParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &PmrcParams, dims: Dims) -> PmrcCell<S> {
        PmrcCell::new(params, dims)
    }

    fn state_size(params: &PmrcParams, dims: Dims) -> usize {
        let om = usize::from(params.use_output_memory);
        match params.compat {
            Compat::Design => 2 * params.hidden + om * dims.output,
            Compat::Reference => 3 * params.hidden + 2 * om * dims.output,
        }
    }

    fn naive(
        params: &PmrcParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(Pmrc);
