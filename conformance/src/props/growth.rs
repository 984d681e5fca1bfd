//! Nothing grows with the stream: state shapes, serialized size, the heap; and the declared
//! state size is what the model holds.

use super::{Check, model};
use crate::alloc::thread_net_bytes;
use crate::case::Case;
use mnnn_core::registry::Entry;
use mnnn_core::{Dims, DynModel};

/// Steps of the long stream whose state is compared with the state after 10 steps.
pub const LONG: usize = 100_000;
/// Streaming steps watched by the counting allocator, after a warm-up.
pub const WATCHED: usize = 10_000;
/// Net heap bytes tolerated over the watched steps (allocator bookkeeping noise).
pub const SLACK: i64 = 1024;

fn shapes(m: &dyn DynModel<f32>) -> Vec<Vec<usize>> {
    m.state()
        .layout()
        .entries()
        .iter()
        .map(|e| e.shape.clone())
        .collect()
}

/// The property on one case (f32, the streaming type).
pub fn check(entry: &Entry, case: &Case) -> Check {
    let mut m = model::<f32>(entry, case, case.seed)?;
    let dims = Dims {
        input: case.input,
        output: case.output,
    };
    let declared = (entry.state_size)(&case.params, dims).map_err(|e| e.to_string())?;
    if declared != m.state_size() {
        return Err(format!(
            "declared state size {declared} ({}) but the model holds {}",
            entry.state_formula,
            m.state_size()
        ));
    }
    let chunk = case.inputs::<f32>("growth", 100, case.input);
    let ten = case.inputs::<f32>("growth-10", 10, case.input);
    let step = |m: &mut Box<dyn DynModel<f32>>, x| {
        m.predict(x).map(drop).map_err(|e| format!("predict: {e}"))
    };
    step(&mut m, &ten)?;
    // A state that grows (a key–value cache) shows it at once; saying so here, before the
    // long stream, keeps the failing case (and its shrinking) fast.
    if m.state_size() != declared {
        return Err(format!(
            "the state grew: declared {declared} ({}), but the model holds {} after 10 steps",
            entry.state_formula,
            m.state_size()
        ));
    }
    let (shape10, bytes10) = (
        shapes(m.as_ref()),
        m.to_bytes().map_err(|e| e.to_string())?.len(),
    );
    for _ in 0..10 {
        step(&mut m, &chunk)?; // warm-up, and the first of the long stream
    }
    let before =
        thread_net_bytes().ok_or("no CountingAllocator is installed as the global allocator")?;
    for _ in 0..WATCHED / 100 {
        step(&mut m, &chunk)?;
    }
    let after = thread_net_bytes().ok_or("the counting allocator disappeared")?;
    if after - before > SLACK {
        return Err(format!(
            "the heap grew by {} bytes over {WATCHED} streaming steps",
            after - before
        ));
    }
    let mut done = 10 + 100 * (10 + WATCHED / 100);
    while done < LONG {
        step(&mut m, &chunk)?;
        done += 100;
    }
    let (shape_long, bytes_long) = (
        shapes(m.as_ref()),
        m.to_bytes().map_err(|e| e.to_string())?.len(),
    );
    if shape_long != shape10 {
        return Err(format!(
            "state shapes changed from {shape10:?} to {shape_long:?}"
        ));
    }
    if bytes_long != bytes10 {
        return Err(format!(
            "serialized model grew from {bytes10} to {bytes_long} bytes"
        ));
    }
    Ok(())
}
