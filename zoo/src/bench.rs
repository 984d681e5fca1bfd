//! Throughput and memory of entries, as `mnnn bench` reports them.

use mnnn_core::train::StatePolicy;
use mnnn_core::{
    Dataset, DynModel, Entry, Inputs, IoSpec, Result, Rng, Sequence, Targets, TrainConfig,
};
use ndarray::Array2;
use serde::Serialize;
use std::time::Instant;

/// Input and output widths every entry is benchmarked at.
pub const INPUT: usize = 16;
/// Output width.
pub const OUTPUT: usize = 4;

/// Speeds of one entry at one width and batch.
#[derive(Clone, Debug, Serialize)]
pub struct Speed {
    /// Entry name.
    pub entry: String,
    /// Hidden width (None for entries without one).
    pub hidden: Option<usize>,
    /// Sequences side by side.
    pub batch: usize,
    /// Parameters.
    pub params: usize,
    /// Bytes of f32 state per sequence.
    pub state_bytes: usize,
    /// Tokens per second through the batched step (per-token path).
    pub step_tokens_per_second: f64,
    /// Tokens per second through the chunked (windowed) form.
    pub chunked_tokens_per_second: f64,
    /// Tokens per second of full-BPTT training (window 64, Adam).
    pub train_tokens_per_second: f64,
}

/// Peak resident memory while streaming ever longer, batch 1.
#[derive(Clone, Debug, Serialize)]
pub struct Flatness {
    /// Entry name.
    pub entry: String,
    /// `(tokens streamed, peak RSS in MiB so far)`.
    pub points: Vec<(usize, f64)>,
}

fn model(entry: &Entry, hidden: Option<usize>) -> Result<Box<dyn DynModel<f32>>> {
    let params = match hidden {
        Some(h) if entry.param_ranges.iter().any(|r| r.name == "hidden") => {
            Some(format!("(hidden: {h})"))
        }
        _ => None,
    };
    entry.create::<f32>(params.as_deref(), &IoSpec::regression(INPUT, OUTPUT), 0)
}

fn inputs(rng: &mut Rng, len: usize) -> Inputs<f32> {
    Inputs::Real(Array2::from_shape_fn((len, INPUT), |_| rng.normal() as f32))
}

/// Repeats `f` until at least 0.2 s have passed; returns seconds per call.
fn time(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    let start = Instant::now();
    let mut n = 0;
    while n < 3 || start.elapsed().as_secs_f64() < 0.2 {
        f()?;
        n += 1;
    }
    Ok(start.elapsed().as_secs_f64() / n as f64)
}

/// Measures `entry` at `hidden` with `batch` sequences of `len` steps.
pub fn speed(entry: &Entry, hidden: Option<usize>, batch: usize, len: usize) -> Result<Speed> {
    let m = model(entry, hidden)?;
    m.check_memory("the benchmark's sequences", batch, len)?;
    let mut rng = Rng::new(1);
    let xs: Vec<Inputs<f32>> = (0..batch).map(|_| inputs(&mut rng, len)).collect();
    let step = time(|| m.stream_batch(&xs).map(drop))?;
    let chunked = time(|| m.predict_batch(&xs).map(drop))?;
    let data = Dataset {
        io: m.meta().io.clone(),
        sequences: xs
            .iter()
            .map(|x| Sequence {
                inputs: x.clone(),
                targets: Targets::Real(Array2::from_shape_fn((len, OUTPUT), |_| {
                    rng.normal() as f32
                })),
                mask: None,
            })
            .collect(),
    };
    let cfg = TrainConfig {
        epochs: 1_000_000,
        batch_size: batch,
        window: 64,
        state: StatePolicy::Reset,
        validation: 0.0,
        patience: 0,
        max_updates: 20,
        ..TrainConfig::default()
    };
    let mut t = m.clone();
    let report = t.fit(&data, &cfg, &mut |_| {})?;
    let tokens = (batch * len) as f64;
    Ok(Speed {
        entry: entry.name.to_string(),
        hidden: hidden.filter(|_| entry.param_ranges.iter().any(|r| r.name == "hidden")),
        batch,
        params: m.params().data().len(),
        state_bytes: 4 * m.state_size(),
        step_tokens_per_second: tokens / step,
        chunked_tokens_per_second: tokens / chunked,
        train_tokens_per_second: report.tokens_per_second,
    })
}

/// Streams `entry` (default size) one token at a time up to each of `lengths` (ascending),
/// in pieces of 4096 steps, and reads the process's peak RSS at each (Linux; `None`
/// elsewhere). A memory that does not grow gives a flat line.
pub fn flatness(entry: &Entry, lengths: &[usize]) -> Result<Option<Flatness>> {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        return Ok(None);
    }
    let mut m = model(entry, None)?;
    let mut rng = Rng::new(2);
    let piece = inputs(&mut rng, 4096);
    let mut done = 0;
    let mut points = Vec::new();
    for &target in lengths {
        while done < target {
            let n = (target - done).min(4096);
            let x = if n == 4096 {
                piece.clone()
            } else {
                piece.slice(0, n)
            };
            m.predict(&x)?;
            done += n;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        match kb {
            Some(kb) => points.push((target, kb / 1024.0)),
            None => return Ok(None),
        }
    }
    Ok(Some(Flatness {
        entry: entry.name.to_string(),
        points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something_and_more_work_takes_longer() {
        let e = crate::find("amrc").unwrap();
        let small = speed(e, Some(8), 1, 64).unwrap();
        let big = speed(e, Some(256), 4, 64).unwrap();
        assert!(small.step_tokens_per_second > 0.0 && small.train_tokens_per_second > 0.0);
        assert_eq!(small.state_bytes, 4 * 16);
        assert!(big.params > small.params);
        // 32× the hidden units per token cannot be faster per token
        assert!(big.step_tokens_per_second < small.step_tokens_per_second * 4.0);
        if let Some(f) = flatness(e, &[1024, 8192]).unwrap() {
            assert_eq!(f.points.len(), 2);
            assert!(f.points[1].1 >= f.points[0].1);
        }
    }
}
