//! `mnnn train`.

use super::{CmdResult, print_metrics};
use crate::Failure;
use crate::progress::EpochBar;
use mnnn_core::config::{self, DataSpec, RunConfig};
use mnnn_core::csvdata::load_csv;
use mnnn_core::metrics::{self, Metrics};
use mnnn_core::train::plan;
use mnnn_core::{Dataset, FitReport, OutputKind, TrainConfig};
use mnnn_zoo::baseline::LinearRegression;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Summary<'a> {
    model: &'a str,
    params: &'a str,
    epochs_run: usize,
    best_epoch: usize,
    seconds: f64,
    tokens_per_second: f64,
    train: &'a Metrics,
    validation: Option<&'a Metrics>,
    linear_baseline_validation: Option<Metrics>,
}

/// The built-in default run: AMRC on the demo echo series.
fn default_run() -> (RunConfig, Dataset<f64>) {
    let cfg = RunConfig {
        model: "amrc".into(),
        params: "(hidden: 32, alpha: 0.1, beta: 0.7)".into(),
        data: None,
        train: TrainConfig::default(),
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
    let train: Vec<_> = split
        .train
        .iter()
        .map(|t| (t.seq, t.start, t.end))
        .collect();
    let val: Vec<_> = split
        .validation
        .iter()
        .map(|t| (t.seq, t.score_from, t.end))
        .collect();
    let lr = LinearRegression::fit(data, &train).ok()?;
    let (p, y) = lr.predict(data, &val).ok()?;
    Some(metrics::regression(&p, &y, data.io.cell_output()))
}

/// Trains from a config file, or the built-in default.
pub fn run(config_path: Option<&Path>, out: Option<&Path>, json: bool) -> CmdResult {
    let (cfg, data64) = match config_path {
        None => default_run(),
        Some(p) => {
            let cfg = config::load(p)?;
            let data = match &cfg.data {
                Some(DataSpec::Csv {
                    path,
                    inputs,
                    targets,
                    sequence,
                }) => {
                    if let Some(out) = out {
                        super::refuse_overwrite("--out", out, &[p, path])?;
                    }
                    // Read as f32, the type the model trains in, so a value that only f64
                    // can hold is refused with its line rather than turning into inf.
                    load_csv::<f32>(path, inputs, targets, sequence.as_deref())?.cast::<f64>()
                }
                None => {
                    return Err(Failure::usage(format!(
                        "{}: the config names no data; add data: Csv(path: \"...\", inputs: [...], targets: [...])",
                        p.display()
                    )));
                }
            };
            (cfg, data)
        }
    };
    let data: Dataset<f32> = data64.cast();
    let entry = mnnn_zoo::find(&cfg.model)?;
    let mut model = entry.create::<f32>(Some(&cfg.params), &data.io, cfg.train.seed)?;
    if !json {
        eprintln!(
            "training {} {} on {} sequence(s), {} steps",
            cfg.model,
            cfg.params,
            data.sequences.len(),
            data.steps()
        );
    }
    let bar = EpochBar::new(cfg.train.epochs);
    let report: FitReport = model.fit(&data, &cfg.train, &mut |p| bar.update(p))?;
    bar.finish();
    let baseline = linear_baseline(&data64, cfg.train.validation);
    if let Some(path) = out {
        model.save(path)?;
    }
    if json {
        let s = Summary {
            model: &cfg.model,
            params: &cfg.params,
            epochs_run: report.epochs_run,
            best_epoch: report.best_epoch,
            seconds: report.seconds,
            tokens_per_second: report.tokens_per_second,
            train: &report.train,
            validation: report.validation.as_ref(),
            linear_baseline_validation: baseline,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summary serialises")
        );
        return Ok(());
    }
    println!(
        "{} trained {} epochs (best {}) in {:.2}s, {:.0} tokens/s",
        cfg.model, report.epochs_run, report.best_epoch, report.seconds, report.tokens_per_second
    );
    print_metrics("train", &report.train);
    if let Some(v) = &report.validation {
        print_metrics("validation", v);
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
