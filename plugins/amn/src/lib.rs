//! # AMN — the adaptive memory network
//!
//! Liquid time constants, a diagonal linear recurrent unit (LRU) and an associative memory
//! manifold, read before it is written. For input `x_t` (widths: input I, hidden H,
//! manifold M, output O), in the default `compat: "design"` mode:
//!
//! ```text
//! f_t  = tanh(x_t B)                                       B: I×H
//! A    = softplus(a_raw),  Bf = softplus(bf_raw)            per-neuron rigidity and fluidity (> 0)
//! τ_t  = A + Bf ⊙ |f_t|
//! c_t  = clip(dt·(−τ_t ⊙ h_{t−1} + Bf ⊙ f_t), ±lc_clip)   the liquid neuron's Euler increment
//! Λ    = sigmoid(lambda_raw)                                diagonal, inside (0, 1)
//! s_t  = clip(Λ ⊙ s_{t−1} + c_t + x_t E, ±lru_clip)        E: I×H, the LRU's input term
//! q_t  = tanh(s_t Q)                                        Q: H×M
//! r_t  = q_t M_{t−1}                                        read (before the write)
//! h_t  = mix·s_t + (1 − mix)·r_t
//! y_t  = clip(h_t C + x_t D, ±output_clip)                  C: H×O, D: I×O (skip)
//! k_t  = sigmoid(h_t K),  v_t = h_t V                       K, V: H×M
//! M_t  = clip(memory_decay·M_{t−1} + write_scale·(k_t ⊙ v_t) h_tᵀ, ±manifold_clip)
//! ```
//!
//! `|f|` has derivative `sign(f)` (0 at 0) and a clip has derivative 0 outside its range.
//! Every weight — `a_raw`, `bf_raw`, `lambda_raw`, `b`, `e`, `q`, `c`, `d`, `k`, `v` — is
//! trained by full backpropagation through time; the parametrisations keep `A`, `Bf` > 0
//! and `Λ` in (0, 1) whatever the optimizer does. They are initialised so that
//! `A ∈ U[0.5, 1]`, `Bf ∈ U[0.1, 0.4]`, `Λ ∈ U[0.95, 0.99]`, as in the reference.
//!
//! `compat: "reference"` runs the reference implementation's forward pass (`amn.c`,
//! `amn_forward`): the same equations **without** the LRU input term `x E`, with the whole
//! liquid state `c_t = clip(h_{t−1} + dt·(…))` added to the LRU, and with `A`,
//! `Bf` and `Λ` used as they are — in this mode the parameters `a`, `bf`, `lambda` are the
//! values themselves, not reparametrised. Its constants are this entry's parameters, whose
//! defaults are the reference's values (mix 0.7, clips 10/10/100/5, write scale 0.01). Its
//! backward pass is the exact gradient of that forward pass (the reference's own training
//! was a heuristic; here everything is trained by BPTT in both modes).
//!
//! **State** (per sequence): `h` (H, the combined hidden state of the previous step), `s`
//! (H, the LRU state) and `m` (M×H, the manifold): everything the next step reads, so a reset
//! equals a fresh model and a saved model continues exactly. Size `2·hidden + manifold·hidden`.
//!
//! **Parameters**: `a`/`a_raw` (H), `bf`/`bf_raw` (H), `lambda`/`lambda_raw` (H), `b` (I×H),
//! `c` (H×O), `d` (I×O), `k`, `v`, `q` (H×M each), and in design mode `e` (I×H). Matrices are
//! input-major (`y = x·W`).
//!
//! **Ranges.** `memory_decay ∈ [0.9, 1]` (the reference's own setter clips it to
//! `[0.9, 0.9999]`), `write_scale ∈ [0, 0.1]`, state clips in `[0.1, 20]`, output clip in
//! `[0.1, 1000]`, `dt ∈ [0.001, 1]`, `mix ∈ [0, 1]`. Beyond them the memory either forgets
//! within a step or two or the manifold feedback runs away into the clips, and the loss
//! stops being smooth enough to check its gradients against finite differences.
//!
//! **Why the LRU takes the increment.** The liquid step starts from the previous *combined*
//! `h`. The reference adds the whole stepped state to the LRU, so
//! `s_t ≈ (Λ + mix·(1 − dt·τ))·s_{t−1} + …`: at its initialisation a gain of about 1.6, and
//! `s` runs into `±lru_clip` within about twenty steps even for small inputs (measured), where
//! the clip kills every gradient. The design feeds the LRU the Euler increment instead — the
//! LRU is the integrator — so the gain is `Λ − mix·dt·τ < 1` and the state stays in range.
//! `mnnn compare` on delayed recall shows the difference.
//!
//! **Diagnostics**: `manifold_energy` = mean |M|; `mean_lc_timescale` = mean over neurons of
//! `1/A`, the liquid time scale at rest (`f = 0`; the reference's statistic used the last
//! input's `|f|`, which is not part of the state); `mean_abs_lru` = mean |s|. All from the
//! parameters and the state of sequence 0.
//!
//! **Reference files** (`amn_save`): [`import`] reads them into a `compat: "reference"`
//! model, taking `dt` and `memory_decay` from the header; the file holds the complete state
//! (`h`, `s`, the manifold), so an imported model continues where the reference stopped.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_amn::Amn>();
//! let mut model = entry.create::<f32>(Some("(hidden: 8, manifold: 4)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod cell;
mod naive;
mod params;

pub use cell::{AmnCell, Scratch, Tape};
pub use params::AmnParams;

use mnnn_core::reference::{Compat, Imported, Reader, RefDims};
use mnnn_core::registry::{Architecture, Capability, Family, ImportFn, ParamRange};
use mnnn_core::{Dims, Error, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The AMN registry entry.
pub struct Amn;

impl Architecture for Amn {
    const NAME: &'static str = "amn";
    const FAMILY: Family = Family::Member;
    const SUMMARY: &'static str = "Adaptive memory network: liquid time constants, a diagonal LRU and an associative memory manifold read before it is written";
    const CITATION: &'static str =
        "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), amn.c: the Adaptive Memory Network";
    const STATE_FORMULA: &'static str = "2·hidden + manifold·hidden (h, s, m)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] =
        &["manifold_energy", "mean_lc_timescale", "mean_abs_lru"];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("hidden", 1, params::MAX_SIZE as u64, 6),
        ParamRange::int("manifold", 1, params::MAX_SIZE as u64, 4),
        ParamRange::float("dt", params::MIN_DT, 1.0),
        ParamRange::float("memory_decay", params::MIN_DECAY, 1.0),
        ParamRange::float("mix", 0.0, 1.0),
        ParamRange::float("lc_clip", params::MIN_CLIP, params::MAX_STATE_CLIP),
        ParamRange::float("lru_clip", params::MIN_CLIP, params::MAX_STATE_CLIP),
        ParamRange::float("output_clip", params::MIN_CLIP, params::MAX_OUTPUT_CLIP),
        ParamRange::float("manifold_clip", params::MIN_CLIP, params::MAX_STATE_CLIP),
        ParamRange::float("write_scale", 0.0, params::MAX_WRITE_SCALE),
        ParamRange::choice("compat", Compat::NAMES),
    ];

    type Params = AmnParams;
    type Cell<S: Scalar> = AmnCell<S>;

    fn validate(params: &AmnParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &AmnParams, dims: Dims) -> AmnCell<S> {
        AmnCell::new(params, dims)
    }

    fn state_size(params: &AmnParams, _dims: Dims) -> usize {
        2 * params.hidden + params.manifold * params.hidden
    }

    const IMPORT_REFERENCE: Option<ImportFn> = Some(import);

    fn naive(
        params: &AmnParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(Amn);

/// The size in bytes of a reference AMN file (`amn_save`) for these sizes:
/// `32 + 4·(5H + IH + HO + IO + 4MH)`, or `None` if it overflows.
pub fn reference_file_size(i: usize, h: usize, o: usize, m: usize) -> Option<usize> {
    let floats = h
        .checked_mul(5)?
        .checked_add(i.checked_mul(h)?)?
        .checked_add(h.checked_mul(o)?)?
        .checked_add(i.checked_mul(o)?)?
        .checked_add(m.checked_mul(h)?.checked_mul(4)?)?;
    floats.checked_mul(4)?.checked_add(32)
}

/// Reads a model file of the reference implementation (`amn_save` in `amn.c`):
///
/// ```text
/// int I, H, O, M; f32 learning_rate, dt, memory_decay; int training_steps;
/// f32 A[H], Bf[H], Λ[H], B[I·H], C[H·O], D[I·O], Mf[M·H], K[H·M], V[H·M], Q[H·M], h[H], s[H]
/// ```
///
/// All matrices are stored input-major (`[in][out]`, the manifold `[m][i]`), as here, so none
/// is transposed. The result is a `compat: "reference"` model with `dt` and `memory_decay`
/// from the header and the reference's constants; the learning rate and step counter are not
/// used. The file holds the complete state (`h`, `s` and the manifold `m`), so nothing is
/// left at zero. Errors: `dims.manifold` missing, a file of the wrong length (naming the
/// expected and actual byte counts), header sizes that differ from `dims`, and a `dt` or
/// `memory_decay` outside this entry's ranges (when the model is built).
pub fn import(bytes: &[u8], dims: &RefDims) -> Result<Imported> {
    let (i, h, o) = (dims.input, dims.hidden, dims.output);
    let m = dims
        .manifold
        .ok_or_else(|| Error::Data("an AMN reference file needs the manifold size M".into()))?;
    let size = reference_file_size(i, h, o, m)
        .ok_or_else(|| Error::Data("the reference sizes are too large".into()))?;
    let mut r = Reader::new(bytes, size)?;
    r.expect_i32("input_size", i)?;
    r.expect_i32("hidden_size", h)?;
    r.expect_i32("output_size", o)?;
    r.expect_i32("memory_manifold_size", m)?;
    let _learning_rate = r.f32()?;
    let dt = r.f32()?;
    let decay = r.f32()?;
    let _training_steps = r.i32()?;
    let mut tensors = Vec::new();
    for (name, n) in [
        ("param.a", h),
        ("param.bf", h),
        ("param.lambda", h),
        ("param.b", i * h),
        ("param.c", h * o),
        ("param.d", i * o),
        ("state.m", m * h),
        ("param.k", h * m),
        ("param.v", h * m),
        ("param.q", h * m),
        ("state.h", h),
        ("state.s", h),
    ] {
        tensors.push((name.to_string(), r.f32s(n)?));
    }
    let params = format!(
        "(hidden: {h}, manifold: {m}, dt: {:?}, memory_decay: {:?}, mix: 0.7, lc_clip: 10.0, \
         lru_clip: 10.0, output_clip: 100.0, manifold_clip: 5.0, write_scale: 0.01, \
         compat: \"reference\")",
        f64::from(dt),
        f64::from(decay)
    );
    Ok(Imported { params, tensors })
}
