//! Forecasting tasks: predict the next value of a series.

use super::{Metric, TaskData};
use mnnn_core::{Dataset, Inputs, IoSpec, Result, Rng, Sequence, Targets};
use ndarray::{Array2, s};
use std::path::Path;

/// Next-step forecasting of `series` (`T × width`): training on the first `train_len` steps;
/// the test set is the whole series with only the steps after `train_len` counted, so the
/// memory is warm when scoring starts.
fn next_step(series: &Array2<f64>, train_len: usize, names: Vec<String>) -> TaskData {
    let t = series.nrows() - 1;
    let x = series.slice(s![..t, ..]).to_owned();
    let y = series.slice(s![1.., ..]).to_owned();
    let w = series.ncols();
    let mut io = IoSpec::regression(w, w);
    io.input_names = names.clone();
    io.target_names = names.iter().map(|n| format!("next_{n}")).collect();
    scored_after(io, x, y, train_len)
}

/// One sequence `x → y` split in time: training on the first `train_len` steps, testing on
/// the whole sequence with only the steps after `train_len` scored, so the memory is warm
/// when scoring starts.
fn scored_after(io: IoSpec, x: Array2<f64>, y: Array2<f64>, train_len: usize) -> TaskData {
    let t = x.nrows();
    let train = Dataset {
        io: io.clone(),
        sequences: vec![Sequence {
            inputs: Inputs::Real(x.slice(s![..train_len, ..]).to_owned()),
            targets: Targets::Real(y.slice(s![..train_len, ..]).to_owned()),
            mask: None,
        }],
    };
    let test = Dataset {
        io,
        sequences: vec![Sequence {
            inputs: Inputs::Real(x),
            targets: Targets::Real(y),
            mask: Some((0..t).map(|i| i >= train_len).collect()),
        }],
    };
    TaskData::one_test(train, test, Metric::R2)
}

/// A noisy sum of three sines with seed-drawn amplitudes, periods (10–100 steps) and phases.
pub fn sines(len: usize, seed: u64) -> TaskData {
    let mut rng = Rng::derive(seed, "sines");
    let waves: Vec<(f64, f64, f64)> = (0..3)
        .map(|_| {
            let amp = rng.uniform_in(0.5, 1.5);
            let omega = std::f64::consts::TAU / rng.uniform_in(10.0, 100.0);
            (amp, omega, rng.uniform_in(0.0, std::f64::consts::TAU))
        })
        .collect();
    let total = len + len / 3 + 1;
    let series = Array2::from_shape_fn((total, 1), |(t, _)| {
        waves
            .iter()
            .map(|(a, w, p)| a * (w * t as f64 + p).sin())
            .sum::<f64>()
    });
    let noisy = series.mapv(|v| v + 0.05 * rng.normal());
    next_step(&noisy, len, vec!["sines".into()])
}

/// The Mackey–Glass series `dx/dt = 0.2 x(t−τ) / (1 + x(t−τ)^10) − 0.1 x(t)`, τ = 17,
/// integrated by fourth-order Runge–Kutta at step 0.1 (the delayed term read from the stored
/// history) from a seed-perturbed constant history, sampled every time unit after a transient
/// of 500.
pub fn mackey_glass_series(len: usize, seed: u64) -> Vec<f64> {
    const DT: f64 = 0.1;
    const SUB: usize = 10; // substeps per sample
    const LAG: usize = 170; // τ / DT
    let mut rng = Rng::derive(seed, "mackey-glass");
    let x0 = 1.2 + 0.2 * rng.uniform();
    let mut hist: Vec<f64> = vec![x0; LAG + 1];
    let f = |x: f64, xd: f64| 0.2 * xd / (1.0 + xd.powi(10)) - 0.1 * x;
    let transient = 500 * SUB;
    let mut out = Vec::with_capacity(len);
    let mut step = 0;
    while out.len() < len {
        let n = hist.len();
        let (x, xd, xd_next) = (hist[n - 1], hist[n - 1 - LAG], hist[n - LAG]);
        let xd_mid = 0.5 * (xd + xd_next);
        let k1 = f(x, xd);
        let k2 = f(x + 0.5 * DT * k1, xd_mid);
        let k3 = f(x + 0.5 * DT * k2, xd_mid);
        let k4 = f(x + DT * k3, xd_next);
        hist.push(x + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4));
        if hist.len() > 4 * LAG {
            hist.drain(..hist.len() - (LAG + 1));
        }
        step += 1;
        if step > transient && step % SUB == 0 {
            out.push(*hist.last().expect("non-empty"));
        }
    }
    out
}

/// Mackey–Glass forecasting `horizon` steps ahead (1: the next value): the input is the
/// series up to now, the target its value `horizon` steps later.
pub fn mackey_glass(len: usize, horizon: usize, seed: u64) -> TaskData {
    let horizon = horizon.max(1);
    let steps = len + len / 3;
    let v = mackey_glass_series(steps + horizon, seed);
    let x = Array2::from_shape_vec((steps, 1), v[..steps].to_vec()).expect("shape");
    let y = Array2::from_shape_vec((steps, 1), v[horizon..].to_vec()).expect("shape");
    let mut io = IoSpec::regression(1, 1);
    io.input_names = vec!["mackey_glass".into()];
    io.target_names = vec![if horizon == 1 {
        "next_mackey_glass".into()
    } else {
        format!("mackey_glass_plus_{horizon}")
    }];
    scored_after(io, x, y, len)
}

/// Next-step forecasting of the named columns of a CSV file: the first 80% of the rows
/// train, the rest are scored.
pub fn csv_series(path: &Path, columns: &[String]) -> Result<TaskData> {
    let mut seqs = mnnn_core::csvdata::load_csv_inputs::<f64>(path, columns, None)?;
    let series = seqs.pop().expect("one sequence");
    if series.nrows() < 10 {
        return Err(mnnn_core::Error::Data(format!(
            "{}: a forecasting task needs at least 10 rows",
            path.display()
        )));
    }
    let train_len = ((series.nrows() - 1) as f64 * 0.8) as usize;
    Ok(next_step(&series, train_len, columns.to_vec()))
}

/// Input columns to target columns of a CSV file, read as one sequence: the first 80% of the
/// rows train, and the whole file is run through with only the last 20% scored, so the
/// model carries its memory into the part it is scored on.
pub fn csv_columns(path: &Path, inputs: &[String], targets: &[String]) -> Result<TaskData> {
    let data = mnnn_core::csvdata::load_csv::<f64>(path, inputs, targets, None)?;
    let io = data.io.clone();
    let whole = data.sequences.into_iter().next().expect("one sequence");
    let rows = whole.len();
    if rows < 10 {
        return Err(mnnn_core::Error::Data(format!(
            "{}: comparing on a CSV file needs at least 10 rows",
            path.display()
        )));
    }
    let train_len = (rows as f64 * 0.8) as usize;
    let (Inputs::Real(x), Targets::Real(y)) = (whole.inputs, whole.targets) else {
        return Err(mnnn_core::Error::Data(format!(
            "{}: expected numeric columns",
            path.display()
        )));
    };
    Ok(scored_after(io, x, y, train_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_next_inputs_and_only_the_future_is_scored() {
        let d = sines(300, 4);
        let (Inputs::Real(x), Targets::Real(y)) = (
            &d.tests[0].data.sequences[0].inputs,
            &d.tests[0].data.sequences[0].targets,
        ) else {
            panic!()
        };
        for t in 0..x.nrows() - 1 {
            assert_eq!(y[[t, 0]], x[[t + 1, 0]]);
        }
        let mask = d.tests[0].data.sequences[0].mask.as_ref().unwrap();
        assert!(!mask[299] && mask[300]);
        assert_eq!(d.train.sequences[0].len(), 300);
    }

    #[test]
    fn csv_columns_train_on_the_first_rows_and_score_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        let rows: String = (0..50)
            .map(|t| format!("{t},{},{}\n", t * 2, t * 3))
            .collect();
        std::fs::write(&path, format!("t,x,y\n{rows}")).unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = csv_columns(&path, &names(&["x", "t"]), &names(&["y"])).unwrap();
        assert_eq!(d.train.sequences[0].len(), 40);
        assert_eq!(d.train.io.input_names, ["x", "t"]);
        let test = &d.tests[0].data.sequences[0];
        let (Inputs::Real(x), Targets::Real(y)) = (&test.inputs, &test.targets) else {
            panic!("real columns")
        };
        assert_eq!((x[[45, 0]], x[[45, 1]], y[[45, 0]]), (90.0, 45.0, 135.0));
        let mask = test.mask.as_ref().unwrap();
        assert!(!mask[39] && mask[40] && mask.len() == 50);
        std::fs::write(&path, "x,y\n1,2\n").unwrap();
        assert!(csv_columns(&path, &names(&["x"]), &names(&["y"])).is_err());
    }

    #[test]
    fn mackey_glass_targets_lie_horizon_steps_ahead() {
        let v = mackey_glass_series(120 + 40 + 17, 3);
        let d = mackey_glass(120, 17, 3);
        let s = &d.tests[0].data.sequences[0];
        let (Inputs::Real(x), Targets::Real(y)) = (&s.inputs, &s.targets) else {
            panic!("real series")
        };
        assert_eq!(x.nrows(), 160);
        for t in 0..x.nrows() {
            assert_eq!((x[[t, 0]], y[[t, 0]]), (v[t], v[t + 17]), "step {t}");
        }
        assert_eq!(d.train.sequences[0].len(), 120);
        let next = mackey_glass(120, 1, 3);
        let Targets::Real(y1) = &next.tests[0].data.sequences[0].targets else {
            panic!("real series")
        };
        assert_eq!(y1[[0, 0]], v[1]);
    }

    #[test]
    fn mackey_glass_is_the_chaotic_attractor() {
        let v = mackey_glass_series(2000, 0);
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        // The τ = 17 attractor lives roughly in [0.2, 1.4] and never settles.
        assert!(lo > 0.1 && hi < 1.5 && hi - lo > 0.8, "range [{lo}, {hi}]");
        let tail = &v[1000..];
        let mean = tail.iter().sum::<f64>() / tail.len() as f64;
        let var = tail.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / tail.len() as f64;
        assert!(var > 0.01, "still oscillating: var {var}");
        assert_ne!(mackey_glass_series(50, 1), mackey_glass_series(50, 2));
    }
}
