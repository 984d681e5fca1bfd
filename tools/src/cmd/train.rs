//! `mnnn train`.

use super::{CmdResult, print_metrics};
use crate::Failure;
use crate::progress::UpdateBar;
use mnnn_core::config::{self, DataSpec, RunConfig};
use mnnn_core::metrics::{self, Metrics};
use mnnn_core::series;
use mnnn_core::train::EvalRecord;
use mnnn_core::train::plan;
use mnnn_core::{Dataset, FitReport, OutputKind, TrainConfig, Wrapper};
use mnnn_zoo::baseline::LinearRegression;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Summary<'a> {
    model: &'a str,
    params: &'a str,
    updates: usize,
    best_update: usize,
    refit_updates: Option<usize>,
    stopped_early: bool,
    epochs_run: usize,
    seconds: f64,
    tokens_per_second: f64,
    train: &'a Metrics,
    validation: Option<&'a Metrics>,
    /// How the validation part was scored: "warm" or "cold".
    validation_scoring: Option<&'static str>,
    history: &'a [EvalRecord],
    linear_baseline_validation: Option<Metrics>,
}

/// The built-in default run: AMRC on the demo echo series.
fn default_run() -> (RunConfig, Dataset<f64>) {
    let cfg = RunConfig {
        model: "amrc".into(),
        params: "(hidden: 32, alpha: 0.1, beta: 0.7)".into(),
        data: None,
        train: TrainConfig::default(),
        skip: false,
    };
    (cfg, mnnn_zoo::demo::echo_series(4000, 0))
}

/// The memoryless linear regression on the same chronological split, scored on validation.
fn linear_baseline(data: &Dataset<f64>, validation: f64) -> Option<Metrics> {
    if !matches!(data.io.output, OutputKind::Regression(_)) {
        return None;
    }
    let split = plan::split(data, validation);
    if split.validation.is_empty() {
        return None;
    }
    // Rows past a horizon have no target: they end each range (they are the last rows).
    let end = |seq: usize, end: usize| match &data.sequences[seq].mask {
        Some(m) => end.min(m.iter().rposition(|&c| c).map_or(0, |i| i + 1)),
        None => end,
    };
    let train: Vec<_> = split
        .train
        .iter()
        .map(|t| (t.seq, t.start, end(t.seq, t.end)))
        .filter(|&(_, a, b)| a < b)
        .collect();
    let val: Vec<_> = split
        .validation
        .iter()
        .map(|t| (t.seq, t.score_from, end(t.seq, t.end)))
        .filter(|&(_, a, b)| a < b)
        .collect();
    if val.is_empty() {
        return None;
    }
    let lr = LinearRegression::fit(data, &train).ok()?;
    let (p, y) = lr.predict(data, &val).ok()?;
    Some(metrics::regression(&p, &y, data.io.cell_output()))
}

/// Trains from a config file, or the built-in default; `data` (from `--data`) replaces the
/// config's own.
pub fn run(
    config_path: Option<&Path>,
    data: Option<DataSpec>,
    out: Option<&Path>,
    json: bool,
) -> CmdResult {
    let mut wrapper = Wrapper::default();
    let (cfg, data64) = match config_path {
        None => default_run(),
        Some(p) => {
            let mut cfg = config::load(p)?;
            if data.is_some() {
                cfg.data = data;
            }
            let data = match &cfg.data {
                Some(
                    spec @ DataSpec::Csv {
                        path,
                        inputs,
                        targets,
                        sequence,
                        difference,
                        ..
                    },
                ) => {
                    if let Some(out) = out {
                        super::refuse_overwrite("--out", out, &[p, path])?;
                    }
                    let how = spec.forecasting();
                    wrapper.horizon = how.horizon;
                    if let Some(copy) = series::copy_task(inputs, targets, how.horizon) {
                        return Err(Failure::usage(copy));
                    }
                    if *difference {
                        // The config refuses a target that is not an input.
                        wrapper.difference = targets
                            .iter()
                            .filter_map(|t| inputs.iter().position(|i| i == t))
                            .collect();
                    }
                    // Values are checked as f32, the type the model trains in, so one that
                    // only f64 can hold is refused with its line rather than turning into inf.
                    series::load(path, inputs, targets, sequence.as_deref(), &how)?
                }
                None => {
                    return Err(Failure::usage(format!(
                        "{}: the config names no data; add data: Csv(path: \"...\", inputs: [...], targets: [...]), or give --data FILE --inputs ... --targets ...",
                        p.display()
                    )));
                }
            };
            (cfg, data)
        }
    };
    let data: Dataset<f32> = data64.cast();
    let entry = mnnn_zoo::find(&cfg.model)?;
    wrapper.skip = cfg.skip;
    let mut model =
        entry.create_with::<f32>(Some(&cfg.params), &data.io, cfg.train.seed, &wrapper)?;
    if !json {
        eprintln!(
            "training {} {} on {} sequence(s), {} steps",
            cfg.model,
            cfg.params,
            data.sequences.len(),
            data.steps()
        );
        if let Some(DataSpec::Csv {
            horizon,
            difference,
            ..
        }) = &cfg.data
            && (*horizon > 0 || *difference || cfg.skip)
        {
            eprintln!(
                "forecasting {} step(s) ahead{}{}",
                horizon,
                if *difference {
                    ", learning the change from the current value (scored in levels)"
                } else {
                    ""
                },
                if cfg.skip {
                    ", with a linear skip from the input to the head"
                } else {
                    ""
                }
            );
        }
    }
    if config_path.is_some() && out.is_none() {
        // Checked before training, so minutes of training are not thrown away.
        return Err(Failure::usage(
            "train: without --out the trained model would be thrown away; add --out model.safetensors",
        ));
    }
    let bar = UpdateBar::new(cfg.train.max_updates);
    let report: FitReport = model.fit(&data, &cfg.train, &mut |p| bar.update(p))?;
    bar.finish();
    let baseline = linear_baseline(&data64, cfg.train.validation);
    if let Some(path) = out {
        model.save(path)?;
    }
    // A single stream is cut in time and its validation part scored after the memory ran
    // through the training part; separate sequences are each scored from a fresh state.
    let scoring = if data.sequences.len() == 1 {
        "warm"
    } else {
        "cold"
    };
    if json {
        let s = Summary {
            model: &cfg.model,
            params: &cfg.params,
            updates: report.updates,
            best_update: report.best_update,
            refit_updates: report.refit_updates,
            stopped_early: report.stopped_early,
            epochs_run: report.epochs_run,
            seconds: report.seconds,
            tokens_per_second: report.tokens_per_second,
            train: &report.train,
            validation: report.validation.as_ref(),
            validation_scoring: report.validation.as_ref().map(|_| scoring),
            history: &report.history,
            linear_baseline_validation: baseline,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summary serialises")
        );
        return Ok(());
    }
    let stop = if report.stopped_early {
        ", stopped early"
    } else if report.budget_spent {
        ", budget spent"
    } else {
        ""
    };
    println!(
        "{} trained {} updates in {} passes (best at update {}{stop}) in {:.2}s, {:.0} tokens/s",
        cfg.model,
        report.updates,
        report.epochs_run,
        report.best_update,
        report.seconds,
        report.tokens_per_second
    );
    if let Some(n) = report.refit_updates {
        println!(
            "            then refit on training + validation data for {n} updates (validation is no longer held out)"
        );
    }
    print_metrics("train", &report.train);
    if let Some(v) = &report.validation {
        print_metrics("validation", v);
        println!(
            "            ({scoring}: {})",
            if scoring == "warm" {
                "memory run through the training part first"
            } else {
                "each sequence from a fresh state"
            }
        );
    }
    if let Some(b) = &baseline {
        print_metrics("linear", b);
        println!("            (memoryless linear regression on the same split, validation part)");
    }
    if let Some(path) = out {
        println!("saved {}", path.display());
    }
    Ok(())
}
