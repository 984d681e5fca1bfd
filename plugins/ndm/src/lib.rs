//! # NDM — the neural differential manifold
//!
//! A hidden state that follows an ODE (one Euler step `dt` per token) driven through
//! **fast weights**: the input and recurrent matrices change at every step by Hebbian
//! traces scaled by a per-weight plasticity, so they are part of the state, like the
//! manifold. What is learned (by backpropagation through the Hebbian dynamics) is how the
//! fast weights start and how fast they learn: the initial fast weights, the Hebbian rates,
//! the manifold's key, value and query maps, and the readout.
//!
//! ## Design mode (`compat: "design"`, the default)
//!
//! For input `x_t` (widths: input I, hidden H, manifold M, output O), with the fast weights
//! `W_in = W_in⁰ + A` and `W_h = W_h⁰ + B` (`W⁰` learned, `A`, `B` state):
//!
//! ```text
//! q_t    = σ(h_{t−1} Q)                                  query, M
//! mr_t   = q_t M_{t−1}                                   read, before the write
//! d_t    = −h_{t−1} + tanh(x_t W_in + b_h + h_{t−1} W_h + mr_t)
//! h_t    = h_{t−1} + dt·d_t
//! pre_t  = τ pre_{t−1}  + (1 − τ)|h_t|                   Hebbian traces
//! post_t = τ post_{t−1} + (1 − τ)|d_t|
//! G_in   = P_in ⊙ (x_t ⊗ (η_in ⊙ post_t) − λ A)          weight velocities
//! G_h    = P_h  ⊙ (pre_t ⊗ (η_h ⊙ post_t) − λ B)
//! A += dt·G_in,  B += dt·G_h                             (momentum: V ← βV + (1−β)dt·G; A += V)
//! P ← ρ P                                                plasticity decays with the stream
//! k_t = σ(h_t K),  v_t = tanh(h_t V)
//! M_t = γ M_{t−1} + (1 − γ) k_t v_tᵀ                      bounded write, after the read
//! y_t = h_t W_out + b_out
//! ```
//!
//! `λ` pulls each fast weight back towards its learned initial value, so the Hebbian
//! memory fades instead of drifting without bound (the reference's `W_h` drifts towards
//! `η·pre·post/λ`, up to 1000 × the trace product). The write keeps `|M| ≤ 1`.
//! `|·|` has derivative `sign(·)` (0 at 0); a clip has derivative 0 outside its range.
//!
//! Variants (`variant`):
//! * `"original"` — the equations above;
//! * `"clamped"` — the same with `ndm_.c`'s clips: pre-activations and σ arguments ±20,
//!   `d` ±5, `h` ±5, the trace inputs `[0, 5]`, the traces `[0, 2]`, the Hebbian terms ±5,
//!   the velocities `G` ±5, the weights `W⁰ + A` ±10, the output ±20. The manifold write
//!   stays (the reference deleted it);
//! * `"momentum"` — the fast weights move with a velocity `V` (state): `V ← βV + α G`,
//!   `A ← A + V`, with `α = (1 − β)·dt` so that a constant drive moves them as fast as the
//!   original.
//!
//! **Reset** restores the fast weights to their learned initial values (`A = B = 0`), the
//! plasticity to its initial value and everything else to zero, so a prediction from a reset
//! is repeatable (the reference never restores the weights its inference changed).
//! Plasticity decays by `ρ` per token of the stream since the reset.
//!
//! ## Reference mode (`compat: "reference"`)
//!
//! The forward pass of the reference programs (`ndm.c`, `ndm_.c`, `ndm_momentum.c`) with
//! their fixed constants; `dt`, `weight_decay`, `hebbian`, `plasticity`, `plasticity_decay`,
//! `trace_decay` and `memory_decay` are not read (`momentum` is):
//! * the decay pulls the whole fast weight `W⁰ + A` to zero (`−λ W`), not to `W⁰`;
//! * `original` (`ndm.c`; dt 0.1, λ 1e-4, η 0.1, τ 0.95, ρ 0.999, γ 0.995): the manifold is
//!   written **before** the read, from the previous state and unbounded,
//!   `M[m,i] ← γ M[m,i] + σ(h_{t−1}K)_m · h_{t−1,i} · V[i,m]` (V is H × M); plasticity starts
//!   at a fixed per-weight pattern drawn from `U[0.5, 1]`;
//! * `clamped` (`ndm_.c`; dt 0.05, λ 1e-3, η 0.05, plasticity 0.01): the clips above, **no
//!   write** (the manifold stays as it is, zero from a reset), no key and value maps;
//! * `momentum` (`ndm_momentum.c`; plasticity 1, `α = dt·0.01`): **no write**.
//!
//! The reference trains only its readout; here every parameter of the reference's forward
//! function is trained by BPTT in both modes. There are no reference save files for NDM.
//!
//! ## State, parameters, diagnostics
//!
//! State per sequence: `h`, `pre`, `post` (H each), `manifold` (M × H), `fast_in` (I × H),
//! `fast_h` (H × H), `plasticity_in` (I × H), `plasticity_h` (H × H) and, for momentum,
//! `velocity_in` (I × H) and `velocity_h` (H × H). Size
//! `3·H + M·H + 2·(I·H + H²)` (`+ I·H + H²` for momentum).
//!
//! Parameters (all trained): `w_in` (I × H), `w_h` (H × H), `b_h` (H), `eta_in`, `eta_h`
//! (H each, the Hebbian rate of each postsynaptic unit), `q` (H × M), `k` (H × M) and `v`
//! (design H × H, reference H × M; absent where the variant does not write), `w_out`
//! (H × O), `b_out` (O).
//!
//! Diagnostics, for sequence 0: `mean_weight_velocity` (momentum: mean |V| over both
//! matrices; otherwise mean |G_h|, the recurrent fast weights' velocity at the current
//! traces — the input half moves with the last input, which is not state),
//! `mean_plasticity` (mean P over both matrices) and `manifold_energy` (mean |M|, as AMN's
//! and DTPN's energies; the reference reports mean M²).
//!
//! Computation: each sequence has its own fast weights, so a batch is a loop of
//! matrix–vector products (core's kernels) and one fused pass per matrix for the Hebbian
//! update. The backward pass keeps the fast weights only every `⌈√T⌉` steps and rebuilds
//! each segment by re-running the update.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_ndm::Ndm>();
//! let mut model = entry.create::<f32>(Some("(hidden: 8, manifold: 4)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! assert_eq!(model.diagnostics().len(), 3);
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod backward;
mod cell;
mod consts;
mod fast;
mod naive;
mod params;
mod step;

pub use backward::BackWork;
pub use cell::{NdmCell, Tape};
pub use params::{
    MAX_HIDDEN, MAX_MANIFOLD, MAX_RETENTION, MIN_DT, MIN_PLASTICITY_DECAY, NdmParams, Variant,
};
pub use step::Scratch;

use mnnn_core::reference::Compat;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Dims, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The NDM registry entry.
pub struct Ndm;

impl Architecture for Ndm {
    const NAME: &'static str = "ndm";
    const FAMILY: Family = Family::Cousin;
    const SUMMARY: &'static str = "Neural differential manifold: an ODE hidden state driven through Hebbian fast weights with decaying plasticity, and a key/value/query manifold";
    const CITATION: &'static str = "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), ndm.c, ndm_.c, ndm_momentum.c: Neural Differential Manifolds";
    const STATE_FORMULA: &'static str = "3·hidden + manifold·hidden + 2·(input·hidden + hidden²), plus input·hidden + hidden² for momentum (h, pre, post, manifold, fast weights, plasticity, velocities)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] =
        &["mean_weight_velocity", "mean_plasticity", "manifold_energy"];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("hidden", 1, MAX_HIDDEN as u64, 5),
        ParamRange::int("manifold", 1, MAX_MANIFOLD as u64, 4),
        ParamRange::choice("variant", Variant::NAMES),
        ParamRange::float("dt", MIN_DT, 1.0),
        ParamRange::float("weight_decay", 0.0, 1.0),
        ParamRange::float("hebbian", -1.0, 1.0),
        ParamRange::float("plasticity", 0.0, 1.0),
        ParamRange::float("plasticity_decay", MIN_PLASTICITY_DECAY, 1.0),
        ParamRange::float("trace_decay", 0.0, MAX_RETENTION),
        ParamRange::float("memory_decay", 0.0, MAX_RETENTION),
        ParamRange::float("momentum", 0.0, MAX_RETENTION),
        ParamRange::choice("compat", Compat::NAMES),
    ];

    type Params = NdmParams;
    type Cell<S: Scalar> = NdmCell<S>;

    fn validate(params: &NdmParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &NdmParams, dims: Dims) -> NdmCell<S> {
        NdmCell::new(params, dims)
    }

    fn state_size(params: &NdmParams, dims: Dims) -> usize {
        let h = params.hidden;
        let fast = dims
            .input
            .saturating_mul(h)
            .saturating_add(h.saturating_mul(h));
        let copies = if params.variant == Variant::Momentum {
            3
        } else {
            2
        };
        h.saturating_mul(3)
            .saturating_add(params.manifold.saturating_mul(h))
            .saturating_add(fast.saturating_mul(copies))
    }

    fn naive(
        params: &NdmParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(Ndm);
