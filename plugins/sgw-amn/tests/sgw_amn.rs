//! SGW-AMN against its naive loop (both modes, the reference's in f32), finite differences
//! (the sparsity penalty included), its parameter ranges and its diagnostics.

use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::testkit;
use mnnn_core::{Dims, DynModel, Entry, Inputs, IoSpec, Rng, Scalar, Tensors};
use mnnn_sgw_amn::SgwAmn;
use ndarray::Array2;

fn model<S: Scalar>(params: &str, i: usize, o: usize, seed: u64) -> Box<dyn DynModel<S>> {
    Entry::of::<SgwAmn>()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

fn get(t: &Tensors<f64>, name: &str) -> Vec<f64> {
    t.slice(
        t.layout()
            .index_of(name)
            .unwrap_or_else(|| panic!("no {name}")),
    )
    .to_vec()
}

fn set<S: Scalar>(t: &mut Tensors<S>, name: &str, v: &[f64]) {
    let i = t.layout().index_of(name).unwrap();
    for (d, &x) in t.slice_mut(i).iter_mut().zip(v) {
        *d = S::from_f64(x);
    }
}

const I: usize = 2;
const P: usize = 5;
const W: usize = 3;
const Q: usize = 4;
const M: usize = 2;
const O: usize = 2;

/// Runs random inputs through the model (type `S`) and the entry's naive f64 loop
/// (`src/naive.rs`) from the same weights and a random state; the largest relative distance
/// of the outputs.
fn against_naive<S: Scalar>(extra: &str) -> f64 {
    let params = format!("(pre: {P}, workspace: {W}, post: {Q}, manifold: {M}, {extra})");
    let mut m = model::<S>(&params, I, O, 5);
    let mut p = m.params().clone();
    set(&mut p, "head.w", &[1.0, 0.0, 0.0, 1.0]);
    set(&mut p, "head.b", &[0.0, 0.0]);
    m.set_params(&p).unwrap();
    let mut rng = Rng::new(8);
    let mut st = m.state().clone();
    st.data_mut()
        .iter_mut()
        .for_each(|v| *v = S::from_f64(0.7 * rng.normal()));
    m.set_state(&st).unwrap();
    let (p64, st64) = (m.params().cast::<f64>(), m.state().cast::<f64>());
    let steps = 10;
    let xs: Vec<f64> = (0..steps * I).map(|_| 1.5 * rng.normal()).collect();
    let x64 = Array2::from_shape_vec((steps, I), xs).unwrap();
    let ys = m.predict(&Inputs::Real(x64.mapv(S::from_f64))).unwrap();
    let dims = Dims {
        input: I,
        output: O,
    };
    let want = (Entry::of::<SgwAmn>().naive)(&params, dims, &p64, &st64, x64.view())
        .unwrap()
        .expect("SGW-AMN supplies a naive loop");
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
    ys.iter()
        .zip(want.iter())
        .map(|(a, b)| rel(a.as_f64(), *b))
        .fold(0.0, f64::max)
}

#[test]
fn design_steps_follow_the_equations() {
    let worst = against_naive::<f64>(
        "temperature: 0.7, dt: 0.3, memory_decay: 0.9, workspace_decay: 0.8, mix: 0.6, state_clip: 0.4",
    );
    assert!(worst < 1e-12, "design: {worst:e}");
    let worst = against_naive::<f64>("");
    assert!(worst < 1e-12, "design defaults: {worst:e}");
}

#[test]
fn reference_mode_reproduces_the_reference_forward_pass_in_f32() {
    let worst = against_naive::<f32>("compat: \"reference\"");
    assert!(worst < 2e-5, "reference: {worst:e}");
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
            "{params}: param {}: {:e}",
            c.name,
            c.rel_error
        );
    }
    for c in check_model_state(m.as_ref(), &data, &s0, &g.state, 1e-6) {
        assert!(
            c.rel_error < 1e-6,
            "{params}: state {}: {:e}",
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
    check_gradients(
        "(pre: 6, workspace: 3, post: 4, manifold: 2, state_clip: 0.6, dt: 0.4)",
        3,
    );
    check_gradients(
        "(pre: 5, workspace: 2, post: 3, manifold: 2, sparsity_penalty: 0.5)",
        7,
    );
    // More workspace units than pre units: winners repeat unit 0.
    check_gradients("(pre: 2, workspace: 3, post: 3, manifold: 2)", 4);
    // A post width past 8: the manifold's backward runs whole blocks of 8 columns and a
    // leftover column.
    check_gradients("(pre: 4, workspace: 2, post: 9, manifold: 2)", 5);
    check_gradients(
        "(pre: 6, workspace: 3, post: 4, manifold: 2, compat: \"reference\")",
        9,
    );
}

#[test]
fn the_sparsity_penalty_enters_the_loss_when_asked_for() {
    let mut rng = Rng::new(1);
    let data = regression_data(&mut rng, &[9, 4], 3, 2, 1.0);
    let base = "pre: 6, workspace: 3, post: 4, manifold: 2";
    let off = model::<f64>(&format!("({base})"), 3, 2, 2);
    let on = model::<f64>(&format!("({base}, sparsity_penalty: 0.5)"), 3, 2, 2);
    assert_eq!(off.params(), on.params());
    let extra = on.loss(&data, None).unwrap() - off.loss(&data, None).unwrap();
    // 0.5 · the mean over the 13 real steps of Σ|w|, from the workspace states of a run.
    let mut total = 0.0;
    for seq in &data.sequences {
        let mut m = model::<f64>(&format!("({base})"), 3, 2, 2);
        m.set_params(off.params()).unwrap();
        let Inputs::Real(x) = &seq.inputs else {
            unreachable!()
        };
        for row in x.rows() {
            m.predict(&Inputs::Real(row.to_owned().insert_axis(ndarray::Axis(0))))
                .unwrap();
            total += get(m.state(), "ws").iter().map(|v| v.abs()).sum::<f64>();
        }
    }
    let want = 0.5 * total / 13.0;
    assert!(
        (extra - want).abs() < 1e-12 * want.max(1.0),
        "{extra} vs {want}"
    );
}

#[test]
fn invalid_params_are_refused_with_their_range() {
    let e = Entry::of::<SgwAmn>();
    let io = IoSpec::regression(1, 1);
    for (text, want) in [
        ("(pre: 0)", "'pre' = 0: must be in [1, 16777216]"),
        (
            "(workspace: 0)",
            "'workspace' = 0: must be in [1, 16777216]",
        ),
        (
            "(temperature: 0.0)",
            "'temperature' = 0: must be in [0.01, 100]",
        ),
        (
            "(sparsity_penalty: -1.0)",
            "'sparsity_penalty' = -1: must be in [0, 10]",
        ),
        (
            "(memory_decay: 1.5)",
            "'memory_decay' = 1.5: must be in [0, 1]",
        ),
        ("(dt: NaN)", "'dt' = NaN: must be in [0.001, 1]"),
    ] {
        let err = testkit::refusal(&e, text, &io).to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn diagnostics_are_named_for_what_they_measure() {
    let mut m = model::<f64>(
        "(pre: 4, workspace: 2, post: 2, manifold: 1, temperature: 1.0)",
        1,
        1,
        3,
    );
    let mut st = m.state().clone();
    set(&mut st, "ws", &[0.05, -0.5]);
    set(&mut st, "wm", &[1.0, -1.0, 0.0, 2.0]);
    set(&mut st, "m", &[0.5, -1.5]);
    set(&mut st, "scores", &[0.0, 0.0, 0.0, 0.0]);
    m.set_state(&st).unwrap();
    let d = m.diagnostics();
    let val = |n: &str| d.iter().find(|x| x.name == n).unwrap().value;
    assert_eq!(val("active_fraction"), 0.5);
    // Equal scores: uniform routing, the maximum entropy ln 4.
    assert!((val("routing_entropy") - 4f64.ln()).abs() < 1e-12);
    assert!((val("routing_entropy_max") - 4f64.ln()).abs() < 1e-12);
    assert_eq!(val("bottleneck_rate"), 0.5);
    assert_eq!(val("manifold_energy"), 1.0);
    assert_eq!(val("workspace_memory_energy"), 1.0);
    // One dominant score: the entropy falls toward 0.
    set(&mut st, "scores", &[30.0, 0.0, 0.0, 0.0]);
    m.set_state(&st).unwrap();
    let e = m
        .diagnostics()
        .into_iter()
        .find(|x| x.name == "routing_entropy")
        .unwrap()
        .value;
    assert!(e < 1e-9, "{e}");
}
