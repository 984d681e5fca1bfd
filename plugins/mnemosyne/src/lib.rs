//! # MNEMOSYNE — a memory that is a small network trained at inference time
//!
//! Each head of each block keeps a small network `f(·; φ)` whose weights `φ` are the
//! recurrent state. Reading is a forward pass on the query; writing is a gradient step on the
//! inner loss `ℓ = ½‖f(k) − τ(v)‖²` that binds the token's key to its value:
//!
//! ```text
//! u_t = ∇_φ ℓ(φ'; k_t, v_t)          (φ' = the weights at the start of the token's chunk)
//! S_t = η_t S_{t−1} − θ_t g_t u_t     (momentum: Titans' past surprise)
//! φ_t = (1 − α_t)^{g_t} φ_{t−1} + S_t  (forgetting, skipped with the write)
//! o_t = f(q_t; φ_t)                   (read after write)
//! ```
//!
//! `θ_t` (inner learning rate), `α_t` (forget gate, parametrised in log space) and `η_t`
//! (momentum) are functions of the token; `g_t` is the surprise gate, a sigmoid of the
//! normalised prediction error `s_t = ‖f(k_t) − τ_t‖ / ‖τ_t‖` against a learned threshold and
//! temperature. The same `s_t` ranks tokens for the sparse sidecar, a `K`-entry cache of the
//! most surprising (key, value) pairs that each head also attends to.
//!
//! Queries and keys are ℓ2-normalised per head. Memories: `linear` (`f(k) = kW`, the delta
//! rule), `ttt_linear` (`k + LN(kW + b)`) and `mlp` (`k + LN(gelu(kW₁ + b₁)W₂ + b₂)`, hidden
//! `4d`); `update: "last_layer"` keeps the MLP's first layer a slow parameter.
//!
//! **Forms.** `chunk: 1` is `SequentialTTT`, the sequential recursion. `chunk: b` is
//! `ChunkedTTT`: every gradient inside a chunk of `b` tokens is taken at the chunk's starting
//! weights, which lets a whole chunk be computed with matrix products (the dual form). `b` is
//! part of the operator — the step loop keeps the chunk's starting weights in its state and
//! computes the same function token by token — so the chunked form equals the step loop at
//! every `b`, and equals the sequential recursion at `b = 1`. For the linear memory without
//! momentum and gate, `chunk: 1` runs in chunks by the delta rule's exact algorithm (a
//! triangular solve per chunk), equal to the sequential recursion at every block size.
//!
//! **Training** differentiates through the inner updates (the meta-gradient): every forward
//! is recorded on a small tape of matrix primitives (`tape`), whose vector–Jacobian
//! products are checked against finite differences; the memory's own gradient inside the
//! forward is differentiated like any other expression.
//!
//! The state is the fast weights (and their momentum and chunk-start copy) and the sidecar;
//! its size is fixed by the configuration (see [`state_size`]).
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_mnemosyne::Mnemosyne>();
//! let params = "(layers: 1, heads: 2, head_dim: 4, memory: \"linear\", chunk: 4, sidecar: 2)";
//! let mut model = entry.create::<f32>(Some(params), &IoSpec::regression(3, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((10, 3))))?;
//! assert_eq!(ys.dim(), (10, 1));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

#[cfg(test)]
mod batch_tests;
mod cell;
mod decode;
#[cfg(test)]
mod forms_tests;
mod memory;
mod params;
mod program;
pub mod reference;
mod schedule;
mod shapes;
mod sidecar;
pub mod standalone;
pub mod tape;

pub use cell::{EXACT_BLOCK, MnemosyneCell};
pub use decode::DecodeScratch;
pub use params::{Gate, MAX_LR, Memory, MnemosyneParams, Update};
pub use shapes::state_size;

use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Dims, Result, Scalar};

/// The MNEMOSYNE registry entry.
pub struct Mnemosyne;

impl Architecture for Mnemosyne {
    const NAME: &'static str = "mnemosyne";
    const FAMILY: Family = Family::Member;
    const SUMMARY: &'static str = "Test-time-training memory: per-head networks written by gradient steps on a key–value loss, surprise-gated, with a top-K sidecar";
    const CITATION: &'static str = "MNEMOSYNE (mnnn). After TTT (Sun et al. 2024), Titans (Behrouz et al. 2025), the delta rule (Schlag et al. 2021) and Gated DeltaNet (Yang et al. 2025)";
    const STATE_FORMULA: &'static str = "layers·heads·(|φ|·(1 + momentum + [chunk>1]) + sidecar·(2·head_dim + 2)) + [chunk>1]; |φ| = d² (linear), d²+d (ttt_linear), 8d²+5d (mlp), 4d²+d (mlp, last_layer)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] =
        &["mean_abs_memory", "sidecar_fill", "sidecar_mean_score"];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("layers", 1, 64, 2),
        ParamRange::int("heads", 1, 64, 2),
        // LayerNorm over two or three features (the TTT memories) is nearly a sign
        // function, too curved for the suite's finite differences: draw from 4.
        ParamRange::int_drawn("head_dim", 1, 1024, 4, 4),
        ParamRange::choice("memory", Memory::NAMES),
        ParamRange::choice("update", Update::NAMES),
        ParamRange::int("chunk", 1, 4096, 4),
        ParamRange::float("lr", 0.0, MAX_LR),
        ParamRange::flag("momentum"),
        ParamRange::flag("forget"),
        ParamRange::choice("gate", Gate::NAMES),
        ParamRange::int("sidecar", 0, 4096, 3),
        ParamRange::int("ffn", 0, 16, 2),
    ];

    type Params = MnemosyneParams;
    type Cell<S: Scalar> = MnemosyneCell<S>;

    fn validate(params: &MnemosyneParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &MnemosyneParams, dims: Dims) -> MnemosyneCell<S> {
        MnemosyneCell::new(params, dims)
    }

    fn state_size(params: &MnemosyneParams, _dims: Dims) -> usize {
        state_size(params)
    }
}

mnnn_core::register!(Mnemosyne);
