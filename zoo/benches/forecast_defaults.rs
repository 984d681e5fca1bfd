//! Do the default training settings train? On the zoo's forecasting tasks, each entry is
//! trained once with `TrainConfig::default()` and once at every point of a 3 × 3 grid of
//! peak learning rate (0.003, 0.01, 0.03) × update budget (300, 1000, 3000), everything else
//! left at its default, and scored on the held-out tail (warm: the memory runs through the
//! training part first). A row passes when the default is within 0.02 R² of the grid's best.
//!
//! `--horizon` mode instead scores Mackey–Glass 17 steps ahead at the default settings over
//! several seeds, with `ar` beside the memory entries, as NRMSE (RMSE over the standard
//! deviation of the scored targets) and R², mean ± sd.
//!
//! `cargo bench -p mnnn-zoo --bench forecast_defaults -- [grid|horizon] [--entries a,b]
//! [--len N] [--seeds N] [--tasks sines,mackey-glass,mackey-glass-17,csv]`
//!
//! Rows print as they finish, so a partial run is still a result. Runs are sequential (one
//! core) so the figures do not depend on the machine's other load beyond the wall time.

use mnnn_core::{Inputs, Targets, TrainConfig};
use mnnn_zoo::tasks::{Task, TaskData, csv_series};
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

const RATES: [f64; 3] = [0.003, 0.01, 0.03];
const BUDGETS: [usize; 3] = [300, 1000, 3000];

/// An hourly-load-like series (daily and weekly cycles with AR(1) noise) written as CSV, so
/// one entry of the grid goes through the CSV path a user's file takes.
fn write_load_csv(path: &Path, rows: usize) {
    let mut rng = mnnn_core::Rng::derive(7, "load-csv");
    let mut noise = 0.0;
    let mut text = String::from("hour,load\n");
    for t in 0..rows {
        noise = 0.7 * noise + 0.3 * rng.normal();
        let tau = std::f64::consts::TAU;
        let day = (tau * t as f64 / 24.0).sin();
        let week = (tau * t as f64 / 168.0).sin();
        let v = 50.0 + 8.0 * day + 3.0 * week + 2.0 * noise;
        text.push_str(&format!("{t},{v:.4}\n"));
    }
    std::fs::write(path, text).expect("write the CSV series");
}

/// Held-out R² and NRMSE of `name` trained on `data` with `cfg` (`None` if it diverged).
fn score(name: &str, data: &TaskData, cfg: &TrainConfig) -> Option<(f64, f64)> {
    let train = data.train.cast::<f32>();
    let mut m = mnnn_zoo::create::<f32>(name, None, &train.io, cfg.seed).expect("entry");
    m.fit(&train, cfg, &mut |_| {}).ok()?;
    let test = &data.tests[0].data;
    let metrics = m.evaluate(&test.cast::<f32>()).ok()?;
    let (r2, rmse) = (metrics.r2?, metrics.rmse?);
    Some((r2, rmse / scored_sd(test)))
}

/// Standard deviation of the scored targets (population), the NRMSE denominator.
fn scored_sd(test: &mnnn_core::Dataset<f64>) -> f64 {
    let mut v = Vec::new();
    for s in &test.sequences {
        if let (Targets::Real(y), Inputs::Real(_)) = (&s.targets, &s.inputs) {
            v.extend((0..y.nrows()).filter(|&t| s.counts(t)).map(|t| y[[t, 0]]));
        }
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("diverged".into(), |v| format!("{v:.3}"))
}

fn task_data(task: &str, len: usize, seed: u64, csv: &Path) -> TaskData {
    match task {
        "csv" => csv_series(csv, &["load".to_string()]).expect("CSV task"),
        "sines" => Task::Sines { len }.generate(seed).expect("task"),
        "mackey-glass" => Task::MackeyGlass { len, horizon: 1 }
            .generate(seed)
            .expect("task"),
        "mackey-glass-17" => Task::MackeyGlass { len, horizon: 17 }
            .generate(seed)
            .expect("task"),
        other => panic!("unknown task {other}"),
    }
}

fn grid(entries: &[String], tasks: &[String], len: usize, seeds: u64, csv: &Path) {
    println!(
        "| task | entry | default R² | grid best R² (lr, updates) | gap | within 0.02 | seconds |"
    );
    println!("|---|---|---:|---:|---:|:---:|---:|");
    for task in tasks {
        for name in entries {
            let clock = Instant::now();
            let (mut def, mut best) = (Vec::new(), Vec::new());
            let mut best_at = (0.0, 0);
            for seed in 0..seeds {
                let data = task_data(task, len, seed, csv);
                let base = TrainConfig {
                    seed,
                    ..TrainConfig::default()
                };
                let d = score(name, &data, &base).map_or(f64::NEG_INFINITY, |s| s.0);
                let mut top = f64::NEG_INFINITY;
                for lr in RATES {
                    for updates in BUDGETS {
                        let cfg = TrainConfig {
                            learning_rate: lr,
                            max_updates: updates,
                            ..base.clone()
                        };
                        let r = score(name, &data, &cfg).map_or(f64::NEG_INFINITY, |s| s.0);
                        if r > top {
                            top = r;
                            best_at = (lr, updates);
                        }
                    }
                }
                def.push(d);
                best.push(top);
            }
            let (d, _) = mean_sd(&def);
            let (b, _) = mean_sd(&best);
            let finite = |v: f64| v.is_finite().then_some(v);
            let gap = b - d;
            println!(
                "| {task} | {name} | {} | {} ({}, {}) | {} | {} | {:.0} |",
                fmt(finite(d)),
                fmt(finite(b)),
                best_at.0,
                best_at.1,
                fmt(finite(gap)),
                if gap <= 0.02 { "yes" } else { "**no**" },
                clock.elapsed().as_secs_f64()
            );
            std::io::stdout().flush().ok();
        }
    }
}

fn horizon(entries: &[String], len: usize, seeds: u64) {
    println!("| entry | NRMSE (mean ± sd) | R² (mean ± sd) | seeds | seconds |");
    println!("|---|---:|---:|---:|---:|");
    let mut all: Vec<String> = entries.to_vec();
    if !all.iter().any(|e| e == "ar") {
        all.push("ar".into());
    }
    for name in &all {
        let clock = Instant::now();
        let (mut r2, mut nrmse) = (Vec::new(), Vec::new());
        for seed in 0..seeds {
            let data = Task::MackeyGlass { len, horizon: 17 }
                .generate(seed)
                .expect("task");
            let cfg = TrainConfig {
                seed,
                ..TrainConfig::default()
            };
            let (r, n) = score(name, &data, &cfg).unwrap_or((f64::NAN, f64::NAN));
            r2.push(r);
            nrmse.push(n);
        }
        let ((nm, ns), (rm, rs)) = (mean_sd(&nrmse), mean_sd(&r2));
        println!(
            "| {name} | {nm:.4} ± {ns:.4} | {rm:.4} ± {rs:.4} | {seeds} | {:.0} |",
            clock.elapsed().as_secs_f64()
        );
        std::io::stdout().flush().ok();
    }
}

fn main() {
    let mut mode = "grid".to_string();
    let mut entries: Vec<String> = ["amn", "amrc", "pmrc", "dtpn", "gru", "mnemosyne"]
        .map(String::from)
        .to_vec();
    let mut tasks: Vec<String> = ["sines", "mackey-glass", "mackey-glass-17", "csv"]
        .map(String::from)
        .to_vec();
    let mut len = 1000;
    let mut seeds = 1;
    let mut args = std::env::args().skip(1);
    let list = |v: Option<String>| -> Vec<String> {
        v.expect("a comma-separated list")
            .split(',')
            .map(String::from)
            .collect()
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "grid" | "horizon" => mode = a,
            "--entries" => entries = list(args.next()),
            "--tasks" => tasks = list(args.next()),
            "--len" => len = args.next().and_then(|v| v.parse().ok()).expect("--len N"),
            "--seeds" => seeds = args.next().and_then(|v| v.parse().ok()).expect("--seeds N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let csv = dir.path().join("load.csv");
    write_load_csv(&csv, len + len / 4 + 1);
    let clock = Instant::now();
    if mode == "grid" {
        grid(&entries, &tasks, len, seeds, &csv);
    } else {
        seeds = seeds.max(3);
        horizon(&entries, len, seeds);
    }
    println!(
        "\n{mode}: {} training steps per task, {seeds} seed(s), {:.0} s wall",
        len,
        clock.elapsed().as_secs_f64()
    );
}
