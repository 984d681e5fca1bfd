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
    // The batched step path: alone it is the step loop exactly; in a batch of three it computes
    // the same function (within the tolerance: several rows take matrix products).
    let alone = m
        .stream_batch(std::slice::from_ref(&x))
        .map_err(|e| format!("stream_batch: {e}"))?;
    same_bits(&alone[0], &seq)
        .map_err(|e| format!("stream_batch of one sequence vs predict: {e}"))?;
    let others = [
        x.clone(),
        case.inputs::<f64>("chunked-2", case.len + 2, case.input),
        case.inputs::<f64>("chunked-3", 1, case.input),
    ];
    let batch = m
        .stream_batch(&others)
        .map_err(|e| format!("stream_batch: {e}"))?;
    let window = m
        .predict_batch(&others)
        .map_err(|e| format!("predict_batch: {e}"))?;
    for k in 0..3 {
        let err = rel_diff(&batch[k], &window[k]);
        if !within(err, entry.chunked_tolerance.max(1e-10)) {
            return Err(format!(
                "sequence {k}: the batched step path is {err:e} from the windowed path"
            ));
        }
    }
    let err = rel_diff(&batch[0], &seq);
    if !within(err, 1e-10) {
        return Err(format!(
            "the batched step path is {err:e} from the step loop"
        ));
    }
    let mut a = m.clone();
    let head = run(a.as_mut(), &x.slice(0, case.cut), o)?;
    let tail = run(a.as_mut(), &x.slice(case.cut, case.len), o)?;
    same_bits(&stack(&head, &tail), &seq).map_err(|e| format!("stream split at {}: {e}", case.cut))
}
