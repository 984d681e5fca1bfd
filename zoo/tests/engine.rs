//! The training engine and persistence through a real entry (AMRC).

use mnnn_core::gradcheck::check_tensors;
use mnnn_core::train::{Optimizer, Schedule, StatePolicy};
use mnnn_core::{
    Dataset, DynModel, Error, FreezeSpec, InputKind, Inputs, IoSpec, OutputKind, Rng, Sequence,
    Targets, TrainConfig,
};
use ndarray::Array2;
use std::path::Path;

/// `epochs` passes at a constant rate, validated after each pass, without early stopping.
fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        max_updates: 0,
        eval_every: 0,
        warmup: 0,
        schedule: Schedule::Constant,
        patience: 0,
        ..TrainConfig::default()
    }
}

#[test]
fn frozen_entries_never_change_in_training_and_the_rest_do() {
    let data = mnnn_zoo::demo::echo_series(600, 1).cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>("amrc", Some("(hidden: 6)"), &data.io, 0).unwrap();
    assert_eq!(m.freeze(&FreezeSpec::Tensors("w_h".into())).unwrap(), 6);
    assert_eq!(
        m.freeze(&FreezeSpec::Percentage {
            pattern: "w_o".into(),
            fraction: 0.5,
            seed: 3
        })
        .unwrap(),
        3
    );
    assert_eq!(
        m.freeze(&FreezeSpec::Neurons {
            tensor: "b_h".into(),
            neurons: vec![0, 5]
        })
        .unwrap(),
        2
    );
    let before = m.params().clone();
    let frozen = m.frozen().unwrap().to_vec();
    m.fit(&data, &quick(3), &mut |_| {}).unwrap();
    let after = m.params();
    let mut changed = 0;
    for (i, (&f, (a, b))) in frozen
        .iter()
        .zip(before.data().iter().zip(after.data()))
        .enumerate()
    {
        if f {
            assert_eq!(a.to_bits(), b.to_bits(), "frozen entry {i} changed");
        } else if a != b {
            changed += 1;
        }
    }
    let free = frozen.iter().filter(|f| !**f).count();
    assert_eq!(changed, free, "every free entry moves");
    assert_eq!(m.unfreeze(&FreezeSpec::Tensors("*".into())).unwrap(), 11);
    assert!(m.frozen().is_none());
}

/// Tokens in, classes out: predict the token seen `lag` steps earlier, scored only where the
/// mask says so.
fn lag_task(n: usize, len: usize, lag: usize, seed: u64) -> Dataset<f64> {
    let mut rng = Rng::new(seed);
    let sequences = (0..n)
        .map(|_| {
            let tok: Vec<u32> = (0..len).map(|_| rng.below(4) as u32).collect();
            let tgt: Vec<u32> = (0..len)
                .map(|t| if t >= lag { tok[t - lag] } else { 0 })
                .collect();
            let mask = (0..len).map(|t| t >= lag).collect();
            Sequence {
                inputs: Inputs::Tokens(tok),
                targets: Targets::Classes(tgt),
                mask: Some(mask),
            }
        })
        .collect();
    Dataset {
        io: IoSpec {
            input: InputKind::Tokens { vocab: 4, embed: 6 },
            output: OutputKind::Classes(4),
            input_names: vec![],
            target_names: vec![],
        },
        sequences,
    }
}

#[test]
fn token_inputs_and_class_outputs_learn_a_lagged_copy() {
    let data = lag_task(64, 24, 1, 2).cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>(
        "amrc",
        Some("(hidden: 24, alpha: 0.5, beta: 0.5)"),
        &data.io,
        1,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 60,
        batch_size: 8,
        window: 0,
        state: StatePolicy::Reset,
        learning_rate: 0.02,
        ..quick(60)
    };
    let r = m.fit(&data, &cfg, &mut |_| {}).unwrap();
    let acc = r.validation.unwrap().accuracy.unwrap();
    assert!(acc > 0.6, "accuracy {acc} (chance is 0.25)");
}

#[test]
fn embedding_and_head_gradients_match_central_differences() {
    let data = lag_task(2, 6, 2, 4);
    let m = mnnn_zoo::create::<f64>("amrc", Some("(hidden: 4)"), &data.io, 5).unwrap();
    let (_, g) = m.gradients(&data, None).unwrap();
    let mut p = m.params().clone();
    let mut probe = m.clone();
    let checks = check_tensors(&mut p, &g.params, 1e-5, &mut |p| {
        probe.set_params(p).unwrap();
        probe.loss(&data, None).unwrap()
    });
    for c in &checks {
        assert!(c.rel_error < 1e-6, "{}: {:e}", c.name, c.rel_error);
    }
    assert!(
        checks
            .iter()
            .any(|c| c.name == "embed.table" && c.analytic_norm > 0.0)
    );
}

#[test]
fn predictions_come_back_in_the_data_units() {
    let mut data = mnnn_zoo::demo::echo_series(800, 2);
    for s in &mut data.sequences {
        if let Targets::Real(y) = &mut s.targets {
            y.mapv_inplace(|v| 1000.0 * v + 5000.0);
        }
    }
    let data = data.cast::<f32>();
    let mut m =
        mnnn_zoo::create::<f32>("amrc", Some("(hidden: 16, beta: 0.7)"), &data.io, 0).unwrap();
    let r = m.fit(&data, &quick(30), &mut |_| {}).unwrap();
    assert!(
        r.validation.as_ref().unwrap().r2.unwrap() > 0.6,
        "{:?}",
        r.validation
    );
    let Inputs::Real(x) = &data.sequences[0].inputs else {
        unreachable!()
    };
    let ys = m.predict(&Inputs::Real(x.clone())).unwrap();
    let mean = ys.mean().unwrap();
    assert!((mean - 5000.0).abs() < 500.0, "mean prediction {mean}");
    let norm = m.normalizer();
    assert!(
        (norm.slice(2)[0] - 5000.0).abs() < 500.0,
        "y_mean stored: {}",
        norm.slice(2)[0]
    );

    let mut raw = mnnn_zoo::create::<f32>("amrc", Some("(hidden: 16)"), &data.io, 0).unwrap();
    raw.fit(
        &data,
        &TrainConfig {
            normalize: false,
            ..quick(1)
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        raw.normalizer().slice(2)[0],
        0.0,
        "normalize: false keeps the identity"
    );
}

#[test]
fn same_seed_same_model_and_other_policies_train() {
    let data = mnnn_zoo::demo::echo_series(500, 3).cast::<f64>();
    let fit = |cfg: &TrainConfig| {
        let mut m =
            mnnn_zoo::create::<f64>("amrc", Some("(hidden: 8)"), &data.io, cfg.seed).unwrap();
        let r = m.fit(&data, cfg, &mut |_| {}).unwrap();
        (m.params().clone(), r)
    };
    let cfg = quick(3);
    let (a, ra) = fit(&cfg);
    let (b, rb) = fit(&cfg);
    assert_eq!(a, b);
    assert_eq!(ra.history, rb.history);
    let (c, _) = fit(&TrainConfig {
        seed: 1,
        ..cfg.clone()
    });
    assert_ne!(a, c);
    for cfg in [
        TrainConfig {
            state: StatePolicy::Reset,
            ..quick(8)
        },
        TrainConfig {
            optimizer: Optimizer::Sgd { momentum: 0.9 },
            learning_rate: 0.01,
            ..quick(8)
        },
        TrainConfig {
            window: 0,
            batch_size: 1,
            ..quick(8)
        },
    ] {
        let (_, r) = fit(&cfg);
        let h = &r.history;
        assert!(
            h.last().unwrap().train_loss < h[0].train_loss,
            "{cfg:?}: {h:?}"
        );
    }
}

#[test]
fn a_failed_fit_changes_nothing_and_a_second_fit_keeps_the_units() {
    let data = mnnn_zoo::demo::echo_series(300, 5).cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>("amrc", None, &data.io, 0).unwrap();
    m.fit(&data, &quick(2), &mut |_| {}).unwrap();
    let (params, norm) = (m.params().clone(), m.normalizer().clone());
    let wild = TrainConfig {
        optimizer: Optimizer::Sgd { momentum: 0.9 },
        learning_rate: 1e30,
        clip: 0.0,
        ..quick(3)
    };
    assert!(matches!(
        m.fit(&data, &wild, &mut |_| {}),
        Err(Error::Diverged { .. })
    ));
    assert_eq!(m.params(), &params);
    assert_eq!(m.normalizer(), &norm);
    // Fine-tuning on data in other units keeps the statistics of the first training.
    let mut scaled = data.clone();
    for s in &mut scaled.sequences {
        if let Targets::Real(y) = &mut s.targets {
            y.mapv_inplace(|v| 100.0 * v);
        }
    }
    m.fit(&scaled, &quick(1), &mut |_| {}).unwrap();
    assert_eq!(m.normalizer(), &norm);
}

#[test]
fn early_stopping_counts_validations_and_keeps_the_best_update() {
    let data = mnnn_zoo::demo::echo_series(300, 4).cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>("amrc", None, &data.io, 0).unwrap();
    let cfg = TrainConfig {
        max_updates: 5000,
        eval_every: 3,
        patience: 2,
        learning_rate: 0.05,
        schedule: Schedule::Constant,
        ..TrainConfig::default()
    };
    let r = m.fit(&data, &cfg, &mut |_| {}).unwrap();
    assert!(r.stopped_early && r.updates < 5000);
    assert!(
        r.history
            .iter()
            .enumerate()
            .all(|(i, e)| e.update == 3 * (i + 1))
    );
    let best = r
        .history
        .iter()
        .filter_map(|e| e.val_loss)
        .fold(f64::INFINITY, f64::min);
    let at = r
        .history
        .iter()
        .position(|e| e.val_loss == Some(best))
        .unwrap();
    assert_eq!(r.history[at].update, r.best_update);
    assert_eq!(
        r.history.len(),
        at + 3,
        "two validations without progress end it"
    );
    assert_eq!(r.updates, r.best_update + 2 * 3);
}

#[test]
fn bad_training_input_is_refused() {
    let data = mnnn_zoo::demo::echo_series(50, 0).cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>("amrc", None, &IoSpec::regression(2, 1), 0).unwrap();
    let e = m.fit(&data, &quick(1), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::Data(_)), "{e}");
    let mut m = mnnn_zoo::create::<f32>("amrc", None, &data.io, 0).unwrap();
    let e = m
        .fit(
            &data,
            &TrainConfig {
                learning_rate: -1.0,
                ..quick(1)
            },
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("'learning_rate' = -1"), "{e}");
    let mut empty = data.clone();
    empty.sequences[0].inputs = Inputs::Real(Array2::zeros((0, 1)));
    assert!(
        m.fit(&empty, &quick(1), &mut |_| {})
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    let e = m.fit(
        &data,
        &TrainConfig {
            learning_rate: 1e30,
            clip: 0.0,
            ..quick(5)
        },
        &mut |_| {},
    );
    if let Err(e) = e {
        assert!(matches!(e, Error::Diverged { .. }), "{e}");
    }
}

fn saved(dir: &Path) -> (std::path::PathBuf, Box<dyn DynModel<f32>>) {
    let m =
        mnnn_zoo::create::<f32>("amrc", Some("(hidden: 5)"), &IoSpec::regression(2, 1), 0).unwrap();
    let p = dir.join("m.safetensors");
    m.save(&p).unwrap();
    (p, m)
}

fn load_err(p: &Path) -> String {
    match mnnn_zoo::load::<f32>(p) {
        Ok(_) => panic!("{} loaded", p.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_model_files_give_typed_errors_and_saves_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let (p, m) = saved(dir.path());
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes, m.to_bytes().unwrap());

    assert!(load_err(&dir.path().join("missing.safetensors")).contains("missing.safetensors"));

    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    assert!(load_err(&cut).contains("truncated or corrupted"));

    let noise = dir.path().join("noise.safetensors");
    let mut b = bytes.clone();
    b[3] ^= 0x5a;
    std::fs::write(&noise, &b).unwrap();
    assert!(load_err(&noise).contains("model file"));

    let swap = |from: &str, to: &str, name: &str| {
        assert_eq!(from.len(), to.len(), "same length keeps the header valid");
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("pattern in header");
        let mut b = bytes.clone();
        b[at..at + to.len()].copy_from_slice(to.as_bytes());
        let q = dir.path().join(name);
        std::fs::write(&q, b).unwrap();
        q
    };
    // Byte-for-byte edits of the JSON header (same length keeps offsets valid).
    let e = load_err(&swap(
        "entry:\\\"amrc\\\"",
        "entry:\\\"zzzz\\\"",
        "entry.safetensors",
    ));
    assert!(e.contains("unknown model 'zzzz'"), "{e}");
    let e = load_err(&swap("hidden:5", "hidden:6", "shape.safetensors"));
    assert!(e.contains("shape") && e.contains("needs"), "{e}");
    let e = load_err(&swap("format:1", "format:9", "format.safetensors"));
    assert!(e.contains("format version 9"), "{e}");
    // A hostile standard deviation of zero is refused on load.
    let mut hostile = m.clone();
    let mut norm = hostile.normalizer().clone();
    norm.slice_mut(1).fill(0.0); // x_std
    hostile.set_normalizer(&norm).unwrap();
    let zero_std = dir.path().join("std.safetensors");
    std::fs::write(&zero_std, hostile.to_bytes().unwrap()).unwrap();
    let e = load_err(&zero_std);
    assert!(
        e.contains("must be positive") || e.contains("non-finite"),
        "{e}"
    );
    match mnnn_zoo::load::<f64>(&p) {
        Err(e) => assert!(e.to_string().contains("holds f32 weights"), "{e}"),
        Ok(_) => panic!("f32 file loaded as f64"),
    }

    // A write that cannot happen leaves nothing behind, and an existing file stays intact.
    let nowhere = dir.path().join("no/such/dir/m.safetensors");
    assert!(matches!(m.save(&nowhere), Err(Error::Io { .. })));
    let before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(before.iter().all(|n| !n.to_string_lossy().contains(".tmp")));
}

#[test]
fn update_and_time_budgets_stop_training() {
    let data = mnnn_zoo::demo::echo_series(2000, 6).cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>("amrc", Some("(hidden: 4)"), &data.io, 0).unwrap();
    let r = m
        .fit(
            &data,
            &TrainConfig {
                epochs: 1000,
                max_updates: 7,
                ..quick(1000)
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(r.updates, 7);
    assert!(r.budget_spent && r.epochs_run == 1);
    let r = m
        .fit(
            &data,
            &TrainConfig {
                epochs: 100_000,
                max_seconds: 0.05,
                ..quick(100_000)
            },
            &mut |_| {},
        )
        .unwrap();
    assert!(r.budget_spent && r.epochs_run < 100_000);
    let e = m
        .fit(
            &data,
            &TrainConfig {
                max_seconds: -1.0,
                ..quick(1)
            },
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("'max_seconds' = -1"), "{e}");
}
