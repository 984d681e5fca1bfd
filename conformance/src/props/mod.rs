//! The properties, one module each, and what they share.

pub mod bad_input;
pub mod chunked;
pub mod config;
pub mod determinism;
pub mod diagnostics;
pub mod gradients;
pub mod growth;
pub mod persistence;
pub mod reference;

use crate::case::Case;
use mnnn_core::registry::Entry;
use mnnn_core::{DynModel, Inputs, Scalar};
use ndarray::{Array2, Axis, concatenate};

/// What a property check returns: `Err` carries what went wrong.
pub type Check = Result<(), String>;

/// The case's model in `S`.
pub fn model<S: Scalar>(
    entry: &Entry,
    case: &Case,
    seed: u64,
) -> Result<Box<dyn DynModel<S>>, String> {
    entry
        .create::<S>(Some(&case.params), &case.io(), seed)
        .map_err(|e| format!("valid params were refused: {e}"))
}

/// Steps `a..b` of real inputs.
pub fn slice<S: Scalar>(x: &Inputs<S>, a: usize, b: usize) -> Inputs<S> {
    x.slice(a, b)
}

/// Runs `x` through `m`, treating an empty piece as producing no rows.
pub fn run<S: Scalar>(
    m: &mut dyn DynModel<S>,
    x: &Inputs<S>,
    width: usize,
) -> Result<Array2<S>, String> {
    if x.is_empty() {
        return Ok(Array2::zeros((0, width)));
    }
    m.predict(x).map_err(|e| format!("predict failed: {e}"))
}

/// Rows of `a` then rows of `b`.
pub fn stack<S: Scalar>(a: &Array2<S>, b: &Array2<S>) -> Array2<S> {
    concatenate(Axis(0), &[a.view(), b.view()]).expect("same width")
}

/// Bitwise equality (NaN equals the same NaN); on difference, where.
pub fn same_bits<S: Scalar>(a: &Array2<S>, b: &Array2<S>) -> Result<(), String> {
    if a.dim() != b.dim() {
        return Err(format!("shapes differ: {:?} vs {:?}", a.dim(), b.dim()));
    }
    for ((idx, x), y) in a.indexed_iter().zip(b.iter()) {
        if x.as_f64().to_bits() != y.as_f64().to_bits() {
            return Err(format!(
                "first difference at step {}, output {}: {} vs {}",
                idx.0, idx.1, x, y
            ));
        }
    }
    Ok(())
}

/// `‖a − b‖ / max(‖b‖, tiny)`.
pub fn rel_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let num = (a - b).mapv(|v| v * v).sum().sqrt();
    let den = b.mapv(|v| v * v).sum().sqrt().max(1e-300);
    num / den
}

/// Whether a measured error is within `tol` (NaN never is).
pub fn within(err: f64, tol: f64) -> bool {
    err <= tol
}
