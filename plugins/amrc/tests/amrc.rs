//! AMRC against its equations, finite differences, and its own saved files.

use mnnn_amrc::Amrc;
use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::registry::load_bytes;
use mnnn_core::testkit;
use mnnn_core::{DynModel, Entry, Inputs, IoSpec, Rng, Tensors};
use ndarray::Array2;
use std::path::Path;

fn model<S: mnnn_core::Scalar>(
    params: &str,
    i: usize,
    o: usize,
    seed: u64,
) -> Box<dyn DynModel<S>> {
    Entry::of::<Amrc>()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

fn randomise(t: &mut Tensors<f64>, rng: &mut Rng, scale: f64) {
    t.data_mut()
        .iter_mut()
        .for_each(|v| *v = rng.normal() * scale);
}

#[test]
fn steps_follow_the_equations_with_a_lag_one_echo() {
    let mut m = model::<f64>("(hidden: 1, alpha: 0.25, beta: 0.5)", 1, 1, 0);
    let mut p = m.params().clone();
    // w_h, b_h, w_o, b_o, head.w, head.b
    p.data_mut()
        .copy_from_slice(&[0.8, 0.1, 1.5, -0.2, 1.0, 0.0]);
    m.set_params(&p).unwrap();
    let xs = [0.5, -1.0, 2.0];
    let ys = m
        .predict(&Inputs::Real(
            Array2::from_shape_vec((3, 1), xs.to_vec()).unwrap(),
        ))
        .unwrap();
    let (mut mem, mut s) = (0.0f64, 0.0f64);
    for (t, &x) in xs.iter().enumerate() {
        let n = (0.8 * x + 0.1 + mem).tanh();
        s = n + 0.5 * s;
        mem = 0.75 * mem + 0.25 * n;
        let y = (1.5 * s - 0.2).tanh();
        assert!(
            (ys[[t, 0]] - y).abs() < 1e-15,
            "step {t}: {} vs {y}",
            ys[[t, 0]]
        );
    }
    let st = m.state();
    assert!((st.slice(0)[0] - mem).abs() < 1e-15 && (st.slice(1)[0] - s).abs() < 1e-15);
}

#[test]
fn bptt_gradients_match_central_differences() {
    let mut rng = Rng::new(11);
    let m = {
        let mut m = model::<f64>("(hidden: 5, alpha: 0.3, beta: 0.6)", 3, 2, 4);
        let mut p = m.params().clone();
        randomise(&mut p, &mut rng, 0.7);
        m.set_params(&p).unwrap();
        m
    };
    // unequal lengths: the shorter sequence is padded inside the batch
    let data = regression_data(&mut rng, &[7, 5], 3, 2, 1.0);
    let mut s0 = m.batch_state(2);
    randomise(&mut s0, &mut rng, 0.5);
    let (_, g) = m.gradients(&data, Some(&s0)).unwrap();

    for c in check_model_params(m.as_ref(), &data, Some(&s0), &g.params, 1e-5) {
        assert!(c.analytic_norm > 1e-8, "{} has a zero gradient", c.name);
        assert!(
            c.rel_error < 1e-6,
            "param {}: relative error {:e}",
            c.name,
            c.rel_error
        );
    }
    for c in check_model_state(m.as_ref(), &data, &s0, &g.state, 1e-5) {
        assert!(
            c.analytic_norm > 1e-8,
            "state {} has a zero gradient",
            c.name
        );
        assert!(
            c.rel_error < 1e-6,
            "state {}: relative error {:e}",
            c.name,
            c.rel_error
        );
    }
    let inputs = check_model_inputs(m.as_ref(), &data, Some(&s0), &g.inputs, 1e-5);
    for (k, err) in inputs.into_iter().enumerate() {
        assert!(err < 1e-6, "inputs of sequence {k}: relative error {err:e}");
    }
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    // The check above must be able to fail: perturb one analytic entry and see it flagged.
    let mut rng = Rng::new(3);
    let m = model::<f64>("(hidden: 3)", 2, 1, 1);
    let data = regression_data(&mut rng, &[4], 2, 1, 1.0);
    let (_, mut g) = m.gradients(&data, None).unwrap();
    g.params.slice_mut(0)[0] += 0.05
        * g.params
            .slice(0)
            .iter()
            .map(|v| v.abs())
            .fold(0.0, f64::max);
    let worst = check_model_params(m.as_ref(), &data, None, &g.params, 1e-5)
        .into_iter()
        .map(|c| c.rel_error)
        .fold(0.0, f64::max);
    assert!(
        worst > 1e-3,
        "a perturbed gradient went unnoticed ({worst:e})"
    );
}

fn stream<S: mnnn_core::Scalar>(rng: &mut Rng, t: usize, i: usize) -> Array2<S> {
    Array2::from_shape_fn((t, i), |_| S::from_f64(rng.normal()))
}

fn save_load_continue<S: mnnn_core::Scalar>() {
    let mut rng = Rng::new(5);
    let x: Array2<S> = stream(&mut rng, 40, 3);
    let mut whole = model::<S>("(hidden: 16, alpha: 0.2, beta: 0.7)", 3, 2, 9);
    let mut first = whole.clone();
    let full = whole.predict(&Inputs::Real(x.clone())).unwrap();
    for k in [1, 17, 39] {
        let mut a = first.clone();
        let head = a
            .predict(&Inputs::Real(x.slice(ndarray::s![..k, ..]).to_owned()))
            .unwrap();
        let bytes = a.to_bytes().unwrap();
        let mut b = load_bytes::<S>(&bytes, Path::new("mem")).unwrap();
        assert_eq!(
            b.to_bytes().unwrap(),
            bytes,
            "identical models give identical bytes"
        );
        let tail = b
            .predict(&Inputs::Real(x.slice(ndarray::s![k.., ..]).to_owned()))
            .unwrap();
        assert_eq!(head, full.slice(ndarray::s![..k, ..]));
        assert_eq!(
            tail,
            full.slice(ndarray::s![k.., ..]),
            "continuation after a load at step {k}"
        );
    }
    first.reset_state();
}

#[test]
fn save_load_continue_is_bit_identical_f32() {
    save_load_continue::<f32>();
}

#[test]
fn save_load_continue_is_bit_identical_f64() {
    save_load_continue::<f64>();
}

#[test]
fn reset_equals_a_fresh_model_and_snapshots_restore() {
    let mut rng = Rng::new(8);
    let x: Array2<f32> = stream(&mut rng, 30, 2);
    let fresh = model::<f32>("(hidden: 8, beta: 0.9)", 2, 1, 3);
    let mut used = fresh.clone();
    used.predict(&Inputs::Real(x.clone())).unwrap();
    let snap = used.state().clone();
    let after_snap = used.clone().predict(&Inputs::Real(x.clone())).unwrap();
    used.reset_state();
    assert_eq!(
        used.predict(&Inputs::Real(x.clone())).unwrap(),
        fresh.clone().predict(&Inputs::Real(x.clone())).unwrap()
    );
    used.set_state(&snap).unwrap();
    assert_eq!(used.predict(&Inputs::Real(x)).unwrap(), after_snap);
}

#[test]
fn chunked_and_batched_forms_equal_the_step_loop() {
    let mut rng = Rng::new(21);
    let x: Array2<f64> = stream(&mut rng, 70, 4);
    let m = model::<f64>("(hidden: 12, alpha: 0.15, beta: 0.8)", 4, 3, 2);
    let seq = m.clone().predict(&Inputs::Real(x.clone())).unwrap();
    for chunk in [1, 2, 7, 64, 70] {
        let ch = m
            .clone()
            .predict_chunked(&Inputs::Real(x.clone()), chunk)
            .unwrap();
        let num = (&ch - &seq).mapv(|v| v * v).sum().sqrt();
        let den = seq.mapv(|v| v * v).sum().sqrt();
        assert!(num / den < 1e-10, "chunk {chunk}: {:e}", num / den);
    }
}

#[test]
fn invalid_params_are_refused_with_their_range() {
    let e = Entry::of::<Amrc>();
    let io = IoSpec::regression(1, 1);
    let refusal = |p: &str| testkit::refusal(&e, p, &io).to_string();
    let err = refusal("(beta: 1.5)");
    assert!(err.contains("'beta' = 1.5: must be in [0, 1]"), "{err}");
    let err = refusal("(hidden: 0)");
    assert!(err.contains("'hidden' = 0"), "{err}");
    assert!(refusal("(hidden: 4611686018427387904)").contains("must be in [1, 16777216]"));
    let wide = testkit::refusal(&e, "(hidden: 16777216)", &IoSpec::regression(4096, 1));
    assert!(
        wide.to_string().contains("at most 268435456"),
        "refused before allocating"
    );
    let mut m = model::<f32>("()", 2, 1, 0);
    let err = m
        .predict(&Inputs::Real(Array2::zeros((3, 5))))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected width 2, got width 5"), "{err}");
    let mut bad = Array2::zeros((3, 2));
    bad[[1, 0]] = f32::NAN;
    assert!(
        m.predict(&Inputs::Real(bad))
            .unwrap_err()
            .to_string()
            .contains("must be finite")
    );
}
