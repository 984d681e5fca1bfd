//! Same seed, same model; another seed, another model; a batch equals its sequences run alone.

use super::{Check, model, same_bits};
use crate::case::Case;
use mnnn_core::registry::Entry;

/// The property on one case (f64).
pub fn check(entry: &Entry, case: &Case) -> Check {
    let a = model::<f64>(entry, case, case.seed)?;
    let b = model::<f64>(entry, case, case.seed)?;
    if a.params()
        .data()
        .iter()
        .zip(b.params().data())
        .any(|(x, y)| x.to_bits() != y.to_bits())
    {
        return Err(format!(
            "two models built with seed {} have different weights",
            case.seed
        ));
    }
    let other = model::<f64>(entry, case, case.seed + 1)?;
    if a.params() == other.params() {
        return Err(format!(
            "seeds {} and {} give identical weights: the seed is ignored",
            case.seed,
            case.seed + 1
        ));
    }
    let x = case.inputs::<f64>("determinism", case.len, case.input);
    same_bits(
        &a.clone().predict(&x).map_err(|e| e.to_string())?,
        &b.clone().predict(&x).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("same seed, different outputs: {e}"))?;
    let seqs = [
        x.clone(),
        case.inputs::<f64>("determinism-2", (case.len / 2).max(1), case.input),
        case.inputs::<f64>("determinism-3", case.len + 3, case.input),
    ];
    let batched = a
        .predict_batch(&seqs)
        .map_err(|e| format!("predict_batch: {e}"))?;
    for (k, s) in seqs.iter().enumerate() {
        let alone = a
            .predict_batch(std::slice::from_ref(s))
            .map_err(|e| format!("predict_batch: {e}"))?;
        same_bits(&batched[k], &alone[0])
            .map_err(|e| format!("sequence {k} in a batch of 3 vs alone: {e}"))?;
    }
    Ok(())
}
