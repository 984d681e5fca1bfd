//! The wrapper's forecasting options on real entries: a linear skip from the input to the
//! head, and outputs learned as changes from an input column (`difference`).

use mnnn_core::gradcheck::{check_model_inputs, check_model_params, regression_data};
use mnnn_core::registry::load_bytes;
use mnnn_core::{Dataset, DynModel, Inputs, IoSpec, Rng, Sequence, Targets, TrainConfig, Wrapper};
use ndarray::Array2;
use std::path::Path;

const BOTH: fn() -> Wrapper = || Wrapper {
    skip: true,
    difference: vec![1],
    horizon: 2,
};

/// An AMRC model (a bounded tanh cell) reading 2 columns and predicting 1, with every weight
/// (the skip's too) drawn at random and a normaliser that is not the identity.
fn model(wrapper: &Wrapper) -> Box<dyn DynModel<f64>> {
    let io = IoSpec::regression(2, 1);
    let mut m = mnnn_zoo::find("amrc")
        .unwrap()
        .create_with::<f64>(Some("(hidden: 3)"), &io, 5, wrapper)
        .unwrap();
    let mut rng = Rng::derive(9, "wrapper-test");
    let mut p = m.params().clone();
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal());
    m.set_params(&p).unwrap();
    let mut norm = m.normalizer().clone();
    norm.data_mut()
        .copy_from_slice(&[0.2, -0.4, 1.5, 0.7, 0.3, 2.0]);
    m.set_normalizer(&norm).unwrap();
    m
}

fn series(rows: usize, seed: u64) -> Inputs<f64> {
    let mut rng = Rng::derive(seed, "wrapper-series");
    Inputs::Real(Array2::from_shape_fn((rows, 2), |_| rng.normal()))
}

#[test]
fn skip_and_difference_gradients_match_finite_differences() {
    let mut rng = Rng::derive(1, "wrapper-grad");
    let data = regression_data(&mut rng, &[5, 4], 2, 1, 1.0);
    for wrapper in [
        BOTH(),
        Wrapper {
            skip: true,
            ..Wrapper::default()
        },
    ] {
        let m = model(&wrapper);
        let (_, g) = m.gradients(&data, None).unwrap();
        for c in check_model_params(m.as_ref(), &data, None, &g.params, 1e-6) {
            assert!(
                c.rel_error < 1e-6,
                "{wrapper:?} {}: {}",
                c.name,
                c.rel_error
            );
            if c.name == "skip.w" {
                assert!(c.analytic_norm > 1e-3, "the skip is trained");
            }
        }
        for e in check_model_inputs(m.as_ref(), &data, None, &g.inputs, 1e-6) {
            assert!(e < 1e-6, "{wrapper:?} inputs: {e}");
        }
    }
}

#[test]
fn every_forward_path_adds_the_skip_and_the_level() {
    let with = model(&BOTH());
    let mut plain = mnnn_zoo::find("amrc")
        .unwrap()
        .create::<f64>(Some("(hidden: 3)"), &IoSpec::regression(2, 1), 5)
        .unwrap();
    // The same cell and head: the plain model's tensors are a prefix of the other's.
    let n = plain.params().data().len();
    let mut p = plain.params().clone();
    p.data_mut().copy_from_slice(&with.params().data()[..n]);
    plain.set_params(&p).unwrap();
    plain.set_normalizer(with.normalizer()).unwrap();
    let skip = &with.params().data()[n..];
    let x = series(40, 2);
    let Inputs::Real(xa) = &x else { unreachable!() };
    let norm = with.normalizer().data();
    let (base, ours) = (
        plain.clone_box().predict(&x).unwrap(),
        with.clone_box().predict(&x).unwrap(),
    );
    for t in 0..40 {
        let xn: Vec<f64> = (0..2)
            .map(|j| (xa[[t, j]] - norm[j]) / norm[2 + j])
            .collect();
        let added = (xn[0] * skip[0] + xn[1] * skip[1]) * norm[5] + xa[[t, 1]];
        let got = ours[[t, 0]] - base[[t, 0]];
        assert!((got - added).abs() < 1e-12, "step {t}: {got} vs {added}");
    }
    let chunked = with.clone_box().predict_chunked(&x, 7).unwrap();
    let batch = with.predict_batch(std::slice::from_ref(&x)).unwrap();
    let stream = with.stream_batch(std::slice::from_ref(&x)).unwrap();
    for other in [&chunked, &batch[0], &stream[0]] {
        let d = (&ours - other).iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(d < 1e-10, "paths differ by {d}");
    }
    // Scoring agrees with prediction: the level is added before the comparison.
    let y = ours.mapv(|v| v + 0.5);
    let data = Dataset {
        io: IoSpec::regression(2, 1),
        sequences: vec![Sequence {
            inputs: x,
            targets: Targets::Real(y),
            mask: None,
        }],
    };
    let rmse = with.evaluate(&data).unwrap().rmse.unwrap();
    assert!((rmse - 0.5).abs() < 1e-9, "rmse {rmse}");
}

#[test]
fn skip_models_save_and_load_bit_exactly_and_old_files_load() {
    let mut m = model(&BOTH());
    m.predict(&series(9, 3)).unwrap();
    let bytes = m.to_bytes().unwrap();
    let mut back = load_bytes::<f64>(&bytes, Path::new("m.safetensors")).unwrap();
    assert_eq!(back.meta(), m.meta());
    assert_eq!(back.params(), m.params());
    assert_eq!(back.state(), m.state());
    assert_eq!(back.normalizer(), m.normalizer());
    let x = series(6, 4);
    assert_eq!(back.predict(&x).unwrap(), m.predict(&x).unwrap());
    assert!(back.params().layout().index_of("skip.w").is_some());
    // A model without the options writes neither key, so its file is byte for byte what
    // builds before them wrote, and such files load as models without them.
    let old = model(&Wrapper::default());
    let bytes = old.to_bytes().unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("skip") && !text.contains("difference") && !text.contains("horizon"));
    let back = load_bytes::<f64>(&bytes, Path::new("old.safetensors")).unwrap();
    assert!(!back.meta().skip && back.meta().difference.is_empty() && back.meta().horizon == 0);
    assert_eq!(back.params(), old.params());
}

#[test]
fn wrapper_options_the_data_cannot_carry_are_refused() {
    let amrc = mnnn_zoo::find("amrc").unwrap();
    let refuse = |io: &IoSpec, w: Wrapper| {
        amrc.create_with::<f32>(None, io, 0, &w)
            .err()
            .expect("refused")
            .to_string()
    };
    let e = refuse(
        &IoSpec::regression(2, 1),
        Wrapper {
            difference: vec![2],
            ..Wrapper::default()
        },
    );
    assert!(
        e.contains("one input column (below 2) per output (1)"),
        "{e}"
    );
    let tokens = IoSpec {
        input: mnnn_core::InputKind::Tokens { vocab: 5, embed: 4 },
        output: mnnn_core::OutputKind::Classes(5),
        input_names: vec![],
        target_names: vec![],
    };
    let e = refuse(
        &tokens,
        Wrapper {
            skip: true,
            ..Wrapper::default()
        },
    );
    assert!(e.contains("token inputs have no such row"), "{e}");
}

/// A rising line with a ripple, as one sequence: x is the series, y its next value. The
/// last quarter lies above anything in the first three.
fn trend(rows: usize) -> (Dataset<f32>, Dataset<f32>) {
    let v: Vec<f64> = (0..=rows)
        .map(|t| 0.05 * t as f64 + (t as f64 * 0.7).sin())
        .collect();
    let x = Array2::from_shape_fn((rows, 1), |(t, _)| v[t]);
    let y = Array2::from_shape_fn((rows, 1), |(t, _)| v[t + 1]);
    let cut = rows * 3 / 4;
    let seq = |a: usize, mask: Option<Vec<bool>>| Sequence {
        inputs: Inputs::Real(x.slice(ndarray::s![..a, ..]).to_owned()),
        targets: Targets::Real(y.slice(ndarray::s![..a, ..]).to_owned()),
        mask,
    };
    let io = IoSpec::regression(1, 1);
    let train = Dataset {
        io: io.clone(),
        sequences: vec![seq(cut, None)],
    };
    let test = Dataset {
        io,
        sequences: vec![seq(rows, Some((0..rows).map(|t| t >= cut).collect()))],
    };
    (train.cast(), test.cast())
}

#[test]
fn a_bounded_cell_follows_a_trend_with_a_skip_or_by_learning_changes() {
    let (train, test) = trend(400);
    let rmse = |wrapper: Wrapper| {
        let mut m = mnnn_zoo::find("amrc")
            .unwrap()
            .create_with::<f32>(Some("(hidden: 8)"), &train.io, 0, &wrapper)
            .unwrap();
        let cfg = TrainConfig {
            max_updates: 300,
            ..TrainConfig::default()
        };
        m.fit(&train, &cfg, &mut |_| {}).unwrap();
        m.evaluate(&test).unwrap().rmse.unwrap()
    };
    let plain = rmse(Wrapper::default());
    let skip = rmse(Wrapper {
        skip: true,
        ..Wrapper::default()
    });
    let change = rmse(Wrapper {
        difference: vec![0],
        ..Wrapper::default()
    });
    // tanh saturates: beyond the training range the plain cell's forecast flattens out and
    // falls further behind the trend with every step.
    assert!(skip < plain / 2.0, "skip {skip} vs plain {plain}");
    assert!(change < plain / 2.0, "difference {change} vs plain {plain}");
}

#[test]
fn forecasting_options_are_read_from_the_config() {
    use mnnn_core::config::{self, DataSpec};
    use mnnn_core::series::Missing;
    let cfg = config::parse(
        "(model: \"amrc\", skip: true, data: Csv(path: \"s.csv\", inputs: [\"y\", \"x\"], \
         targets: [\"y\"], horizon: 3, difference: true, missing: Interpolate))",
        "run.ron",
    )
    .unwrap();
    assert!(cfg.skip);
    let d = cfg.data.unwrap();
    let DataSpec::Csv {
        horizon,
        difference,
        missing,
        ..
    } = &d;
    assert_eq!(
        (*horizon, *difference, *missing),
        (3, true, Missing::Interpolate)
    );
    assert_eq!(d.forecasting().horizon, 3);
    // Left out, each option is off, as configs written before them mean.
    let cfg = config::parse(
        "(model: \"amrc\", data: Csv(path: \"s.csv\", inputs: [\"x\"], targets: [\"y\"]))",
        "run.ron",
    )
    .unwrap();
    assert!(!cfg.skip);
    assert_eq!(cfg.data.unwrap().forecasting(), Default::default());
    let refusal = |data: &str| {
        config::parse(
            &format!("(model: \"amrc\", data: Csv(path: \"s.csv\", {data}))"),
            "r.ron",
        )
        .unwrap_err()
        .to_string()
    };
    let e = refusal("inputs: [\"y\"], targets: [\"y\"]");
    assert!(
        e.contains("with horizon 0: the model would copy its input"),
        "{e}"
    );
    assert!(e.contains("r.ron:1:"), "{e}");
    let e = refusal("inputs: [\"x\"], targets: [\"y\"], horizon: 1, difference: true");
    assert!(e.contains("add 'y' to the inputs"), "{e}");
    let e = refusal("inputs: [\"x\"], targets: [\"y\"], missing: Guess");
    assert!(e.contains("Interpolate"), "{e}");
}
