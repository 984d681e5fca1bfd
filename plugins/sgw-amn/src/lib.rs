//! # SGW-AMN — the sparse global workspace network
//!
//! A global-workspace bottleneck in front of an associative manifold: P pre-bottleneck GELU
//! units compete, the top W of them are routed into a W-unit workspace with liquid
//! time-constant dynamics and a Hebbian workspace memory, the workspace is expanded to Q
//! post-bottleneck units, which write and read an M × Q manifold, and a linear map gives the
//! output. For input `x_t`, in the default `compat: "design"` mode:
//!
//! ```text
//! pre   = gelu(x_t W_ip)                                W_ip: I×P (tanh-approximated GELU)
//! sc_i  = |pre_i|·Σ_j |Cw[i, j]|                        Cw: P×W, the competition weights
//! win   = the W indices of the largest scores          (hard selection: no gradient)
//! g     = W·softmax_{n}(sc_{win_n} / temperature)       over the winners only
//! w0    = w_{t−1} + Σ_n g_n·pre_{win_n}·Cw[win_n, ·]    the workspace is recurrent
//! f     = tanh(w0 + Wm_{t−1} w0),  τ = A + Bf ⊙ |f|     A, Bf = softplus(a_raw, bf_raw) > 0
//! w_t   = clip(w0 + dt·(Bf ⊙ f − τ ⊙ w0), ±state_clip)
//! Wm_t  = hd·Wm_{t−1} + (1 − hd)·w_t w_tᵀ               Hebbian workspace memory, hd = workspace_decay
//! p0    = tanh(w_t W_wq)                                W_wq: W×Q
//! key   = σ(p0 K),  qry = σ(p0 Qm)                      K, Qm: Q×M
//! M_t[m] = d·M_{t−1}[m] + (1 − d)·key_m·(p0 ⊙ V[m])     d = memory_decay; V: M×Q
//! p     = mix·p0 + (1 − mix)·tanh(qry M_t)              read after the write
//! y_t   = p W_out                                       W_out: Q×O
//! ```
//!
//! **What the design changes, and why.** The reference (`sgw-amn.c`) trains only `W_out`.
//! Here every parameter — `a_raw`, `bf_raw`, `w_ip`, `comp`, `w_wq`, `k`, `q`, `v`, `w_out` —
//! is trained by full backpropagation through time. The reference routes the winners with
//! weight 1 and never uses the softmax, so nothing reaches the competition weights; here the
//! winners are weighted by the softmax of their scores (times W, so that equal scores route
//! exactly the reference's sum), and gradients reach `Cw` and `W_ip` through the weights and
//! the scores, while the top-W selection itself carries none, as in a mixture-of-experts
//! router. The reference zeroes the workspace at every step, so its "dynamics" have no
//! memory; here `w` carries from step to step (and is clipped, so it stays bounded whatever
//! the trained time constants). The reference reports `0.01·Σ|w|` beside its loss without
//! training on it; here `sparsity_penalty: λ` adds `λ·Σ_i |w_t,i|`, averaged over the
//! window's steps, to the training loss through [`mnnn_core::Cell::aux_loss`] (0 by
//! default: off). The manifold write is an exponential average (`1 − d` weight), as in
//! Hyper-AMN, so an entry stays within the largest `|key·p0·V|` ever written.
//!
//! **Reference mode** (`compat: "reference"`) runs the reference's forward pass: winners with
//! weight 1, the workspace started from zero at every step (`w0` = the routed input), no
//! clip, the manifold written with unit weight; `a`, `bf` are the values themselves. Its
//! winners are chosen by score, which orders them as the reference's softmax does. Its
//! backward pass is the exact gradient of that function.
//!
//! **State** (per sequence): `ws` (W, the workspace; reference mode keeps the last step's
//! for the diagnostics but never reads it), `wm` (W×W, the Hebbian memory), `m` (M×Q, the
//! manifold) and `scores` (P, the last step's competition scores, kept so the routing
//! diagnostics describe the last step; the next step does not read them). Size
//! `workspace + workspace² + manifold·post + pre`.
//!
//! **Diagnostics** (sequence 0), named for what they measure: `active_fraction` — the
//! fraction of workspace units with `|w| > 0.1` (the reference called it "sparsity");
//! `routing_entropy` — the entropy in nats of `softmax(scores / temperature)` over the P
//! units at the last step (0 = one unit takes everything; higher = more uniform, less
//! competitive, the reverse of what the reference's docs say) and `routing_entropy_max` =
//! `ln P`; `bottleneck_rate` = W/P; `manifold_energy` and `workspace_memory_energy` — mean
//! |M| and mean |Wm| (mean absolute values, as AMN's and Hyper-AMN's).
//!
//! **Computation.** One step is one product each for `x W_ip`, `w W_wq`, `p W_out`, two
//! matrix–vector products for the key and query (core's kernels), the top-W selection in a
//! few branch-light passes over the scores (`select.rs`; a mispredicted branch for each score
//! that entered a running top W cost over a quarter of the step on a stream of changing
//! inputs), one pass over the manifold that writes each row and accumulates the read, four
//! rows at a time (`manifold.rs`), and small loops over the workspace; built for AVX-512F,
//! AVX2+FMA or the baseline, chosen at run time through [`mnnn_core::kernels::Path`]. Nothing
//! is allocated per step. The chunked form is the step loop.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_sgw_amn::SgwAmn>();
//! let mut model = entry.create::<f32>(Some("(pre: 8, workspace: 3, post: 6, manifold: 4)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! assert_eq!(model.diagnostics().len(), 6);
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod backward;
mod cell;
mod forward;
mod manifold;
mod naive;
mod params;
mod select;

pub use cell::{Scratch, SgwAmnCell, Tape};
pub use forward::Record;
pub use params::{MAX_SIZE, SgwAmnParams};

use mnnn_core::reference::Compat;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Dims, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The SGW-AMN registry entry.
pub struct SgwAmn;

impl Architecture for SgwAmn {
    const NAME: &'static str = "sgw-amn";
    const FAMILY: Family = Family::Cousin;
    const SUMMARY: &'static str = "Sparse global workspace: GELU units compete for a small recurrent liquid workspace with a Hebbian memory, expanded into an associative manifold";
    const CITATION: &'static str =
        "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), sgw-amn.c: the Sparse Global Workspace";
    const STATE_FORMULA: &'static str =
        "workspace + workspace² + manifold·post + pre (ws, wm, m, scores)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &[
        "active_fraction",
        "routing_entropy",
        "routing_entropy_max",
        "bottleneck_rate",
        "manifold_energy",
        "workspace_memory_energy",
    ];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("pre", 1, MAX_SIZE as u64, 6),
        ParamRange::int("workspace", 1, MAX_SIZE as u64, 4),
        ParamRange::int("post", 1, MAX_SIZE as u64, 5),
        ParamRange::int("manifold", 1, MAX_SIZE as u64, 3),
        ParamRange::float(
            "temperature",
            params::MIN_TEMPERATURE,
            params::MAX_TEMPERATURE,
        ),
        ParamRange::float("sparsity_penalty", 0.0, params::MAX_PENALTY),
        ParamRange::float("dt", params::MIN_DT, 1.0),
        ParamRange::float("memory_decay", 0.0, 1.0),
        ParamRange::float("workspace_decay", 0.0, 1.0),
        ParamRange::float("mix", 0.0, 1.0),
        ParamRange::float("state_clip", params::MIN_CLIP, params::MAX_CLIP),
        ParamRange::choice("compat", Compat::NAMES),
    ];

    type Params = SgwAmnParams;
    type Cell<S: Scalar> = SgwAmnCell<S>;

    fn validate(params: &SgwAmnParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &SgwAmnParams, dims: Dims) -> SgwAmnCell<S> {
        SgwAmnCell::new(params, dims)
    }

    fn state_size(params: &SgwAmnParams, _dims: Dims) -> usize {
        params.workspace
            + params.workspace * params.workspace
            + params.manifold * params.post
            + params.pre
    }

    fn naive(
        params: &SgwAmnParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(SgwAmn);
