//! Speed and memory of one run alone.

use super::TaskData;
use mnnn_core::{DynModel, Inputs, Result};
use ndarray::{Axis, concatenate};
use std::time::Instant;

/// How a program reads its heap: the comparison resets the mark before the solo run and
/// reads it after, so each row's figure is that run's own, whatever ran before it.
///
/// A counting global allocator supplies it (the `mnnn` binary has one); the library cannot
/// install a global allocator for its users.
#[derive(Clone, Copy, Debug)]
pub struct MemoryProbe {
    /// Sets the peak to the bytes live now and returns them.
    pub reset: fn() -> usize,
    /// The peak of live heap bytes since the last reset.
    pub peak: fn() -> usize,
}

impl MemoryProbe {
    /// Runs `f` and returns its result with the most heap it held at once above what was
    /// live before, MiB. Other threads' allocations count too: only call it when nothing
    /// else runs.
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, f64) {
        let before = (self.reset)();
        let r = f();
        let peak = (self.peak)().saturating_sub(before);
        (r, peak as f64 / (1024.0 * 1024.0))
    }
}

/// Streaming batch-1 inference speed over about 2048 steps of test inputs.
pub(super) fn inference_speed(m: &mut dyn DynModel<f32>, data: &TaskData) -> Result<f64> {
    let seqs = &data.tests[0].data.sequences;
    let stream: Inputs<f32> = match &seqs[0].inputs {
        Inputs::Real(_) => {
            let parts: Vec<_> = seqs
                .iter()
                .cycle()
                .scan(0usize, |n, s| {
                    (*n < 2048).then(|| {
                        *n += s.len();
                        s.inputs.clone()
                    })
                })
                .filter_map(|i| {
                    if let Inputs::Real(a) = i {
                        Some(a.mapv(|v| v as f32))
                    } else {
                        None
                    }
                })
                .collect();
            let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
            Inputs::Real(concatenate(Axis(0), &views).expect("same width"))
        }
        Inputs::Tokens(_) => {
            let mut t = Vec::new();
            for s in seqs.iter().cycle() {
                if let Inputs::Tokens(x) = &s.inputs {
                    t.extend_from_slice(x);
                }
                if t.len() >= 2048 {
                    break;
                }
            }
            t.truncate(1 << 16);
            Inputs::Tokens(t)
        }
    };
    m.reset_state();
    let start = Instant::now();
    m.predict(&stream)?;
    let secs = start.elapsed().as_secs_f64();
    m.reset_state();
    Ok(stream.len() as f64 / secs.max(1e-9))
}
