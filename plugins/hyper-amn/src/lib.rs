//! # Hyper-AMN — the multi-head associative manifold network
//!
//! Several AMN-like heads side by side, each with its own liquid time constants, manifold
//! decay and key/value/query maps over its own associative manifold; a learned cross-head
//! mixing; a learned softmax gate that merges the heads; a linear output with an input skip.
//! For input `x_t` (widths: input I, hidden H, manifold M, output O; heads `k = 0..n`), in
//! the default `compat: "design"` mode:
//!
//! ```text
//! u_t   = x_t B                                          B: I×H, shared by the heads
//! p_k   = Λ ⊙ s_{k,t−1} + u_t                            Λ = sigmoid(lambda_raw) ∈ (0, 1)
//! f_k   = tanh(p_k),  τ_k = A_k + Bf_k ⊙ |f_k|           A, Bf = softplus(a_raw, bf_raw) > 0
//! l_k   = p_k + dt·(Bf_k ⊙ f_k − τ_k ⊙ p_k)              the liquid neuron's Euler step
//! key_k = σ(l_k K_k),  qry_k = σ(l_k Q_k)                K_k, Q_k: H×M
//! M_k   ← d_k·M_k + (1 − d_k)·key_k[m]·(l_k ⊙ V_k[m])     row m; d_k = sigmoid(decay_raw_k)
//! z_k   = mix·l_k + (1 − mix)·tanh(qry_k M_k)            read after the write
//! s_k,t = clip(Σ_j X[k, j]·z_j, ±state_clip)             X: heads×heads, the cross-head mixing
//! a_t   = softmax_k(s_k,t · G_k)                         G: heads×H, the gate
//! mg_t  = Σ_k a_k s_k,t
//! y_t   = mg_t C + x_t D                                 C: H×O, D: I×O (skip)
//! ```
//!
//! `|f|` has derivative `sign(f)` (0 at 0); the clip has derivative 0 on and beyond its
//! bounds. Every parameter — `a_raw`, `bf_raw`, `decay_raw`, `lambda_raw`, `b`, `k`, `q`,
//! `v`, `g`, `cross`, `c`, `d` — is trained by full backpropagation through time.
//!
//! **What the design changes, and why.** The reference (`hyper-amn.c`) trains only `C`: the
//! rest is a fixed random reservoir. Its gate reads the *previous* merged state, so it is
//! exactly uniform on the first step after a reset (and lags a step after it); here the gate
//! reads the heads' states of the current step. Its head states are never clipped and its
//! manifolds are written with unit weight under decays up to 0.999, so a write accumulates up
//! to a thousandfold (measured: mean-square energy 1634 after 5000 steps) and the `tanh` of
//! the read saturates; here the write is an exponential average (`1 − d_k` weight), so each
//! manifold entry stays within the largest `|key·l·V|` ever written, and the head states are
//! clipped, so no stream can make them grow past `state_clip`. The parametrisations keep
//! `A`, `Bf` > 0 and `Λ`, `d_k` in (0, 1) whatever the optimizer does.
//!
//! **Reference mode** (`compat: "reference"`) runs the reference's forward pass: the gate
//! `a_t = softmax_k(mg_{t−1} · G_k)` from the previous merged state (one step late, uniform
//! after a reset), the write with unit weight `M_k ← d_k·M_k + key_k[m]·(l_k ⊙ V_k[m])`, and
//! no clip; `a`, `bf`, `decay`, `lambda` are the values themselves (not reparametrised) and
//! `mix` keeps its default 0.7. Its backward pass is the exact gradient of that function.
//!
//! **Initialisation** follows the reference: head `k` draws `A` and `Bf` from the ranges of
//! reference head `k mod 3` (`U[0.3, 0.6]`/`U[0.3, 0.7]`, `U[0.5, 0.8]`/`U[0.2, 0.5]`,
//! `U[0.7, 1]`/`U[0.1, 0.3]`) and takes its decay (0.990, 0.995, 0.999); `Λ ∈ U[0.95,
//! 0.99]`; `B`, `C` Glorot-normal, `D` a tenth of `C`'s scale, `K`, `Q`, `V` with variance
//! `1/H`, `G` with std 0.1, `X` the identity plus std-0.1 noise off the diagonal.
//!
//! **State** (per sequence): `s` (heads×H, the head states after the mixing), `m`
//! (heads×M×H, the manifolds) and, in reference mode only, `mg` (H, the merged state its gate
//! reads): everything the next step reads, so a reset equals a fresh model and a saved model
//! continues exactly. Size `heads·hidden·(1 + manifold)`, plus `hidden` in reference mode.
//!
//! **Parameters**: `a`/`a_raw`, `bf`/`bf_raw` (heads×H), `decay`/`decay_raw` (heads),
//! `lambda`/`lambda_raw` (H), `b` (I×H), `k`, `q` (heads×H×M), `v` (heads×M×H: manifold-major,
//! the layout the write reads), `g` (heads×H), `cross` (heads×heads), `c` (H×O), `d` (I×O).
//!
//! **Diagnostics** (sequence 0): `head_activation_<k>` — the gate the next step applies
//! (design: from the stored head states, i.e. the last step's gate; reference: from the
//! stored merged state); `manifold_energy_<k>` — mean |M_k| (mean absolute value, as AMN's
//! `manifold_energy`; the reference reported a mean square); `cross_head_flow` — mean
//! |X[k, j]| over `k ≠ j` (0 with one head).
//!
//! **Computation.** One step is one product for `x B`, per head one matrix–vector product
//! each for the key and the query (core's kernels), a single pass over the manifold that
//! writes each row and accumulates the read from it, and elementwise loops; the whole step
//! is built for AVX-512F, AVX2+FMA or the baseline, chosen at run time through
//! [`mnnn_core::kernels::Path`] (`MNNN_KERNELS` honoured). Nothing is allocated per step. A
//! nonlinear recurrence has no cheaper exact chunked form, so the chunked form is the step
//! loop.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_hyper_amn::HyperAmn>();
//! let mut model = entry.create::<f32>(Some("(hidden: 8, manifold: 4)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! assert_eq!(model.diagnostics().len(), 7);
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod backward;
mod cell;
mod forward;
mod naive;
mod params;

pub use cell::{HyperAmnCell, Scratch, Tape};
pub use forward::Record;
pub use params::{HyperAmnParams, MAX_HEADS, MAX_SIZE};

use mnnn_core::reference::Compat;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Dims, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The Hyper-AMN registry entry.
pub struct HyperAmn;

impl Architecture for HyperAmn {
    const NAME: &'static str = "hyper-amn";
    const FAMILY: Family = Family::Cousin;
    const SUMMARY: &'static str = "Multi-head associative manifold: AMN-like heads with their own liquid time constants and manifolds, learned cross-head mixing and a learned head gate";
    const CITATION: &'static str =
        "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), hyper-amn.c: the Multi-Head Associative Manifold";
    const STATE_FORMULA: &'static str =
        "heads·hidden·(1 + manifold), + hidden in reference mode (s, m, mg)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &[
        "head_activation_<k>",
        "manifold_energy_<k>",
        "cross_head_flow",
    ];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("hidden", 1, MAX_SIZE as u64, 5),
        ParamRange::int("manifold", 1, MAX_SIZE as u64, 3),
        ParamRange::int("heads", 1, MAX_HEADS as u64, 3),
        ParamRange::float("dt", params::MIN_DT, 1.0),
        ParamRange::float("mix", 0.0, 1.0),
        ParamRange::float("state_clip", params::MIN_CLIP, params::MAX_CLIP),
        ParamRange::choice("compat", Compat::NAMES),
    ];

    type Params = HyperAmnParams;
    type Cell<S: Scalar> = HyperAmnCell<S>;

    fn validate(params: &HyperAmnParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &HyperAmnParams, dims: Dims) -> HyperAmnCell<S> {
        HyperAmnCell::new(params, dims)
    }

    fn state_size(params: &HyperAmnParams, _dims: Dims) -> usize {
        let core = params.heads * params.hidden * (1 + params.manifold);
        match params.compat {
            Compat::Design => core,
            Compat::Reference => core + params.hidden,
        }
    }

    fn naive(
        params: &HyperAmnParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(HyperAmn);
