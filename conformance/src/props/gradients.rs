//! Backpropagation through time against central finite differences, in f64.

use super::{Check, model, within};
use crate::case::Case;
use mnnn_core::gradcheck::{numeric_gradient, regression_data, relative_error};
use mnnn_core::registry::Entry;
use mnnn_core::{Dataset, DynModel, Inputs, Rng, Tensors};
use ndarray::Array2;

/// Largest relative error allowed per tensor.
pub const TOLERANCE: f64 = 1e-6;
const STEPS: [f64; 5] = [1e-5, 1e-4, 1e-6, 1e-3, 1e-7];

/// Compares `analytic` with central differences at step 1e-5, and, if that misses, at 1e-4,
/// 1e-6, 1e-3 and 1e-7 and by Richardson extrapolation (a wrong gradient misses at every step; a right
/// one on a strongly curved or very flat loss only at some), keeping the best.
fn verify(
    what: &str,
    x: &mut [f64],
    analytic: &[f64],
    floor: f64,
    f: &mut dyn FnMut(&[f64]) -> f64,
) -> Check {
    let mut best = f64::INFINITY;
    let mut consider = |num: &[f64]| {
        let err = relative_error(analytic, num, floor.max(1e-12));
        if err < best || best.is_nan() {
            best = err;
        }
        within(err, TOLERANCE)
    };
    for eps in STEPS {
        if consider(&numeric_gradient(x, eps, f)) {
            return Ok(());
        }
    }
    // Richardson extrapolation of steps 2e-3 and 1e-3: fourth-order accurate.
    let (coarse, fine) = (numeric_gradient(x, 2e-3, f), numeric_gradient(x, 1e-3, f));
    let extrapolated: Vec<f64> = coarse
        .iter()
        .zip(&fine)
        .map(|(c, f)| (4.0 * f - c) / 3.0)
        .collect();
    if consider(&extrapolated) {
        return Ok(());
    }
    Err(format!("{what}: relative error {best:e}"))
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// [`verify`] for each tensor of `at` in turn, against its gradient in `grad` (same layout);
/// `loss` scores a copy of `at` with that one tensor changed.
///
/// A tensor whose gradient is tiny next to the rest is judged against the scale of its whole
/// group (1e-3 of the group's norm), so finite-difference rounding on a negligible gradient
/// is not mistaken for an error.
fn verify_tensors(
    what: &str,
    at: &Tensors<f64>,
    grad: &Tensors<f64>,
    loss: &mut dyn FnMut(&Tensors<f64>) -> f64,
) -> Check {
    let floor = 1e-3 * norm(grad.data());
    for (i, e) in at.layout().entries().iter().enumerate() {
        let mut x = at.slice(i).to_vec();
        verify(
            &format!("{what} '{}'", e.name),
            &mut x,
            grad.slice(i),
            floor,
            &mut |v| {
                let mut t = at.clone();
                t.slice_mut(i).copy_from_slice(v);
                loss(&t)
            },
        )?;
    }
    Ok(())
}

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
    let data = regression_data(&mut rng, &lens, case.input, case.output, 1.0);
    let mut s0 = m.batch_state(2);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal());
    let (_, g) = m
        .gradients(&data, Some(&s0))
        .map_err(|e| format!("gradients: {e}"))?;

    let mut probe = m.clone();
    verify_tensors("parameter", m.params(), &g.params, &mut |p| {
        probe.set_params(p).expect("same layout");
        probe.loss(&data, Some(&s0)).unwrap_or(f64::NAN)
    })?;
    verify_tensors("initial state", &s0, &g.state, &mut |s| {
        m.loss(&data, Some(s)).unwrap_or(f64::NAN)
    })?;
    fresh_state(m.as_ref(), &data, &mut rng)?;
    // The inputs likewise, against 1e-3 of the norm of every input gradient.
    let x_floor = 1e-3
        * g.inputs
            .iter()
            .map(|a| norm(a.as_slice().unwrap_or(&[])).powi(2))
            .sum::<f64>()
            .sqrt();
    for (k, seq) in data.sequences.iter().enumerate() {
        let Inputs::Real(x) = &seq.inputs else {
            unreachable!("real inputs")
        };
        let shape = x.dim();
        let mut flat: Vec<f64> = x.iter().copied().collect();
        let ana = g.inputs[k]
            .as_slice()
            .ok_or("input gradient not contiguous")?;
        verify(
            &format!("inputs of sequence {k}"),
            &mut flat,
            ana,
            x_floor,
            &mut |v| {
                let mut d = data.clone();
                d.sequences[k].inputs =
                    Inputs::Real(Array2::from_shape_vec(shape, v.to_vec()).expect("shape"));
                m.loss(&d, Some(&s0)).unwrap_or(f64::NAN)
            },
        )?;
    }
    Ok(())
}

/// From a fresh state the parameters also make the state the stream starts from (a learned
/// initial memory, say). The parameter gradients from a fresh state minus those from the same
/// state given as an input are the reset's vector–Jacobian product; each tensor's is checked,
/// along a random unit direction, against central differences of the reset itself. (The
/// gradients from a given state are checked element by element above, so this completes the
/// check of training from a fresh state at the cost of a few resets.)
fn fresh_state(m: &dyn DynModel<f64>, data: &Dataset<f64>, rng: &mut Rng) -> Check {
    const EPS: f64 = 1e-3;
    let fresh = m.batch_state(2);
    let (_, from_fresh) = m.gradients(data, None).map_err(|e| e.to_string())?;
    let (_, from_given) = m.gradients(data, Some(&fresh)).map_err(|e| e.to_string())?;
    let dstate = from_fresh.state.data();
    let scale = norm(from_fresh.params.data()).max(norm(dstate));
    let mut probe = m.clone_box();
    for (i, e) in m.params().layout().entries().iter().enumerate() {
        let mut u: Vec<f64> = (0..e.len()).map(|_| rng.normal()).collect();
        let n = norm(&u).max(f64::MIN_POSITIVE);
        u.iter_mut().for_each(|v| *v /= n);
        let analytic: f64 = from_fresh
            .params
            .slice(i)
            .iter()
            .zip(from_given.params.slice(i))
            .zip(&u)
            .map(|((f, g), u)| (f - g) * u)
            .sum();
        let mut numeric = 0.0;
        for sign in [1.0, -1.0] {
            let mut p = m.params().clone();
            p.slice_mut(i)
                .iter_mut()
                .zip(&u)
                .for_each(|(v, u)| *v += sign * EPS * u);
            probe.set_params(&p).map_err(|e| e.to_string())?;
            let s = probe.batch_state(2);
            numeric += sign * s.data().iter().zip(dstate).map(|(a, b)| a * b).sum::<f64>();
        }
        numeric /= 2.0 * EPS;
        let err = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(1e-6 * scale);
        if !within(err, TOLERANCE) {
            return Err(format!(
                "parameter '{}' from a fresh state: the reset's gradient along a random \
                 direction is {analytic:e}, finite differences of the reset give {numeric:e}",
                e.name
            ));
        }
    }
    Ok(())
}
