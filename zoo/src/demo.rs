//! The built-in demonstration data: a series whose target depends on earlier inputs, so
//! memory is needed to predict it.

use mnnn_core::{Dataset, Inputs, IoSpec, Rng, Sequence, Targets};
use ndarray::Array2;

/// A stream of `len` steps: input `x_t` is white noise, target `y_t = Σ_k 0.7^k x_{t−k}`
/// (an exponential moving sum of the past) plus a little noise. The current input alone
/// explains about half of the target's variance; the rest is memory.
pub fn echo_series(len: usize, seed: u64) -> Dataset<f64> {
    let mut rng = Rng::derive(seed, "demo-echo");
    let mut x = Array2::zeros((len, 1));
    let mut y = Array2::zeros((len, 1));
    let mut acc = 0.0;
    for t in 0..len {
        let v = rng.normal();
        acc = 0.7 * acc + v;
        x[[t, 0]] = v;
        y[[t, 0]] = acc + 0.05 * rng.normal();
    }
    let mut io = IoSpec::regression(1, 1);
    io.input_names = vec!["x".into()];
    io.target_names = vec!["y".into()];
    Dataset {
        io,
        sequences: vec![Sequence {
            inputs: Inputs::Real(x),
            targets: Targets::Real(y),
            mask: None,
        }],
    }
}
