//! The derived backward against central finite differences (f64), through a window of a
//! cell that uses every operation, from a given state, across windows, and into the inputs.

use super::*;
use crate::cell::{Cell, Dims};
use crate::gradcheck::{check_tensors, numeric_gradient, relative_error};
use crate::{Layout, Rng};
use ndarray::{Array3, Axis};

/// A toy recurrence that reads every operation once: state `h` (`B × H`) and `c`
/// (`B × 2H`).
#[derive(Clone, Debug)]
struct Kitchen {
    input: usize,
    hidden: usize,
    output: usize,
}

impl TapeCell<f64> for Kitchen {
    fn dims(&self) -> Dims {
        Dims {
            input: self.input,
            output: self.output,
        }
    }

    fn param_layout(&self) -> Layout {
        let (i, h, o) = (self.input, self.hidden, self.output);
        Layout::new()
            .with("w", &[i, h])
            .with("b", &[h])
            .with("g", &[h])
            .with("v", &[3 * h, o])
    }

    fn state_layout(&self) -> Layout {
        Layout::new()
            .with("h", &[self.hidden])
            .with("c", &[2 * self.hidden])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<f64>) {
        params
            .data_mut()
            .iter_mut()
            .for_each(|v| *v = 0.5 * rng.normal());
    }

    fn record_step(&self, r: &mut Rec<'_, f64>, x: Var, state: &mut [Var]) -> Var {
        let h = self.hidden;
        let (w, b, g, v) = (r.param(0), r.param(1), r.param(2), r.param_named("v"));
        let a = r.linear(x, w, b);
        let gate = r.sigmoid(a);
        let keep = r.one_minus(gate);
        let old = r.mul(keep, state[0]);
        let t = r.tanh(a);
        let new = r.mul(gate, t);
        let hn = r.add(old, new);
        let c_lo = r.slice_cols(state[1], 0, h);
        let c_hi = r.slice_cols(state[1], h, h);
        let diff = r.sub(c_hi, c_lo);
        let soft = r.softplus(diff);
        let gl = r.gelu(hn);
        let rl = r.relu(diff);
        let sq = r.map(rl, Unary::Square);
        let ex = r.map(soft, Unary::Exp);
        let sm = r.scale(ex, 0.1);
        let mixed = r.add(gl, sm);
        let mixed = r.axpby(0.7, mixed, -0.4, gl);
        let gained = r.mul_row(mixed, g);
        let aff = r.affine(sq, 0.3, -0.2);
        let cn = r.concat(gained, aff);
        state[0] = hn;
        state[1] = cn;
        let feats = r.concat(cn, hn);
        let k = r.constant(r.batch(), 3 * h, 0.5);
        let feats = r.add(feats, k);
        r.matmul(feats, v)
    }
}

fn kitchen() -> Derived<Kitchen> {
    Derived(Kitchen {
        input: 3,
        hidden: 4,
        output: 2,
    })
}

fn random(rng: &mut Rng, layout: Layout, scale: f64) -> Tensors<f64> {
    let mut t = Tensors::zeros(layout);
    t.data_mut()
        .iter_mut()
        .for_each(|v| *v = scale * rng.normal());
    t
}

fn array(rng: &mut Rng, shape: (usize, usize, usize)) -> Array3<f64> {
    Array3::from_shape_simple_fn(shape, || rng.normal())
}

/// `L = Σ c ⊙ ys + Σ d ⊙ end state` of a window from `state`.
fn loss(
    cell: &Derived<Kitchen>,
    p: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: &Array3<f64>,
    c: &Array3<f64>,
    d: &Tensors<f64>,
) -> f64 {
    let mut s = state.clone();
    let (t, b, _) = xs.dim();
    let mut ys = Array3::zeros((t, b, cell.dims().output));
    cell.forward_window(p, &mut s, xs.view(), ys.view_mut(), None);
    (&ys * c).sum()
        + s.data()
            .iter()
            .zip(d.data())
            .map(|(a, b)| a * b)
            .sum::<f64>()
}

struct Case {
    p: Tensors<f64>,
    s0: Tensors<f64>,
    xs: Array3<f64>,
    c: Array3<f64>,
    d: Tensors<f64>,
}

fn case(seed: u64, t: usize, b: usize) -> (Derived<Kitchen>, Case) {
    let cell = kitchen();
    let mut rng = Rng::new(seed);
    let p = random(&mut rng, cell.param_layout(), 0.6);
    let s0 = random(&mut rng, cell.state_layout().batched(b), 0.5);
    let xs = array(&mut rng, (t, b, 3));
    let c = array(&mut rng, (t, b, 2));
    let d = random(&mut rng, cell.state_layout().batched(b), 1.0);
    (cell, Case { p, s0, xs, c, d })
}

/// The derived gradients of [`loss`]: parameters, start state, inputs.
fn derived(cell: &Derived<Kitchen>, k: &Case) -> (Tensors<f64>, Tensors<f64>, Array3<f64>) {
    let mut tape = Tape::default();
    let mut s = k.s0.clone();
    let mut ys = Array3::zeros(k.c.dim());
    cell.forward_window(&k.p, &mut s, k.xs.view(), ys.view_mut(), Some(&mut tape));
    let mut grads = Tensors::zeros_like(&k.p);
    let mut dstate = k.d.clone();
    let mut dxs = Array3::zeros(k.xs.dim());
    cell.backward_window(
        &k.p,
        &tape,
        k.c.view(),
        &mut dstate,
        &mut grads,
        Some(dxs.view_mut()),
    );
    (grads, dstate, dxs)
}

#[test]
fn derived_gradients_match_central_differences() {
    let (cell, k) = case(3, 5, 2);
    let (grads, dstate, dxs) = derived(&cell, &k);
    let mut p = k.p.clone();
    for c in check_tensors(&mut p, &grads, 1e-6, &mut |p| {
        loss(&cell, p, &k.s0, &k.xs, &k.c, &k.d)
    }) {
        assert!(c.analytic_norm > 1e-6, "{}: zero gradient", c.name);
        assert!(c.rel_error < 1e-7, "param {}: {:e}", c.name, c.rel_error);
    }
    let mut s = k.s0.clone();
    for c in check_tensors(&mut s, &dstate, 1e-6, &mut |s| {
        loss(&cell, &k.p, s, &k.xs, &k.c, &k.d)
    }) {
        assert!(c.analytic_norm > 1e-6, "{}: zero gradient", c.name);
        assert!(c.rel_error < 1e-7, "state {}: {:e}", c.name, c.rel_error);
    }
    let shape = k.xs.dim();
    let mut flat: Vec<f64> = k.xs.iter().copied().collect();
    let num = numeric_gradient(&mut flat, 1e-6, &mut |v| {
        let xs = Array3::from_shape_vec(shape, v.to_vec()).unwrap();
        loss(&cell, &k.p, &k.s0, &xs, &k.c, &k.d)
    });
    let err = relative_error(dxs.as_slice().unwrap(), &num, 1e-12);
    assert!(err < 1e-7, "inputs: {err:e}");
}

#[test]
fn two_windows_with_the_state_gradient_handed_back_equal_one() {
    let (cell, k) = case(8, 6, 3);
    let (g_one, ds_one, dx_one) = derived(&cell, &k);
    // The same stream as windows 0..2 and 2..6: the second's start-state gradient is the
    // first's end-state gradient.
    let split =
        |a: &Array3<f64>, r: std::ops::Range<usize>| a.slice(ndarray::s![r, .., ..]).to_owned();
    let mut s_mid = k.s0.clone();
    let mut ys = Array3::zeros((2, 3, 2));
    cell.forward_window(
        &k.p,
        &mut s_mid,
        split(&k.xs, 0..2).view(),
        ys.view_mut(),
        None,
    );
    let second = Case {
        p: k.p.clone(),
        s0: s_mid,
        xs: split(&k.xs, 2..6),
        c: split(&k.c, 2..6),
        d: k.d.clone(),
    };
    let (g2, ds_mid, dx2) = derived(&cell, &second);
    let first = Case {
        p: k.p.clone(),
        s0: k.s0.clone(),
        xs: split(&k.xs, 0..2),
        c: split(&k.c, 0..2),
        d: ds_mid,
    };
    let (g1, ds0, dx1) = derived(&cell, &first);
    let summed: Vec<f64> = g1
        .data()
        .iter()
        .zip(g2.data())
        .map(|(a, b)| a + b)
        .collect();
    assert!(relative_error(&summed, g_one.data(), 1e-12) < 1e-12);
    assert!(relative_error(ds0.data(), ds_one.data(), 1e-12) < 1e-12);
    let dx = ndarray::concatenate(Axis(0), &[dx1.view(), dx2.view()]).unwrap();
    assert!(relative_error(dx.as_slice().unwrap(), dx_one.as_slice().unwrap(), 1e-12) < 1e-12);
}

#[test]
fn the_step_loop_is_the_window_bit_for_bit() {
    let (cell, k) = case(5, 7, 2);
    let (mut s_win, mut s_step) = (k.s0.clone(), k.s0.clone());
    let mut ys = Array3::zeros(k.c.dim());
    cell.forward_window(&k.p, &mut s_win, k.xs.view(), ys.view_mut(), None);
    let mut scratch = Tape::default();
    for (t, x) in k.xs.axis_iter(Axis(0)).enumerate() {
        let mut y = ndarray::Array2::zeros((2, 2));
        cell.step(&k.p, &mut s_step, x, y.view_mut(), &mut scratch);
        assert_eq!(y, ys.index_axis(Axis(0), t));
    }
    assert_eq!(s_win, s_step);
}

#[test]
fn a_second_window_reuses_the_arena() {
    let (cell, k) = case(2, 4, 2);
    let mut tape = Tape::default();
    let run = |tape: &mut Tape<f64>| {
        let mut s = k.s0.clone();
        let mut ys = Array3::zeros(k.c.dim());
        cell.forward_window(&k.p, &mut s, k.xs.view(), ys.view_mut(), Some(tape));
        let (mut g, mut ds) = (Tensors::zeros_like(&k.p), k.d.clone());
        cell.backward_window(&k.p, tape, k.c.view(), &mut ds, &mut g, None);
        let grads = tape.grads.lock().unwrap();
        (
            tape.vals.as_ptr(),
            tape.nodes.as_ptr(),
            grads.as_ptr(),
            tape.vals.len(),
        )
    };
    let first = run(&mut tape);
    assert!(first.3 > 0);
    assert_eq!(run(&mut tape), first, "the buffers were reallocated");
    assert_eq!(tape.len(), tape.nodes.len());
    assert!(!tape.is_empty());
}

#[test]
fn a_wrong_vjp_would_be_caught_here() {
    // The check above can fail: a gradient off by one term in one tensor is far outside it.
    let (cell, k) = case(3, 3, 1);
    let (mut grads, _, _) = derived(&cell, &k);
    grads.slice_mut(2)[0] += 0.1;
    let mut p = k.p.clone();
    let checks = check_tensors(&mut p, &grads, 1e-6, &mut |p| {
        loss(&cell, p, &k.s0, &k.xs, &k.c, &k.d)
    });
    assert!(checks[2].rel_error > 1e-3);
}
