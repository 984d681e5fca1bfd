//! The chunked form against the step loop, and a stream split anywhere against one pass.

use super::{Check, model, rel_diff, run, same_bits, stack, within};
use crate::case::Case;
use mnnn_core::registry::Entry;

/// The chunk sizes every entry is checked at (plus the whole sequence).
pub const CHUNKS: [usize; 4] = [1, 2, 7, 64];

/// The property on one case (f64).
pub fn check(entry: &Entry, case: &Case) -> Check {
    let o = case.output;
    let m = model::<f64>(entry, case, case.seed)?;
    let x = case.inputs::<f64>("chunked", case.len, case.input);
    let seq = run(m.clone().as_mut(), &x, o)?;
    for chunk in CHUNKS.into_iter().chain([case.len]) {
        let ch = m
            .clone()
            .predict_chunked(&x, chunk)
            .map_err(|e| format!("predict_chunked: {e}"))?;
        if ch.dim() != seq.dim() {
            return Err(format!(
                "chunk {chunk}: shape {:?} vs {:?}",
                ch.dim(),
                seq.dim()
            ));
        }
        let err = rel_diff(&ch, &seq);
        if !within(err, entry.chunked_tolerance) {
            return Err(format!(
                "chunk {chunk}: relative distance {err:e} from the step loop exceeds {:e}",
                entry.chunked_tolerance
            ));
        }
    }
    let mut a = m.clone();
    let head = run(a.as_mut(), &x.slice(0, case.cut), o)?;
    let tail = run(a.as_mut(), &x.slice(case.cut, case.len), o)?;
    same_bits(&stack(&head, &tail), &seq).map_err(|e| format!("stream split at {}: {e}", case.cut))
}
