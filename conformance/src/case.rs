//! What a property is checked on: a small random configuration, widths, a sequence length, a
//! cut point and a seed, drawn by proptest (which shrinks failures toward the smallest case).

use mnnn_core::registry::{Entry, ParamRange, RangeKind};
use mnnn_core::{Inputs, IoSpec, Rng, Scalar};
use ndarray::Array2;
use proptest::prelude::*;
use std::fmt;

/// One drawn case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The hyper-parameters as RON.
    pub params: String,
    /// The value of each declared parameter, as RON, in the entry's order.
    pub values: Vec<String>,
    /// Input width.
    pub input: usize,
    /// Output width.
    pub output: usize,
    /// Sequence length (≥ 2).
    pub len: usize,
    /// A cut point in `0..=len`.
    pub cut: usize,
    /// Seed of weights and data.
    pub seed: u64,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "params {} | input {} output {} | len {} cut {} | seed {}",
            self.params, self.input, self.output, self.len, self.cut, self.seed
        )
    }
}

impl Case {
    /// Real inputs of width `input`, targets of width `output`.
    pub fn io(&self) -> IoSpec {
        IoSpec::regression(self.input, self.output)
    }

    /// A standard-normal `len × input` input sequence from the case's seed and `stream`.
    pub fn inputs<S: Scalar>(&self, stream: &str, len: usize, width: usize) -> Inputs<S> {
        Inputs::Real(matrix(&mut Rng::derive(self.seed, stream), len, width))
    }
}

/// A standard-normal matrix.
pub fn matrix<S: Scalar>(rng: &mut Rng, rows: usize, cols: usize) -> Array2<S> {
    Array2::from_shape_fn((rows, cols), |_| S::from_f64(rng.normal()))
}

fn value(range: &ParamRange) -> BoxedStrategy<String> {
    match range.kind {
        RangeKind::Int {
            draw_min, draw_max, ..
        } => (draw_min..=draw_max.max(draw_min))
            .prop_map(|v| v.to_string())
            .boxed(),
        RangeKind::Float { min, max } => (min..=max).prop_map(|v| format!("{v:?}")).boxed(),
        RangeKind::Choice(cs) => proptest::sample::select(cs.to_vec())
            .prop_map(|c| format!("{c:?}"))
            .boxed(),
        RangeKind::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
    }
}

/// RON params from field values, in the entry's declared order.
pub fn render(ranges: &[ParamRange], values: &[String]) -> String {
    let fields: Vec<String> = ranges
        .iter()
        .zip(values)
        .map(|(r, v)| format!("{}: {v}", r.name))
        .collect();
    format!("({})", fields.join(", "))
}

/// Cases for `entry`: its small-size parameter ranges, widths 1–3 in and 1–2 out, lengths
/// 2–24.
pub fn cases(entry: &Entry) -> BoxedStrategy<Case> {
    let ranges = entry.param_ranges;
    let values: Vec<BoxedStrategy<String>> = ranges.iter().map(value).collect();
    (values, 1usize..=3, 1usize..=2, 2usize..=24, 0u64..1000)
        .prop_flat_map(move |(vals, input, output, len, seed)| {
            let params = render(ranges, &vals);
            (0..=len).prop_map(move |cut| Case {
                params: params.clone(),
                values: vals.clone(),
                input,
                output,
                len,
                cut,
                seed,
            })
        })
        .boxed()
}
