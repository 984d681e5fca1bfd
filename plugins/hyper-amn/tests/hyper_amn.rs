//! Hyper-AMN against its naive loop (both modes, the reference's in f32), finite differences,
//! its parameter ranges, its diagnostics and a long stream.

use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::testkit;
use mnnn_core::{Dims, DynModel, Entry, Inputs, IoSpec, Rng, Scalar, Tensors};
use mnnn_hyper_amn::HyperAmn;
use ndarray::Array2;

fn model<S: Scalar>(params: &str, i: usize, o: usize, seed: u64) -> Box<dyn DynModel<S>> {
    Entry::of::<HyperAmn>()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

fn get(t: &Tensors<f64>, name: &str) -> Vec<f64> {
    let i = t
        .layout()
        .index_of(name)
        .unwrap_or_else(|| panic!("no {name}"));
    t.slice(i).to_vec()
}

fn set<S: Scalar>(t: &mut Tensors<S>, name: &str, v: &[f64]) {
    let i = t.layout().index_of(name).unwrap();
    for (d, &x) in t.slice_mut(i).iter_mut().zip(v) {
        *d = S::from_f64(x);
    }
}

/// Sets the output head to the identity, so the model's output is the cell's.
fn identity_head<S: Scalar>(m: &mut dyn DynModel<S>, o: usize) {
    let mut p = m.params().clone();
    let eye: Vec<f64> = (0..o * o)
        .map(|n| if n / o == n % o { 1.0 } else { 0.0 })
        .collect();
    set(&mut p, "head.w", &eye);
    set(&mut p, "head.b", &vec![0.0; o]);
    m.set_params(&p).unwrap();
}

/// Runs `steps` random inputs through the model (type `S`) and the entry's naive f64 loop
/// (`src/naive.rs`) from the same weights and starting state; returns the largest relative
/// distance of the outputs and how many head states ended on the clip.
fn against_naive<S: Scalar>(params: &str, clip: f64, steps: usize) -> (f64, usize) {
    let (i, h, m, nh, o) = (2, 4, 3, 3, 2);
    let full = format!("(hidden: {h}, manifold: {m}, heads: {nh}, {params})");
    let mut model = model::<S>(&full, i, o, 5);
    identity_head(model.as_mut(), o);
    let mut rng = Rng::new(9);
    let mut st = model.state().clone();
    st.data_mut()
        .iter_mut()
        .for_each(|v| *v = S::from_f64(0.8 * rng.normal()));
    model.set_state(&st).unwrap();
    let p64 = model.params().cast::<f64>();
    let st64 = model.state().cast::<f64>();
    let xs: Vec<f64> = (0..steps * i).map(|_| 1.5 * rng.normal()).collect();
    let x64 = Array2::from_shape_vec((steps, i), xs.clone()).unwrap();
    let ys = model.predict(&Inputs::Real(x64.mapv(S::from_f64))).unwrap();
    let entry = Entry::of::<HyperAmn>();
    let dims = Dims {
        input: i,
        output: o,
    };
    let want = (entry.naive)(&full, dims, &p64, &st64, x64.view())
        .unwrap()
        .expect("Hyper-AMN supplies a naive loop");
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
    let worst = ys
        .iter()
        .zip(want.iter())
        .map(|(a, b)| rel(a.as_f64(), *b))
        .fold(0.0, f64::max);
    let st = model.state().cast::<f64>();
    let clipped = get(&st, "s").iter().filter(|v| v.abs() == clip).count();
    (worst, clipped)
}

#[test]
fn design_steps_follow_the_equations() {
    let (worst, clipped) = against_naive::<f64>("dt: 0.3, mix: 0.6, state_clip: 0.45", 0.45, 6);
    assert!(worst < 1e-12, "design: {worst:e}");
    assert!(clipped > 0, "the test should exercise the state clip");
    // At the defaults.
    let (worst, _) = against_naive::<f64>("", 10.0, 6);
    assert!(worst < 1e-12, "design defaults: {worst:e}");
}

#[test]
fn reference_mode_reproduces_the_reference_forward_pass_in_f32() {
    let (worst, _) = against_naive::<f32>("compat: \"reference\"", f64::INFINITY, 8);
    assert!(worst < 2e-5, "reference: {worst:e}");
}

#[test]
fn the_reference_gate_is_uniform_after_a_reset_and_the_design_gate_is_not() {
    for (compat, uniform) in [("reference", true), ("design", false)] {
        let mut m = model::<f64>(
            &format!("(hidden: 6, manifold: 3, compat: \"{compat}\")"),
            2,
            1,
            3,
        );
        m.predict(&Inputs::Real(Array2::from_elem((1, 2), 1.0)))
            .unwrap();
        let d = m.diagnostics();
        let acts: Vec<f64> = (0..3)
            .map(|k| {
                d.iter()
                    .find(|x| x.name == format!("head_activation_{k}"))
                    .unwrap()
                    .value
            })
            .collect();
        assert!((acts.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        if uniform {
            // After one step the reference's *next* gate reads mg, which is no longer 0; its
            // first gate was the uniform one, which the equations test checks.
            let mut fresh = model::<f64>(
                &format!("(hidden: 6, manifold: 3, compat: \"{compat}\")"),
                2,
                1,
                3,
            );
            fresh.reset_state();
            let d = fresh.diagnostics();
            for k in 0..3 {
                let v = d
                    .iter()
                    .find(|x| x.name == format!("head_activation_{k}"))
                    .unwrap()
                    .value;
                assert!((v - 1.0 / 3.0).abs() < 1e-15, "{compat}: {v}");
            }
        } else {
            let spread =
                acts.iter().copied().fold(0.0, f64::max) - acts.iter().copied().fold(1.0, f64::min);
            assert!(
                spread > 1e-4,
                "the design gate is uniform after one step: {acts:?}"
            );
        }
    }
}

fn check_gradients(params: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut m = model::<f64>(params, 3, 2, seed);
    let mut p = m.params().clone();
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.2 * rng.normal());
    m.set_params(&p).unwrap();
    let data = regression_data(&mut rng, &[8, 5], 3, 2, 1.5);
    let mut s0 = m.batch_state(2);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v = 0.6 * rng.normal());
    let (_, g) = m.gradients(&data, Some(&s0)).unwrap();
    let run = |eps: f64| check_model_params(m.as_ref(), &data, Some(&s0), &g.params, eps);
    let (fine, coarse) = (run(1e-6), run(1e-4));
    for (c, other) in fine.into_iter().zip(coarse) {
        let c = if other.rel_error < c.rel_error {
            other
        } else {
            c
        };
        assert!(
            c.analytic_norm > 1e-8,
            "{params}: {} has a zero gradient",
            c.name
        );
        assert!(
            c.rel_error < 1e-6,
            "{params}: param {}: relative error {:e}",
            c.name,
            c.rel_error
        );
    }
    for c in check_model_state(m.as_ref(), &data, &s0, &g.state, 1e-6) {
        assert!(
            c.analytic_norm > 1e-8,
            "state {} has a zero gradient",
            c.name
        );
        assert!(
            c.rel_error < 1e-6,
            "{params}: state {}: relative error {:e}",
            c.name,
            c.rel_error
        );
    }
    for (k, err) in check_model_inputs(m.as_ref(), &data, Some(&s0), &g.inputs, 1e-6)
        .into_iter()
        .enumerate()
    {
        assert!(err < 1e-6, "{params}: inputs of sequence {k}: {err:e}");
    }
}

#[test]
fn bptt_gradients_match_central_differences_in_both_modes() {
    // A low clip binds in design mode.
    check_gradients(
        "(hidden: 4, manifold: 3, heads: 3, dt: 0.4, mix: 0.55, state_clip: 0.5)",
        17,
    );
    check_gradients("(hidden: 5, manifold: 2, heads: 2)", 5);
    check_gradients(
        "(hidden: 4, manifold: 3, heads: 3, dt: 0.4, compat: \"reference\")",
        11,
    );
    check_gradients(
        "(hidden: 3, manifold: 2, heads: 2, compat: \"reference\")",
        2,
    );
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    let mut rng = Rng::new(3);
    let m = model::<f64>("(hidden: 3, manifold: 2)", 2, 1, 1);
    let data = regression_data(&mut rng, &[6], 2, 1, 1.0);
    let (_, mut g) = m.gradients(&data, None).unwrap();
    let k = g.params.layout().index_of("v").unwrap();
    let max = g.params.slice(k).iter().fold(0.0f64, |a, v| a.max(v.abs()));
    g.params.slice_mut(k)[0] += 0.05 * max;
    let worst = check_model_params(m.as_ref(), &data, None, &g.params, 1e-6)
        .into_iter()
        .map(|c| c.rel_error)
        .fold(0.0, f64::max);
    assert!(
        worst > 1e-3,
        "a perturbed gradient went unnoticed ({worst:e})"
    );
}

#[test]
fn invalid_params_are_refused_with_their_range() {
    let e = Entry::of::<HyperAmn>();
    let io = IoSpec::regression(1, 1);
    for (text, want) in [
        ("(hidden: 0)", "'hidden' = 0: must be in [1, 16777216]"),
        ("(manifold: 0)", "'manifold' = 0: must be in [1, 16777216]"),
        ("(heads: 0)", "'heads' = 0: must be in [1, 8]"),
        ("(heads: 9)", "'heads' = 9: must be in [1, 8]"),
        ("(dt: 0.0)", "'dt' = 0: must be in [0.001, 1]"),
        ("(mix: 1.5)", "'mix' = 1.5: must be in [0, 1]"),
        (
            "(state_clip: 0.0)",
            "'state_clip' = 0: must be in [0.1, 100]",
        ),
        ("(mix: NaN)", "'mix' = NaN: must be in [0, 1]"),
    ] {
        let err = testkit::refusal(&e, text, &io).to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    let err = testkit::refusal(&e, "(head: 3)", &io).to_string();
    assert!(err.contains("head"), "{err}");
}

#[test]
fn diagnostics_report_gate_energy_and_cross_flow() {
    let mut m = model::<f64>("(hidden: 2, manifold: 1, heads: 2)", 1, 1, 4);
    let mut p = m.params().clone();
    set(&mut p, "cross", &[1.0, -0.5, 0.25, 1.0]);
    set(&mut p, "g", &[1.0, 0.0, 0.0, 2.0]);
    m.set_params(&p).unwrap();
    let mut st = m.state().clone();
    set(&mut st, "s", &[0.5, 0.0, 0.0, 1.0]);
    set(&mut st, "m", &[1.0, -2.0, 0.5, 0.5]);
    m.set_state(&st).unwrap();
    let d = m.diagnostics();
    let val = |n: &str| d.iter().find(|x| x.name == n).unwrap().value;
    // logits 0.5 and 2.0.
    let a0 = 1.0 / (1.0 + (1.5f64).exp());
    assert!((val("head_activation_0") - a0).abs() < 1e-12);
    assert!((val("head_activation_1") - (1.0 - a0)).abs() < 1e-12);
    assert!((val("manifold_energy_0") - 1.5).abs() < 1e-12);
    assert!((val("manifold_energy_1") - 0.5).abs() < 1e-12);
    assert!((val("cross_head_flow") - 0.375).abs() < 1e-12);
    assert_eq!(d.len(), 5);
}

/// The reference's manifolds grow with the decay's horizon over a long stream (its report
/// measured a mean-square energy of 1634 in head 2 after 5000 steps); the design's stay
/// within what one write can hold and its states within the clip.
#[test]
fn a_long_stream_stays_bounded_in_design_mode() {
    let mut energies = Vec::new();
    for compat in ["design", "reference"] {
        let mut m = model::<f32>(
            &format!("(hidden: 16, manifold: 8, compat: \"{compat}\")"),
            4,
            1,
            2,
        );
        let mut rng = Rng::new(1);
        let xs = Array2::from_shape_simple_fn((3000, 4), || rng.normal() as f32);
        m.predict(&Inputs::Real(xs)).unwrap();
        let d = m.diagnostics();
        let e2 = d
            .iter()
            .find(|x| x.name == "manifold_energy_2")
            .unwrap()
            .value;
        let s = get(&m.state().cast::<f64>(), "s");
        assert!(s.iter().all(|v| v.is_finite()));
        if compat == "design" {
            assert!(s.iter().all(|v| v.abs() <= 10.0));
        }
        energies.push(e2);
    }
    println!(
        "manifold energy of head 2 after 3000 steps: design {:.4}, reference {:.4}",
        energies[0], energies[1]
    );
    assert!(energies[0] < 1.0, "design energy {}", energies[0]);
    assert!(
        energies[1] > 20.0 * energies[0],
        "reference energy {}",
        energies[1]
    );
}
