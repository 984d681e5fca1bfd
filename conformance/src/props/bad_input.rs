//! Bad input is refused with an error, and nothing panics on it (panics are caught by the
//! runner and reported as failures).

use super::{Check, model};
use crate::case::{Case, render};
use mnnn_core::registry::{Entry, load_bytes};
use mnnn_core::{Dataset, Inputs, Layout, Sequence, Targets, Tensors};
use ndarray::Array2;
use std::path::Path;

/// An input width that is valid but wider than any drawn case.
pub const WIDE: usize = 33;

fn refused<T>(what: &str, r: mnnn_core::Result<T>) -> Check {
    match r {
        Err(_) => Ok(()),
        Ok(_) => Err(format!("{what} was accepted")),
    }
}

/// The property on one case.
pub fn check(entry: &Entry, case: &Case) -> Check {
    let mut m = model::<f64>(entry, case, case.seed)?;
    let x = |rows: usize, cols: usize| Inputs::Real(Array2::<f64>::from_elem((rows, cols), 0.5));
    refused(
        "an input one column too wide",
        m.predict(&x(case.len, case.input + 1)),
    )?;
    refused("an input with no columns", m.predict(&x(case.len, 0)))?;
    refused("an empty sequence", m.predict(&x(0, case.input)))?;
    refused(
        "an empty sequence (chunked)",
        m.predict_chunked(&x(0, case.input), 2),
    )?;
    refused(
        "chunk size 0",
        m.predict_chunked(&x(case.len, case.input), 0),
    )?;
    refused(
        "token inputs for a real-valued model",
        m.predict(&Inputs::Tokens(vec![0; case.len])),
    )?;
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut a = Array2::from_elem((case.len, case.input), 0.1);
        a[[case.cut.min(case.len - 1), 0]] = bad;
        refused(
            &format!("an input holding {bad}"),
            m.predict(&Inputs::Real(a)),
        )?;
    }
    let empty = Dataset {
        io: case.io(),
        sequences: vec![Sequence {
            inputs: x(0, case.input),
            targets: Targets::Real(Array2::zeros((0, case.output))),
            mask: None,
        }],
    };
    refused("an empty sequence in evaluate", m.evaluate(&empty))?;
    refused(
        "a state of another layout",
        m.set_state(&Tensors::zeros(Layout::new().with("zz", &[3]))),
    )?;
    refused(
        "parameters of another layout",
        m.set_params(&Tensors::zeros(Layout::new().with("zz", &[3]))),
    )?;
    refused(
        "garbage model bytes",
        load_bytes::<f64>(b"not a model file", Path::new("garbage")),
    )?;

    // Every invalid value of every declared parameter.
    let base = &case.values;
    for (i, range) in entry.param_ranges.iter().enumerate() {
        for bad in range.invalid_values() {
            let mut vals = base.clone();
            vals[i] = bad.clone();
            let text = render(entry.param_ranges, &vals);
            match entry.create::<f64>(Some(&text), &case.io(), 0) {
                Err(mnnn_core::Error::InvalidParam { .. })
                | Err(mnnn_core::Error::Config { .. }) => {}
                Err(other) => {
                    return Err(format!(
                        "{}: {bad} gave an untyped error: {other}",
                        range.name
                    ));
                }
                Ok(_) => return Err(format!("{} = {bad} was accepted", range.name)),
            }
        }
    }

    // A valid but wide input runs and stays finite.
    let mut wide_case = case.clone();
    wide_case.input = WIDE;
    let mut w = model::<f64>(entry, &wide_case, case.seed)?;
    let y = w
        .predict(&wide_case.inputs("bad-input-wide", case.len, WIDE))
        .map_err(|e| format!("input width {WIDE}: {e}"))?;
    if y.iter().any(|v| !v.is_finite()) {
        return Err(format!("input width {WIDE} gives non-finite outputs"));
    }
    Ok(())
}
