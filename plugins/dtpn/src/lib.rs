//! # DTPN — the dual-track persistence network
//!
//! A recurrent tanh layer whose output `y` feeds three memory tracks: an **echo** of the
//! previous step's `y` (gain β), a **reservoir** `n` that follows `y` as a leaky average
//! (rate α), and a **global memory matrix** `X` (M × H) written and read every step. The
//! three tracks and `y` are summed into the next hidden state.
//!
//! ## Design mode (`compat: "design"`, the default)
//!
//! The memory matrix is written through a learned key and value and read through a learned
//! query, so what is stored and where it is read from both depend on the input:
//!
//! ```text
//! pre_t = x_t W_in + h_{t−1} U + b_h
//! y_t   = tanh(pre_t) + β e_{t−1}           echo track (lag 1): e_t = y_t
//! n_t   = (1 − α) n_{t−1} + α y_t           reservoir track
//! k_t   = σ(y_t W_k)                        write key, M
//! v_t   = tanh(y_t W_v)                     value, H
//! X_t   = decay · X_{t−1} + k_t v_tᵀ         global memory matrix, M × H
//! q_t   = softmax(y_t W_q)                  read query, M
//! r_t   = q_t X_t                           read after the write, H
//! h_t   = tanh(y_t + n_t + r_t)
//! out_t = h_t W_out + b_out
//! ```
//!
//! The query is a **softmax** over the M rows: the read is a convex combination of memory
//! rows (an attention over slots), so its scale does not grow with M, and the write key
//! stays an independent σ gate per row (several rows may be written at once).
//!
//! ## Reference mode (`compat: "reference"`)
//!
//! The forward pass of the reference implementation (`dtpn.c`, `dtpn_forward`): no hidden
//! bias, a static value matrix `V` (M × H) written row by row under σ gates, and an
//! unaddressed column mean as the read:
//!
//! ```text
//! pre_t = x_t W_in + h_{t−1} U
//! y_t   = tanh(pre_t) + β e_{t−1}           lag-1 echo, e_t = y_t
//! n_t   = (1 − α) n_{t−1} + α y_t
//! k_t   = σ(y_t W_k)                        W_k: H × M
//! X_t   = decay · X_{t−1} + diag(k_t) V     row m gets k_m · V[m, ·]
//! r_t   = (1/M) Σ_m X_t[m, ·]               column mean of the post-write matrix
//! h_t   = tanh(y_t + n_t + r_t)
//! out_t = h_t W_out + b_out
//! ```
//!
//! The reference never trains `V` with a real gradient (it uses σ(0) in place of the key),
//! which is why it calls `V` "static". Here reference mode computes the reference's forward
//! function and trains **every** parameter of it, `V` included, with the true gradient by
//! full backpropagation through time. Models saved by the reference (`dtpn_save`) are read
//! with [`import`] into reference mode.
//!
//! ## State, parameters, diagnostics
//!
//! State (both modes): `h`, `e`, `n` (H each) and `memory` (M × H): everything the next step
//! reads, so a reset equals a freshly built model and a saved model continues exactly. Size:
//! `3·hidden + memory·hidden`.
//!
//! Parameters (all trained), stored input-major (`in × out`):
//! * design: `w_in` (I × H), `u` (H × H), `b_h` (H), `w_k` (H × M), `w_v` (H × H),
//!   `w_q` (H × M), `w_out` (H × O), `b_out` (O);
//! * reference: `w_in` (I × H), `u` (H × H), `w_k` (H × M), `v` (M × H), `w_out` (H × O),
//!   `b_out` (O).
//!
//! `alpha`, `beta` and `memory_decay` are fixed hyper-parameters in `[0, 1]`.
//!
//! Computation: the windowed form (training, batches) runs the input projection of every
//! step as one matrix product, then per step one product for `h U` and one for
//! `y [W_k | W_v | W_q]` over the whole batch; the memory write and read are per-row loops.
//! The backward pass mirrors it, with the parameter gradients as products over all steps.
//! A nonlinear recurrence has no cheaper exact chunked form, so `forward_chunked` is the step
//! loop (the matrix–vector kernel at batch 1).
//!
//! Diagnostics, one per track, for sequence 0: `mean_abs_echo` (mean |e|),
//! `mean_abs_reservoir` (mean |n|) and `matrix_energy` (mean |X|).
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let entry = Entry::of::<mnnn_dtpn::Dtpn>();
//! let mut model = entry.create::<f32>(Some("(hidden: 8, memory: 4)"), &IoSpec::regression(2, 1), 7)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((5, 2))))?;
//! assert_eq!(ys.dim(), (5, 1));
//! assert_eq!(model.diagnostics().len(), 3);
//! # Ok::<(), mnnn_core::Error>(())
//! ```

mod cell;
mod naive;
mod params;

pub use cell::{DtpnCell, Scratch, Tape};
pub use params::{DtpnParams, MAX_SIZE};

use mnnn_core::reference::{Compat, Imported, Reader, RefDims};
use mnnn_core::registry::{Architecture, Capability, Family, ImportFn, ParamRange};
use mnnn_core::{Dims, Error, Result, Scalar, Tensors};
use ndarray::{Array2, ArrayView2};

/// The DTPN registry entry.
pub struct Dtpn;

impl Architecture for Dtpn {
    const NAME: &'static str = "dtpn";
    const FAMILY: Family = Family::Cousin;
    const SUMMARY: &'static str = "Dual-track persistence network: tanh layer with a lag-1 echo, a leaky reservoir and a key/value/query global memory matrix";
    const CITATION: &'static str =
        "MEMORY-NATIVE-NEURAL_NETWORK (hejhdiss), dtpn.c: the Dual-Track Persistence Network";
    const STATE_FORMULA: &'static str = "3·hidden + memory·hidden (h, e, n, memory)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] =
        &["mean_abs_echo", "mean_abs_reservoir", "matrix_energy"];
    const PARAM_RANGES: &'static [ParamRange] = &[
        ParamRange::int("hidden", 1, MAX_SIZE as u64, 6),
        ParamRange::int("memory", 1, MAX_SIZE as u64, 4),
        ParamRange::float("alpha", 0.0, 1.0),
        ParamRange::float("beta", 0.0, 1.0),
        ParamRange::float("memory_decay", 0.0, 1.0),
        ParamRange::choice("compat", Compat::NAMES),
    ];
    const IMPORT_REFERENCE: Option<ImportFn> = Some(import);

    type Params = DtpnParams;
    type Cell<S: Scalar> = DtpnCell<S>;

    fn validate(params: &DtpnParams) -> Result<()> {
        params.validate()
    }

    fn build<S: Scalar>(params: &DtpnParams, dims: Dims) -> DtpnCell<S> {
        DtpnCell::new(params, dims)
    }

    fn state_size(params: &DtpnParams, _dims: Dims) -> usize {
        let h = params.hidden;
        h.saturating_mul(3)
            .saturating_add(params.memory.saturating_mul(h))
    }

    fn naive(
        params: &DtpnParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        naive::naive(params, dims, weights, state, xs)
    }
}

mnnn_core::register!(Dtpn);

/// Bytes of a reference DTPN file (`dtpn_save`) for these sizes:
/// `36 + 4·(IH + H² + HO + O + 3MH + 3H)`, or `None` if that overflows.
pub fn reference_file_size(i: usize, h: usize, o: usize, m: usize) -> Option<usize> {
    let floats = [
        i.checked_mul(h)?,
        h.checked_mul(h)?,
        h.checked_mul(o)?,
        o,
        m.checked_mul(h)?.checked_mul(3)?,
        h.checked_mul(3)?,
    ]
    .into_iter()
    .try_fold(0usize, |a, v| a.checked_add(v))?;
    floats.checked_mul(4)?.checked_add(36)
}

/// Reads a model file of the reference implementation (`dtpn_save`, `dtpn.c:638-720`):
///
/// ```text
/// int32 I, H, O, M; f32 β, α, decay, η; int32 steps;
/// f32 W_in[I·H], U[H·H], W_out[H·O], b_out[O], K[H·M], V[M·H], e[H], n[H], Mx[M·H], h[H]
/// ```
///
/// Every matrix is already stored input-major (`W_in[i·H + h]`, `U[h2·H + h]` source-major,
/// `W_out[h·O + o]`, `K[h·M + m]`, `V[m·H + h]`, `Mx[m·H + h]`), so nothing is transposed.
/// The header's sizes must equal `dims` (`dims.manifold` is M); β, α and decay become the
/// params (in reference mode); the learning rate η and the step count are not used. The
/// file holds the complete forward state (`e`, `n`, `Mx`, `h`), so an imported model
/// continues exactly where the reference stopped; nothing is left at zero.
pub fn import(bytes: &[u8], dims: &RefDims) -> Result<Imported> {
    let (i, h, o) = (dims.input, dims.hidden, dims.output);
    let m = dims.manifold.ok_or_else(|| {
        Error::Data("a DTPN reference file needs the memory-matrix rows M (manifold)".into())
    })?;
    let expected = reference_file_size(i, h, o, m)
        .ok_or_else(|| Error::Data(format!("sizes I={i} H={h} O={o} M={m} are too large")))?;
    let mut r = Reader::new(bytes, expected)?;
    r.expect_i32("input size I", i)?;
    r.expect_i32("hidden size H", h)?;
    r.expect_i32("output size O", o)?;
    r.expect_i32("memory rows M", m)?;
    let beta = r.f32()?;
    let alpha = r.f32()?;
    let decay = r.f32()?;
    let _learning_rate = r.f32()?;
    let _steps = r.i32()?;
    let params = DtpnParams {
        hidden: h,
        memory: m,
        alpha: f64::from(alpha),
        beta: f64::from(beta),
        memory_decay: f64::from(decay),
        compat: Compat::Reference,
    };
    params.validate()?;
    let mut tensors = Vec::with_capacity(10);
    for (name, len) in [
        ("param.w_in", i * h),
        ("param.u", h * h),
        ("param.w_out", h * o),
        ("param.b_out", o),
        ("param.w_k", h * m),
        ("param.v", m * h),
        ("state.e", h),
        ("state.n", h),
        ("state.memory", m * h),
        ("state.h", h),
    ] {
        tensors.push((name.to_string(), r.f32s(len)?));
    }
    Ok(Imported {
        params: format!(
            "(hidden: {h}, memory: {m}, alpha: {:?}, beta: {:?}, memory_decay: {:?}, compat: \"reference\")",
            params.alpha, params.beta, params.memory_decay
        ),
        tensors,
    })
}
