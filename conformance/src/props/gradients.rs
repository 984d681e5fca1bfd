//! Backpropagation through time against central finite differences, in f64.

use super::{Check, model, within};
use crate::case::{Case, matrix};
use mnnn_core::gradcheck::{check_tensors, numeric_gradient, relative_error};
use mnnn_core::registry::Entry;
use mnnn_core::{Dataset, Inputs, Rng, Sequence, Targets};
use ndarray::Array2;

/// Largest relative error allowed per tensor.
pub const TOLERANCE: f64 = 1e-6;
const EPS: f64 = 1e-5;

/// The property on one case.
pub fn check(entry: &Entry, case: &Case) -> Check {
    let mut m = model::<f64>(entry, case, case.seed)?;
    let mut rng = Rng::derive(case.seed, "gradients");
    let mut p = m.params().clone();
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal());
    m.set_params(&p).map_err(|e| e.to_string())?;
    // Two sequences of different lengths: the shorter one is padded inside the batch.
    let lens = [case.len, (case.len / 2).max(1)];
    let data = Dataset {
        io: case.io(),
        sequences: lens
            .iter()
            .map(|&t| Sequence {
                inputs: Inputs::Real(matrix(&mut rng, t, case.input)),
                targets: Targets::Real(matrix(&mut rng, t, case.output)),
                mask: None,
            })
            .collect(),
    };
    let mut s0 = m.batch_state(2);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal());
    let (_, g) = m
        .gradients(&data, Some(&s0))
        .map_err(|e| format!("gradients: {e}"))?;

    let mut probe = m.clone();
    let mut params = m.params().clone();
    for c in check_tensors(&mut params, &g.params, EPS, &mut |p| {
        probe.set_params(p).expect("same layout");
        probe.loss(&data, Some(&s0)).unwrap_or(f64::NAN)
    }) {
        if !within(c.rel_error, TOLERANCE) {
            return Err(format!(
                "parameter '{}': relative error {:e}",
                c.name, c.rel_error
            ));
        }
    }
    let mut state = s0.clone();
    for c in check_tensors(&mut state, &g.state, EPS, &mut |s| {
        m.loss(&data, Some(s)).unwrap_or(f64::NAN)
    }) {
        if !within(c.rel_error, TOLERANCE) {
            return Err(format!(
                "initial state '{}': relative error {:e}",
                c.name, c.rel_error
            ));
        }
    }
    for (k, seq) in data.sequences.iter().enumerate() {
        let Inputs::Real(x) = &seq.inputs else {
            unreachable!("real inputs")
        };
        let shape = x.dim();
        let mut flat: Vec<f64> = x.iter().copied().collect();
        let num = numeric_gradient(&mut flat, EPS, &mut |v| {
            let mut d = data.clone();
            d.sequences[k].inputs =
                Inputs::Real(Array2::from_shape_vec(shape, v.to_vec()).expect("shape"));
            m.loss(&d, Some(&s0)).unwrap_or(f64::NAN)
        });
        let ana = g.inputs[k]
            .as_slice()
            .ok_or("input gradient not contiguous")?;
        let err = relative_error(ana, &num, 1e-12);
        if !within(err, TOLERANCE) {
            return Err(format!("inputs of sequence {k}: relative error {err:e}"));
        }
    }
    Ok(())
}
