//! Entries side by side on one task: the same data, the same budget and the same small
//! learning-rate search for every entry, scored on held-out test sets over several seeds.

use crate::tasks::{Metric, Task, TaskData};
use mnnn_core::train::StatePolicy;
use mnnn_core::{DynModel, Entry, Error, Inputs, Result, TrainConfig};
use ndarray::{Axis, concatenate};
use serde::Serialize;
use std::time::Instant;

mod parallel;

/// The run that times an entry's training alone stops at this many updates (or the
/// comparison's budget, if smaller) or after [`SOLO_SECONDS`], whichever comes first.
const SOLO_UPDATES: usize = 500;
/// See [`SOLO_UPDATES`].
const SOLO_SECONDS: f64 = 1.0;

/// How much training every entry gets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Budget {
    /// Parameter updates per training run.
    Updates(usize),
    /// Seconds per training run.
    Seconds(f64),
}

/// What to compare and how.
#[derive(Clone, Debug)]
pub struct CompareConfig {
    /// Entry names or preset names (a file stem of `zoo/presets`, e.g. `mnemosyne-nogate`,
    /// which compares that configuration under its own name); the memoryless `linear`
    /// baseline is always added, and on forecasting tasks the autoregressive `ar`.
    pub entries: Vec<String>,
    /// The task.
    pub task: Task,
    /// Seeds per entry (data and weights both change with the seed).
    pub seeds: usize,
    /// Training per run.
    pub budget: Budget,
    /// Learning rates tried on seed 0; the one with the best validation loss is used for all
    /// seeds.
    pub learning_rates: Vec<f64>,
}

impl CompareConfig {
    /// Defaults: 3 seeds, 1000 updates, learning rates 0.003, 0.01, 0.03.
    pub fn new(entries: Vec<String>, task: Task) -> Self {
        CompareConfig {
            entries,
            task,
            seeds: 3,
            budget: Budget::Updates(1000),
            learning_rates: vec![0.003, 0.01, 0.03],
        }
    }

    /// Refuses settings no comparison can run with.
    pub fn validate(&self) -> Result<()> {
        self.checked().map(|_| ())
    }

    /// [`CompareConfig::validate`], returning the rows the entries name: each once, in the
    /// order asked.
    fn checked(&self) -> Result<Vec<Contender>> {
        if self.seeds == 0 {
            return Err(Error::invalid_param("seeds", 0, "must be at least 1"));
        }
        match self.budget {
            Budget::Updates(0) => {
                return Err(Error::invalid_param(
                    "budget-steps",
                    0,
                    "must be at least 1",
                ));
            }
            Budget::Seconds(s) if !(s.is_finite() && s > 0.0) => {
                return Err(Error::invalid_param(
                    "budget-seconds",
                    s,
                    "must be a finite number > 0",
                ));
            }
            _ => {}
        }
        if self.learning_rates.is_empty()
            || self
                .learning_rates
                .iter()
                .any(|l| !(l.is_finite() && *l > 0.0))
        {
            return Err(Error::invalid_param(
                "learning rates",
                format!("{:?}", self.learning_rates),
                "need at least one, each > 0",
            ));
        }
        let mut rows: Vec<Contender> = Vec::new();
        for e in &self.entries {
            let c = Contender::resolve(e)?;
            // A label fixes the entry and its params: an entry's name resolves to the entry
            // before any preset of that name is looked at.
            if !rows.iter().any(|r| r.label == c.label) {
                rows.push(c);
            }
        }
        Ok(rows)
    }
}

/// A row of the comparison: an entry with its default params, or a preset.
#[derive(Clone, Debug)]
struct Contender {
    /// The row's name: the entry's canonical name, or the preset's.
    label: String,
    /// The registry entry it builds.
    entry: &'static Entry,
    /// Canonical RON params (`None`: the entry's defaults).
    params: Option<String>,
}

impl Contender {
    fn resolve(name: &str) -> Result<Contender> {
        match crate::find(name) {
            Ok(e) => Ok(Contender {
                label: e.name.to_string(),
                entry: e,
                params: None,
            }),
            Err(err) => {
                let Some((stem, text)) = crate::presets().iter().find(|(s, _)| *s == name) else {
                    return Err(err);
                };
                let rc = mnnn_core::config::parse(text, &format!("preset {stem}"))?;
                Ok(Contender {
                    label: stem.to_string(),
                    entry: crate::find(&rc.model)?,
                    params: Some(rc.params),
                })
            }
        }
    }
}

/// One entry's score at one point (the task itself, or one sweep value).
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The sweep value, if any.
    pub x: Option<f64>,
    /// Label of the point (`"test"`, a context length, a delay).
    pub label: String,
    /// Mean of the metric over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 with one seed).
    pub sd: f64,
    /// The metric for each seed.
    pub values: Vec<f64>,
    /// Mean RMSE over seeds, in the data's units (regression tasks).
    pub rmse: Option<f64>,
}

/// One entry's results.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Entry name.
    pub entry: String,
    /// Family.
    pub family: String,
    /// Trainable parameters of the model as trained.
    pub params: usize,
    /// Floats of memory state per sequence.
    pub state_floats: usize,
    /// Learning rate chosen by the search.
    pub learning_rate: f64,
    /// Scores: one point, or one per sweep value.
    pub points: Vec<Point>,
    /// Training throughput, tokens per second, of a short run at the chosen learning rate
    /// timed alone (the comparison's own runs share the machine).
    pub train_tokens_per_second: f64,
    /// Streaming inference throughput (batch 1, tokens per second).
    pub inference_tokens_per_second: f64,
    /// Peak resident memory of the process during that run alone and the inference timing
    /// (Linux), MiB.
    pub peak_rss_mib: Option<f64>,
}

/// A finished comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Task name.
    pub task: String,
    /// Metric name.
    pub metric: Metric,
    /// Name of the swept variable, if the task is a sweep.
    pub sweep: Option<String>,
    /// Seeds per entry.
    pub seeds: usize,
    /// The training budget per run.
    pub budget: Budget,
    /// One row per entry.
    pub rows: Vec<Row>,
}

/// Progress through a comparison.
#[derive(Clone, Debug)]
pub struct Event {
    /// Entry being trained.
    pub entry: String,
    /// What is running (`"lr 0.01"`, `"seed 2"`, `"delay 16, seed 1"`).
    pub stage: String,
    /// Runs finished so far, over all entries.
    pub done: usize,
    /// Runs in all.
    pub total: usize,
}

fn train_config(data: &TaskData, budget: Budget, lr: f64, seed: u64) -> TrainConfig {
    let single_stream = data.train.sequences.len() == 1;
    let (max_updates, max_seconds) = match budget {
        Budget::Updates(n) => (n, 0.0),
        Budget::Seconds(s) => (0, s),
    };
    TrainConfig {
        epochs: 1_000_000,
        batch_size: if single_stream { 4 } else { 16 },
        window: if single_stream { 32 } else { 0 },
        state: if single_stream {
            StatePolicy::Carry
        } else {
            StatePolicy::Reset
        },
        learning_rate: lr,
        patience: 0,
        seed,
        max_updates,
        max_seconds,
        ..TrainConfig::default()
    }
}

/// A trained model with the report of its training.
type Trained = (Box<dyn DynModel<f32>>, mnnn_core::FitReport);

/// Trains a fresh model of `contender` on `data`; returns it with its report, or `None` when
/// training diverged. A divergence is an outcome of the learning rate, not a failure of the
/// comparison: the search skips that rate, and a seed run scores NaN instead of sinking
/// every other row.
fn train(
    contender: &Contender,
    data: &TaskData,
    budget: Budget,
    lr: f64,
    seed: u64,
) -> Result<Option<Trained>> {
    train_with(contender, data, &train_config(data, budget, lr, seed))
}

/// [`train`] with the whole training configuration given.
fn train_with(
    contender: &Contender,
    data: &TaskData,
    cfg: &TrainConfig,
) -> Result<Option<Trained>> {
    let train = data.train.cast::<f32>();
    let mut m = contender
        .entry
        .create::<f32>(contender.params.as_deref(), &train.io, cfg.seed)?;
    match m.fit(&train, cfg, &mut |_| {}) {
        Ok(report) => Ok(Some((m, report))),
        Err(Error::Diverged { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One trained model's score on one test set.
#[derive(Clone)]
struct Score {
    x: Option<f64>,
    label: String,
    value: f64,
    rmse: Option<f64>,
}

/// The scores of `m` on each of `data`'s test sets. Without a model (its training diverged)
/// every test set scores NaN, so the table shows the failure where it happened.
fn scores(m: Option<&dyn DynModel<f32>>, data: &TaskData) -> Result<Vec<Score>> {
    data.tests
        .iter()
        .map(|t| {
            let (value, rmse) = match m {
                Some(m) => {
                    let metrics = m.evaluate(&t.data.cast::<f32>())?;
                    (data.metric.of(&metrics).unwrap_or(f64::NAN), metrics.rmse)
                }
                None => (f64::NAN, None),
            };
            Ok(Score {
                x: t.x,
                label: t.label.clone(),
                value,
                rmse,
            })
        })
        .collect()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// Streaming batch-1 inference speed over about 2048 steps of test inputs.
fn inference_speed(m: &mut dyn DynModel<f32>, data: &TaskData) -> Result<f64> {
    let seqs = &data.tests[0].data.sequences;
    let stream: Inputs<f32> = match &seqs[0].inputs {
        Inputs::Real(_) => {
            let parts: Vec<_> = seqs
                .iter()
                .cycle()
                .scan(0usize, |n, s| {
                    (*n < 2048).then(|| {
                        *n += s.len();
                        s.inputs.clone()
                    })
                })
                .filter_map(|i| {
                    if let Inputs::Real(a) = i {
                        Some(a.mapv(|v| v as f32))
                    } else {
                        None
                    }
                })
                .collect();
            let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
            Inputs::Real(concatenate(Axis(0), &views).expect("same width"))
        }
        Inputs::Tokens(_) => {
            let mut t = Vec::new();
            for s in seqs.iter().cycle() {
                if let Inputs::Tokens(x) = &s.inputs {
                    t.extend_from_slice(x);
                }
                if t.len() >= 2048 {
                    break;
                }
            }
            t.truncate(1 << 16);
            Inputs::Tokens(t)
        }
    };
    m.reset_state();
    let start = Instant::now();
    m.predict(&stream)?;
    let secs = start.elapsed().as_secs_f64();
    m.reset_state();
    Ok(stream.len() as f64 / secs.max(1e-9))
}

/// Resets the kernel's peak-RSS mark (Linux); false where that is not possible. The heap
/// that earlier runs freed but the allocator kept is handed back first, so that the mark
/// starts from what is live rather than from what earlier runs once held.
fn reset_peak_rss() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages of the heap to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak RSS since the last reset, MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the comparison; `progress` hears about every training run.
pub fn compare(cfg: &CompareConfig, progress: &mut dyn FnMut(&Event)) -> Result<Comparison> {
    let mut names = cfg.checked()?;
    if !names.iter().any(|n| n.label == "linear") {
        names.push(Contender::resolve("linear")?);
    }
    // On a forecast, the classical floor: autoregression on the recent past.
    if cfg.task.is_forecasting() && !names.iter().any(|n| n.label == "ar") {
        names.push(Contender::resolve("ar")?);
    }
    let sweep = cfg.task.sweep();
    // Without a sweep the search's winner is seed 0's run; a sweep trains every seed afresh at
    // every point.
    let runs_per_entry = cfg.learning_rates.len()
        + match &sweep {
            Some((_, points)) => cfg.seeds * points.len(),
            None => cfg.seeds - 1,
        };
    let total = runs_per_entry * names.len();
    let mut done = 0;
    // Generation is deterministic in the seed, so every contender trains on one shared copy.
    // Seed 0's data serves the search and the inference timing; the other seeds' data is read
    // only without a sweep, since a sweep's runs use the data of their own point.
    let base_seeds = if sweep.is_some() { 1 } else { cfg.seeds };
    let base: Vec<TaskData> = (0..base_seeds as u64)
        .map(|s| cfg.task.generate(s))
        .collect::<Result<_>>()?;
    let sweep_data: Vec<Vec<TaskData>> = match &sweep {
        Some((_, points)) => points
            .iter()
            .map(|(_, task)| (0..cfg.seeds as u64).map(|s| task.generate(s)).collect())
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let metric = base[0].metric;
    let mut rows = Vec::new();
    for contender in &names {
        let name = &contender.label;
        // Learning-rate search on seed 0; the winner's model is seed 0's result.
        let searched = parallel::run_all(
            &cfg.learning_rates,
            |&lr| train(contender, &base[0], cfg.budget, lr, 0),
            &mut |lr, finished| {
                progress(&Event {
                    entry: name.clone(),
                    stage: format!("lr {lr}"),
                    done: done + finished,
                    total,
                })
            },
        );
        done += searched.len();
        let mut best: Option<(f64, f64, Box<dyn DynModel<f32>>)> = None;
        for (&lr, outcome) in cfg.learning_rates.iter().zip(searched) {
            let Some((m, r)) = outcome? else {
                continue;
            };
            if best.as_ref().is_none_or(|b| r.best_loss < b.1) {
                best = Some((lr, r.best_loss, m));
            }
        }
        let (lr, _, mut model0) =
            best.ok_or_else(|| Error::Data(format!("{name} diverged at every learning rate")))?;
        // Every other run: (sweep point or none, seed), trained and scored where it runs so
        // that only its scores outlive it.
        let jobs: Vec<(Option<usize>, u64)> = match &sweep {
            Some((_, points)) => (0..points.len())
                .flat_map(|p| (0..cfg.seeds as u64).map(move |s| (Some(p), s)))
                .collect(),
            None => (1..cfg.seeds as u64).map(|s| (None, s)).collect(),
        };
        let run = |&(point, seed): &(Option<usize>, u64)| -> Result<Vec<Score>> {
            let data = match point {
                Some(p) => &sweep_data[p][seed as usize],
                None => &base[seed as usize],
            };
            let outcome = train(contender, data, cfg.budget, lr, seed)?;
            let model = outcome.as_ref().map(|(m, _)| m.as_ref());
            let mut sc = scores(model, data)?;
            if let (Some(p), Some((_, points))) = (point, &sweep) {
                sc.truncate(1);
                sc[0].x = Some(points[p].0);
                sc[0].label = points[p].0.to_string();
            }
            Ok(sc)
        };
        let finished = parallel::run_all(&jobs, run, &mut |&(point, seed), finished| {
            let stage = match (point, &sweep) {
                (Some(p), Some((var, points))) => format!("{var}={}, seed {seed}", points[p].0),
                _ => format!("seed {seed}"),
            };
            progress(&Event {
                entry: name.clone(),
                stage,
                done: done + finished,
                total,
            })
        });
        done += finished.len();
        let finished: Vec<Vec<Score>> = finished.into_iter().collect::<Result<_>>()?;
        let seed_scores: Vec<Vec<Score>> = if sweep.is_some() {
            // Jobs run point-major; a seed's row is its score at every point.
            (0..cfg.seeds)
                .map(|seed| {
                    finished
                        .iter()
                        .skip(seed)
                        .step_by(cfg.seeds)
                        .map(|v| v[0].clone())
                        .collect()
                })
                .collect()
        } else {
            std::iter::once(scores(Some(model0.as_ref()), &base[0]))
                .chain(finished.into_iter().map(Ok))
                .collect::<Result<_>>()?
        };
        let points = (0..seed_scores[0].len())
            .map(|k| {
                let values: Vec<f64> = seed_scores.iter().map(|s| s[k].value).collect();
                let rmse: Option<Vec<f64>> = seed_scores.iter().map(|s| s[k].rmse).collect();
                let (mean, sd) = mean_sd(&values);
                Point {
                    x: seed_scores[0][k].x,
                    label: seed_scores[0][k].label.clone(),
                    mean,
                    sd,
                    values,
                    rmse: rmse.map(|r| mean_sd(&r).0),
                }
            })
            .collect();
        // Speed and memory of one run alone: the runs above shared the machine, so their
        // own timings would say more about the schedule than about the model.
        let peak_ok = reset_peak_rss();
        let (updates, seconds) = match cfg.budget {
            Budget::Updates(n) => (n.min(SOLO_UPDATES), SOLO_SECONDS),
            Budget::Seconds(s) => (SOLO_UPDATES, s.min(SOLO_SECONDS)),
        };
        let mut solo = train_config(&base[0], Budget::Updates(updates), lr, 0);
        solo.max_seconds = seconds;
        let train_tps =
            train_with(contender, &base[0], &solo)?.map_or(f64::NAN, |(_, r)| r.tokens_per_second);
        let inference = inference_speed(model0.as_mut(), &base[0])?;
        rows.push(Row {
            entry: name.clone(),
            family: contender.entry.family.to_string(),
            params: model0.params().data().len(),
            state_floats: model0.state_size(),
            learning_rate: lr,
            points,
            train_tokens_per_second: train_tps,
            inference_tokens_per_second: inference,
            peak_rss_mib: if peak_ok { peak_rss_mib() } else { None },
        });
    }
    Ok(Comparison {
        task: cfg.task.name().to_string(),
        metric,
        sweep: sweep
            .map(|(n, _)| n.to_string())
            .or(base[0].sweep.map(str::to_string)),
        seeds: cfg.seeds,
        budget: cfg.budget,
        rows,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn presets_compare_under_their_own_name() {
        let c = Contender::resolve("mnemosyne-nogate").unwrap();
        assert_eq!(
            (c.label.as_str(), c.entry.name),
            ("mnemosyne-nogate", "mnemosyne")
        );
        assert!(c.params.unwrap().contains("\"none\""));
        assert_eq!(Contender::resolve("amrc").unwrap().params, None);
        assert!(Contender::resolve("mnemosyne-nogat").is_err());
    }

    use super::*;

    #[test]
    fn bad_settings_are_refused() {
        let t = Task::named("adding", false).unwrap();
        let mut c = CompareConfig::new(vec!["amrc".into()], t);
        c.seeds = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("'seeds' = 0")
        );
        c.seeds = 1;
        c.budget = Budget::Updates(0);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("budget-steps")
        );
        c.budget = Budget::Seconds(f64::NAN);
        assert!(c.validate().is_err());
        c.budget = Budget::Updates(5);
        c.entries = vec!["amcr".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("did you mean 'amrc'")
        );
    }

    #[test]
    fn a_small_comparison_has_a_row_per_entry_plus_the_baselines() {
        let t = Task::named("sines", false).unwrap();
        let mut c = CompareConfig::new(vec!["amrc".into()], t);
        c.seeds = 2;
        c.budget = Budget::Updates(20);
        c.learning_rates = vec![0.01];
        let mut events = 0;
        let r = compare(&c, &mut |_| events += 1).unwrap();
        assert_eq!(
            r.rows.iter().map(|r| r.entry.as_str()).collect::<Vec<_>>(),
            ["amrc", "linear", "ar"]
        );
        assert_eq!(events, 6);
        for row in &r.rows {
            assert_eq!(row.points.len(), 1);
            assert_eq!(row.points[0].values.len(), 2);
            assert!(row.points[0].mean.is_finite() && row.inference_tokens_per_second > 0.0);
        }
        assert_eq!(r.rows[1].state_floats, 0);
    }

    /// The runs go side by side on every core; each seed's score at each delay must still be
    /// the one that seed's run, trained and scored on its own, gets.
    #[test]
    fn runs_side_by_side_score_as_each_run_alone() {
        let task = Task::named("delayed-recall", false).unwrap();
        let mut c = CompareConfig::new(vec!["amrc".into()], task.clone());
        c.seeds = 2;
        c.budget = Budget::Updates(3);
        c.learning_rates = vec![0.01, 0.03];
        let mut stages = Vec::new();
        let r = compare(&c, &mut |e| stages.push(e.stage.clone())).unwrap();
        assert!(stages.iter().any(|s| s == "delay=8, seed 1"), "{stages:?}");
        let row = &r.rows[0];
        let contender = Contender::resolve("amrc").unwrap();
        let (_, points) = task.sweep().unwrap();
        assert_eq!(row.points.len(), points.len());
        for (point, (x, t)) in row.points.iter().zip(&points) {
            assert_eq!(point.x, Some(*x));
            for seed in 0..2u64 {
                let data = t.generate(seed).unwrap();
                let (m, _) = train(&contender, &data, c.budget, row.learning_rate, seed)
                    .unwrap()
                    .unwrap();
                let alone = scores(Some(m.as_ref()), &data).unwrap()[0].value;
                assert_eq!(point.values[seed as usize], alone, "delay {x}, seed {seed}");
            }
        }
    }
}
