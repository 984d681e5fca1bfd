//! A hand-written backward pass against the one core derives from the same cell's forward
//! equations written in tape operations ([`mnnn_core::autodiff`]).
//!
//! Finite differences (the `gradients` property) check a backward to about 1e-6; this check
//! is exact up to rounding: the hand-written window and the derived one must agree on the
//! outputs, the end state, every parameter gradient, the start-state gradient and the input
//! gradients within [`TOLERANCE`] relative (f64), on cases drawn from the entry's ranges, from
//! a random start state and with a random end-state gradient, so BPTT across windows is
//! covered too.

use crate::case::{Case, matrix};
use crate::props::{Check, within};
use mnnn_core::gradcheck::relative_error;
use mnnn_core::registry::{Architecture, ron_options};
use mnnn_core::{Cell, Dims, Layout, Rng, Tensors};
use ndarray::Array3;

/// Largest relative difference allowed between the hand-written and the derived results.
pub const TOLERANCE: f64 = 1e-10;

/// Sequences in each case's batch.
const BATCH: usize = 3;

fn random3(rng: &mut Rng, t: usize, b: usize, w: usize) -> Array3<f64> {
    let m = matrix::<f64>(rng, t * b, w);
    m.into_shape_with_order((t, b, w)).expect("t·b rows")
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Each tensor of `hand` against the same tensor of `derived`; a tensor is judged against
/// 1e-6 of the whole set's norm at least, so that rounding on a gradient negligible next to
/// the rest is not taken for an error.
fn same_tensors(what: &str, hand: &Tensors<f64>, derived: &Tensors<f64>) -> Check {
    let floor = (1e-6 * norm(derived.data())).max(1e-300);
    for (i, e) in derived.layout().entries().iter().enumerate() {
        let err = relative_error(hand.slice(i), derived.slice(i), floor);
        if !within(err, TOLERANCE) {
            return Err(format!(
                "{what} '{}': the hand-written backward is {err:e} (relative) from the derived one",
                e.name
            ));
        }
    }
    Ok(())
}

fn same_arrays(what: &str, hand: &Array3<f64>, derived: &Array3<f64>) -> Check {
    let (h, d) = (
        hand.as_slice().expect("owned"),
        derived.as_slice().expect("owned"),
    );
    let err = relative_error(h, d, (1e-6 * norm(d)).max(1e-300));
    if within(err, TOLERANCE) {
        Ok(())
    } else {
        Err(format!(
            "{what}: the hand-written cell is {err:e} (relative) from the derived one"
        ))
    }
}

fn same_layout(what: &str, hand: Layout, derived: Layout) -> Check {
    if hand == derived {
        Ok(())
    } else {
        Err(format!(
            "the derived cell's {what} layout differs from the hand-written one's"
        ))
    }
}

/// What a window forward and back gives.
struct Window {
    ys: Array3<f64>,
    end: Tensors<f64>,
    grads: Tensors<f64>,
    dstart: Tensors<f64>,
    dxs: Array3<f64>,
}

/// Runs a window of `xs` from `s0` on `cell` and back with `dys` and the end-state gradient
/// `dend`.
fn window<C: Cell<f64>>(
    cell: &C,
    p: &Tensors<f64>,
    s0: &Tensors<f64>,
    xs: &Array3<f64>,
    dys: &Array3<f64>,
    dend: &Tensors<f64>,
) -> Window {
    let mut tape = C::Tape::default();
    let mut s = s0.clone();
    let mut ys = Array3::zeros(dys.dim());
    cell.forward_window(p, &mut s, xs.view(), ys.view_mut(), Some(&mut tape));
    let mut grads = Tensors::zeros_like(p);
    let mut ds = dend.clone();
    let mut dxs = Array3::zeros(xs.dim());
    cell.backward_window(
        p,
        &tape,
        dys.view(),
        &mut ds,
        &mut grads,
        Some(dxs.view_mut()),
    );
    Window {
        ys,
        end: s,
        grads,
        dstart: ds,
        dxs,
    }
}

/// The check on one case: `hand` is the entry's cell, `derived` its derived reference, both
/// for the case's params and widths.
pub fn compare<C: Cell<f64>, D: Cell<f64>>(hand: &C, derived: &D, case: &Case) -> Check {
    same_layout("parameter", hand.param_layout(), derived.param_layout())?;
    same_layout("state", hand.state_layout(), derived.state_layout())?;
    let mut rng = Rng::derive(case.seed, "derived");
    let mut p = Tensors::zeros(hand.param_layout());
    hand.init_params(&mut rng, &mut p);
    // Off the initialisation, so that zero biases do not hide a wrong bias term.
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal());
    let mut s0 = Tensors::zeros(hand.state_layout().batched(BATCH));
    hand.reset_state(&p, &mut s0);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal());
    let (i, o) = (hand.dims().input, hand.dims().output);
    let xs = random3(&mut rng, case.len, BATCH, i);
    let dys = random3(&mut rng, case.len, BATCH, o);
    let mut dend = Tensors::zeros_like(&s0);
    dend.data_mut().iter_mut().for_each(|v| *v = rng.normal());
    let h = window(hand, &p, &s0, &xs, &dys, &dend);
    let d = window(derived, &p, &s0, &xs, &dys, &dend);
    same_arrays("outputs", &h.ys, &d.ys)?;
    same_tensors("end state", &h.end, &d.end)?;
    same_tensors("parameter gradient", &h.grads, &d.grads)?;
    same_tensors("start-state gradient", &h.dstart, &d.dstart)?;
    same_arrays("input gradient", &h.dxs, &d.dxs)?;
    Ok(())
}

/// [`compare`] for architecture `A`: its cell as built by [`Architecture::build`] against
/// `derive`'s cell for the same params and widths, on a case drawn from `A`'s ranges.
pub fn check<A: Architecture, D: Cell<f64>>(
    derive: &dyn Fn(&A::Params, Dims) -> D,
    case: &Case,
) -> Check {
    let params: A::Params = ron_options()
        .from_str(&case.params)
        .map_err(|e| format!("drawn params do not parse: {e}"))?;
    let dims = Dims {
        input: case.input,
        output: case.output,
    };
    compare(
        &A::build::<f64>(&params, dims),
        &derive(&params, dims),
        case,
    )
}
