//! What the layer promises, seen from outside: queries and keys are ℓ2-normalised, a write
//! the surprise gate skips also skips forgetting, and a stream too long for one chunked call
//! still follows the step loop.

use mnnn_core::{DynModel, Entry, Inputs, IoSpec, Rng, Tensors};
use ndarray::Array2;

fn model(params: &str) -> Box<dyn DynModel<f64>> {
    Entry::of::<mnnn_mnemosyne::Mnemosyne>()
        .create::<f64>(Some(params), &IoSpec::regression(3, 2), 11)
        .expect("valid params")
}

fn inputs(len: usize) -> Inputs<f64> {
    let mut rng = Rng::new(5);
    Inputs::Real(Array2::from_shape_fn((len, 3), |_| rng.normal()))
}

fn scaled(p: &Tensors<f64>, name: &str, k: f64) -> Tensors<f64> {
    let mut p = p.clone();
    let i = p.layout().index_of(name).expect("tensor");
    p.slice_mut(i).iter_mut().for_each(|v| *v *= k);
    p
}

#[test]
fn query_and_key_scale_does_not_matter() {
    for memory in ["linear", "ttt_linear", "mlp"] {
        let mut m = model(&format!(
            "(layers: 1, heads: 2, head_dim: 4, memory: \"{memory}\", chunk: 3, sidecar: 2)"
        ));
        let x = inputs(12);
        let base = m.predict(&x).unwrap();
        for name in ["wq", "wk"] {
            let mut s = model(&format!(
                "(layers: 1, heads: 2, head_dim: 4, memory: \"{memory}\", chunk: 3, sidecar: 2)"
            ));
            s.set_params(&scaled(m.params(), name, 3.0)).unwrap();
            let y = s.predict(&x).unwrap();
            let err = (&y - &base).iter().fold(0.0f64, |a, e| a.max(e.abs()));
            assert!(
                err < 1e-5,
                "{memory}: scaling {name} by 3 moved the output by {err:e}"
            );
        }
        // The values are not normalised: scaling them does change the output.
        let mut s = model(&format!(
            "(layers: 1, heads: 2, head_dim: 4, memory: \"{memory}\", chunk: 3, sidecar: 2)"
        ));
        s.set_params(&scaled(m.params(), "wv", 3.0)).unwrap();
        let y = s.predict(&x).unwrap();
        assert!((&y - &base).iter().any(|e| e.abs() > 1e-3), "{memory}");
    }
}

#[test]
fn a_skipped_write_also_skips_forgetting() {
    let params = "(layers: 1, heads: 1, head_dim: 4, memory: \"linear\", chunk: 1, momentum: false, forget: true, sidecar: 0)";
    let x = inputs(20);
    let mut open = model(params);
    let phi0 = open.state().slice(0).to_vec();
    open.predict(&x).unwrap();
    assert_ne!(open.state().slice(0), &phi0[..], "an open gate writes");
    // A threshold far above any surprise closes the gate: the memory neither learns nor
    // decays, so it is exactly its initial value after the stream.
    let mut closed = model(params);
    let p = closed.params().clone();
    let i = p.layout().index_of("surprise.threshold").expect("gate");
    let mut p = p;
    p.slice_mut(i).fill(1e4);
    closed.set_params(&p).unwrap();
    closed.predict(&x).unwrap();
    assert_eq!(closed.state().slice(0), &phi0[..]);
}

#[test]
fn a_long_chunked_stream_follows_the_step_loop() {
    let rel = |a: &[f64], b: &[f64]| {
        let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        let den: f64 = b.iter().map(|y| y * y).sum();
        (num / den).sqrt()
    };
    // Longer than two of the chunked form's windows, entered two tokens into a chunk of
    // three; the exact delta rule in blocks of seven.
    let x = inputs(2500);
    for (params, chunk) in [
        (
            "(layers: 1, heads: 1, head_dim: 2, memory: \"linear\", chunk: 3, sidecar: 2, ffn: 0)",
            5,
        ),
        (
            "(layers: 1, heads: 1, head_dim: 2, memory: \"linear\", chunk: 1, momentum: false, gate: \"none\", sidecar: 2, ffn: 0)",
            7,
        ),
    ] {
        let mut steps = model(params);
        steps.predict(&inputs(2)).unwrap();
        let mut chunked = steps.clone();
        let want = steps.predict(&x).unwrap();
        let got = chunked.predict_chunked(&x, chunk).unwrap();
        let err = rel(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 1e-10, "{params}: outputs {err:e} from the step loop");
        let err = rel(chunked.state().data(), steps.state().data());
        assert!(err < 1e-10, "{params}: state {err:e} from the step loop");
    }
}

/// The learned initial memory is trained: one plain SGD update over the whole data as one
/// batch moves every parameter, the initial memory's included, by exactly `−lr ×` the
/// gradient from a fresh state (which the conformance suite checks by finite differences).
#[test]
fn one_update_moves_the_initial_memory_by_its_gradient() {
    use mnnn_core::train::{Optimizer, StatePolicy, TrainConfig};
    let mut m = model("(layers: 1, heads: 2, head_dim: 4, memory: \"mlp\", chunk: 3, sidecar: 2)");
    let mut rng = Rng::new(8);
    let data = mnnn_core::gradcheck::regression_data(&mut rng, &[9, 9, 9], 3, 2, 1.0);
    let (_, g) = m.gradients(&data, None).unwrap();
    let before = m.params().clone();
    let lr = 0.05;
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 3,
        window: 0,
        state: StatePolicy::Reset,
        optimizer: Optimizer::Sgd { momentum: 0.0 },
        learning_rate: lr,
        clip: 0.0,
        validation: 0.0,
        patience: 0,
        normalize: false,
        max_updates: 1,
        ..TrainConfig::default()
    };
    m.fit(&data, &cfg, &mut |_| {}).unwrap();
    let layout = before.layout().clone();
    let mut moved_init = 0.0f64;
    for (i, e) in layout.entries().iter().enumerate() {
        for ((a, b), d) in m
            .params()
            .slice(i)
            .iter()
            .zip(before.slice(i))
            .zip(g.params.slice(i))
        {
            let want = b - lr * d;
            assert!(
                (a - want).abs() <= 1e-10 * (1.0 + want.abs()),
                "'{}': {a} after the update, {want} from the gradient",
                e.name
            );
            if e.name.starts_with("init.") {
                moved_init = moved_init.max((a - b).abs());
            }
        }
    }
    assert!(moved_init > 1e-6, "the initial memory did not move");
}
