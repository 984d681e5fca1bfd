//! Every form of the entry against its naive f64 token loop ([`Architecture::naive`]): the
//! equations written once more, sharing no code with the fast path. The other properties
//! compare the entry's forms with one another, and those share helpers; a term wrong in every
//! form alike shows only here.
//!
//! [`Architecture::naive`]: mnnn_core::registry::Architecture::naive

use super::{Check, model, rel_diff, run, within};
use crate::case::Case;
use mnnn_core::cell::Dims;
use mnnn_core::registry::Entry;
use mnnn_core::{Inputs, IoSpec, Rng, Tensors};
use ndarray::{Array2, Ix1, Ix2};

/// Largest relative distance (f64) of a form from the naive loop.
pub const TOLERANCE: f64 = 1e-10;

/// The chunk sizes checked (plus the whole piece).
const CHUNKS: [usize; 3] = [1, 3, 16];

/// Every parameter moved off its initial value (`v·(1 + 0.2u) + 0.05n`, `u` uniform in ±1,
/// `n` standard normal): a tensor initialised to zeros or the identity would hide a wrong
/// term that multiplies it.
fn perturbed(params: &Tensors<f64>, seed: u64) -> Tensors<f64> {
    let mut rng = Rng::derive(seed, "reference-params");
    let mut p = params.clone();
    for v in p.data_mut() {
        *v = *v * (1.0 + 0.2 * rng.uniform_in(-1.0, 1.0)) + 0.05 * rng.normal();
    }
    p
}

fn real(x: &Inputs<f64>) -> &Array2<f64> {
    match x {
        Inputs::Real(a) => a,
        Inputs::Tokens(_) => unreachable!("the suite's cases are real-valued"),
    }
}

/// The naive loop from `state` over `x`, through the wrapper's head (`y = yc·W + b`; the
/// fresh model's normalisation is the identity).
fn expected(
    entry: &Entry,
    case: &Case,
    params: &Tensors<f64>,
    state: &Tensors<f64>,
    x: &Inputs<f64>,
) -> Result<Array2<f64>, String> {
    let dims = Dims {
        input: case.input,
        output: case.output,
    };
    let yc = (entry.naive)(&case.params, dims, params, state, real(x).view())
        .map_err(|e| format!("naive: {e}"))?
        .ok_or("the entry supplies no naive loop")?;
    if yc.dim() != (x.len(), case.output) {
        return Err(format!(
            "the naive loop wrote {:?} rows for {} steps of width {}",
            yc.dim(),
            x.len(),
            case.output
        ));
    }
    let tensor = |name: &str| {
        params
            .get(name)
            .ok_or(format!("the model has no '{name}'"))
            .map(|t| t.to_owned())
    };
    let w = tensor("head.w")?
        .into_dimensionality::<Ix2>()
        .map_err(|e| e.to_string())?;
    let b = tensor("head.b")?
        .into_dimensionality::<Ix1>()
        .map_err(|e| e.to_string())?;
    Ok(yc.dot(&w) + &b)
}

fn compare(what: &str, got: &Array2<f64>, want: &Array2<f64>, tol: f64) -> Check {
    if got.dim() != want.dim() {
        return Err(format!("{what}: shape {:?} vs {:?}", got.dim(), want.dim()));
    }
    let err = rel_diff(got, want);
    if within(err, tol) {
        Ok(())
    } else {
        Err(format!(
            "{what}: relative distance {err:e} from the naive loop exceeds {tol:e}"
        ))
    }
}

/// The property on one case (f64).
pub fn check(entry: &Entry, case: &Case) -> Check {
    let o = case.output;
    let mut m = model::<f64>(entry, case, case.seed)?;
    let params = perturbed(m.params(), case.seed);
    m.set_params(&params)
        .map_err(|e| format!("set_params: {e}"))?;
    m.reset_state();
    let fresh = m.state().clone();
    let x = case.inputs::<f64>("reference", case.len, case.input);
    // The step loop and the windowed path from a fresh state.
    let want = expected(entry, case, &params, &fresh, &x)?;
    compare("step", &run(m.clone().as_mut(), &x, o)?, &want, TOLERANCE)?;
    let windowed = m
        .predict_batch(std::slice::from_ref(&x))
        .map_err(|e| format!("predict_batch: {e}"))?;
    compare("windowed", &windowed[0], &want, TOLERANCE)?;
    // From a state the stream left (after `cut` steps), step by step and in chunks.
    let mut warm = m.clone();
    run(warm.as_mut(), &x.slice(0, case.cut), o)?;
    let rest = x.slice(case.cut, case.len);
    if !rest.is_empty() {
        let want = expected(entry, case, &params, warm.state(), &rest)?;
        compare(
            "step from a carried state",
            &run(warm.clone().as_mut(), &rest, o)?,
            &want,
            TOLERANCE,
        )?;
        let tol = TOLERANCE.max(entry.chunked_tolerance);
        for chunk in CHUNKS.into_iter().chain([rest.len()]) {
            let got = warm
                .clone()
                .predict_chunked(&rest, chunk)
                .map_err(|e| format!("predict_chunked: {e}"))?;
            compare(&format!("chunk {chunk}"), &got, &want, tol)?;
        }
    }
    // Three sequences of different lengths side by side, each from a fresh state.
    let xs = [
        x.clone(),
        case.inputs::<f64>("reference-2", case.len + 3, case.input),
        case.inputs::<f64>("reference-3", 1, case.input),
    ];
    let batched = m
        .stream_batch(&xs)
        .map_err(|e| format!("stream_batch: {e}"))?;
    for (k, (got, x)) in batched.iter().zip(&xs).enumerate() {
        let want = expected(entry, case, &params, &fresh, x)?;
        compare(&format!("batched, sequence {k}"), got, &want, TOLERANCE)?;
    }
    Ok(())
}

/// Whether `entry` supplies a naive loop: asked once on its default parameters.
pub fn supplied(entry: &Entry) -> Result<bool, String> {
    let io = IoSpec::regression(1, 1);
    let m = entry
        .create::<f64>(None, &io, 0)
        .map_err(|e| format!("the default model: {e}"))?;
    let params = (entry.default_params)();
    let dims = Dims {
        input: 1,
        output: 1,
    };
    let x = Array2::zeros((2, 1));
    (entry.naive)(&params, dims, m.params(), m.state(), x.view())
        .map(|y| y.is_some())
        .map_err(|e| e.to_string())
}
