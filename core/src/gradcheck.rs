//! Central finite differences, to check hand-derived gradients in f64.
//!
//! Every entry's backward pass is checked with these in its own tests and again by the
//! conformance suite; a gradient that has not been compared against these is not trusted.

use crate::model::DynModel;
use crate::{Dataset, Inputs, IoSpec, Layout, Rng, Sequence, Targets, Tensors};
use ndarray::Array2;

/// The relative error `‖a − b‖ / max(‖a‖, ‖b‖, floor)` between two gradient vectors.
///
/// `floor` keeps a gradient that is zero on both sides from dividing zero by zero.
pub fn relative_error(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "relative_error: lengths differ");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    diff / na.max(nb).max(floor)
}

/// The gradient of `f` at `x` by central differences with step `eps`.
///
/// `x` is perturbed in place one element at a time and restored exactly afterwards.
pub fn numeric_gradient(x: &mut [f64], eps: f64, f: &mut dyn FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 0..x.len() {
        let orig = x[i];
        x[i] = orig + eps;
        let plus = f(x);
        x[i] = orig - eps;
        let minus = f(x);
        x[i] = orig;
        g[i] = (plus - minus) / (2.0 * eps);
    }
    g
}

/// One tensor's comparison of analytic and numeric gradients.
#[derive(Clone, Debug)]
pub struct TensorCheck {
    /// The tensor's name.
    pub name: String,
    /// Relative error as [`relative_error`] defines it.
    pub rel_error: f64,
    /// Norm of the analytic gradient (a zero gradient everywhere is suspicious in a test).
    pub analytic_norm: f64,
}

/// Checks the analytic gradient of `f` with respect to every tensor of `x`, tensor by tensor.
///
/// `f` reads the whole set; `analytic` has the same layout. Returns one [`TensorCheck`] per
/// tensor, in layout order.
pub fn check_tensors(
    x: &mut Tensors<f64>,
    analytic: &Tensors<f64>,
    eps: f64,
    f: &mut dyn FnMut(&Tensors<f64>) -> f64,
) -> Vec<TensorCheck> {
    let layout: Layout = x.layout().clone();
    let mut out = Vec::with_capacity(layout.len());
    for (i, info) in layout.entries().iter().enumerate() {
        let mut numeric = vec![0.0; info.len()];
        for (k, idx) in info.range().enumerate() {
            let orig = x.data()[idx];
            x.data_mut()[idx] = orig + eps;
            let plus = f(x);
            x.data_mut()[idx] = orig - eps;
            let minus = f(x);
            x.data_mut()[idx] = orig;
            numeric[k] = (plus - minus) / (2.0 * eps);
        }
        let a = analytic.slice(i);
        out.push(TensorCheck {
            name: info.name.clone(),
            rel_error: relative_error(a, &numeric, 1e-12),
            analytic_norm: a.iter().map(|v| v * v).sum::<f64>().sqrt(),
        });
    }
    out
}

/// A regression data set to check a model's gradients on: one sequence per entry of `lens`
/// (that many steps), inputs `input` wide drawn from `N(0, input_scale²)` and targets
/// `output` wide from `N(0, 1)`, each sequence's inputs drawn before its targets.
pub fn regression_data(
    rng: &mut Rng,
    lens: &[usize],
    input: usize,
    output: usize,
    input_scale: f64,
) -> Dataset<f64> {
    Dataset {
        io: IoSpec::regression(input, output),
        sequences: lens
            .iter()
            .map(|&t| Sequence {
                inputs: Inputs::Real(Array2::from_shape_fn((t, input), |_| {
                    rng.normal() * input_scale
                })),
                targets: Targets::Real(Array2::from_shape_fn((t, output), |_| rng.normal())),
                mask: None,
            })
            .collect(),
    }
}

/// [`check_tensors`] on a model's parameters: `analytic` (from [`DynModel::gradients`] on
/// `data` from `state`) against central differences of [`DynModel::loss`] with step `eps`,
/// on a copy of `m`.
///
/// # Panics
/// If the loss cannot be computed.
pub fn check_model_params(
    m: &dyn DynModel<f64>,
    data: &Dataset<f64>,
    state: Option<&Tensors<f64>>,
    analytic: &Tensors<f64>,
    eps: f64,
) -> Vec<TensorCheck> {
    let mut p = m.params().clone();
    let mut probe = m.clone_box();
    check_tensors(&mut p, analytic, eps, &mut |p| {
        probe.set_params(p).unwrap();
        probe.loss(data, state).unwrap()
    })
}

/// [`check_tensors`] on a model's initial state `state`: `analytic` (the state gradient from
/// [`DynModel::gradients`] on `data`) against central differences of [`DynModel::loss`].
///
/// # Panics
/// If the loss cannot be computed.
pub fn check_model_state(
    m: &dyn DynModel<f64>,
    data: &Dataset<f64>,
    state: &Tensors<f64>,
    analytic: &Tensors<f64>,
    eps: f64,
) -> Vec<TensorCheck> {
    let mut s = state.clone();
    check_tensors(&mut s, analytic, eps, &mut |s| {
        m.loss(data, Some(s)).unwrap()
    })
}

/// The [`relative_error`] (floor 1e-12) of each sequence's input gradient in `analytic`
/// (from [`DynModel::gradients`] on `data` from `state`) against central differences of
/// [`DynModel::loss`] with step `eps`, in sequence order.
///
/// # Panics
/// If a sequence's inputs are not real-valued, an analytic gradient is not contiguous, or the
/// loss cannot be computed.
pub fn check_model_inputs(
    m: &dyn DynModel<f64>,
    data: &Dataset<f64>,
    state: Option<&Tensors<f64>>,
    analytic: &[Array2<f64>],
    eps: f64,
) -> Vec<f64> {
    data.sequences
        .iter()
        .enumerate()
        .map(|(k, seq)| {
            let Inputs::Real(x) = &seq.inputs else {
                panic!("sequence {k}: the input gradient check needs real inputs")
            };
            let shape = x.dim();
            let mut flat: Vec<f64> = x.iter().copied().collect();
            let num = numeric_gradient(&mut flat, eps, &mut |v| {
                let mut d = data.clone();
                d.sequences[k].inputs =
                    Inputs::Real(Array2::from_shape_vec(shape, v.to_vec()).unwrap());
                m.loss(&d, state).unwrap()
            });
            relative_error(analytic[k].as_slice().unwrap(), &num, 1e-12)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_gradient_of_a_known_function() {
        let mut x = vec![0.3, -1.2];
        let g = numeric_gradient(&mut x, 1e-5, &mut |x| x[0].sin() * x[1] * x[1]);
        let exact = [0.3f64.cos() * 1.44, 0.3f64.sin() * 2.0 * -1.2];
        assert!(relative_error(&g, &exact, 1e-12) < 1e-9);
        assert_eq!(x, vec![0.3, -1.2], "x restored");
    }

    #[test]
    fn a_wrong_gradient_is_reported() {
        let layout = Layout::new().with("a", &[2]);
        let mut x = Tensors::from_vec(layout.clone(), vec![0.5, 2.0]).unwrap();
        let wrong = Tensors::from_vec(layout, vec![2.0 * 0.5, -2.0 * 2.0]).unwrap();
        let checks = check_tensors(&mut x, &wrong, 1e-6, &mut |t| {
            t.data().iter().map(|v| v * v).sum()
        });
        assert!(checks[0].rel_error > 0.5);
    }
}
