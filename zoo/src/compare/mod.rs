//! Entries side by side on one task: the same data, the same budget and the same small
//! learning-rate search for every entry, scored on held-out test sets over several seeds.

use crate::tasks::{Metric, Task, TaskData};
use mnnn_core::train::StatePolicy;
use mnnn_core::{DynModel, Entry, Error, Result, TrainConfig};
use serde::{Deserialize, Serialize};

mod measure;
mod parallel;
mod record;
mod run;

pub use measure::MemoryProbe;
pub use record::{Header, RunKind, RunRecord, ScoreRecord, SoloRecord, comparison, read_jsonl};
pub use run::compare;

/// The run that times an entry's training alone stops at this many updates (or the
/// comparison's budget, if smaller) or after [`SOLO_SECONDS`], whichever comes first.
const SOLO_UPDATES: usize = 500;
/// See [`SOLO_UPDATES`].
const SOLO_SECONDS: f64 = 1.0;

/// How much training every entry gets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Runs already done (read back from an earlier comparison's results): not run again.
    pub done: Vec<RunRecord>,
    /// The header those runs were made under: the comparison refuses to start unless it
    /// compares on the same task, budget and learning rates.
    pub done_header: Option<Header>,
    /// How the solo run's peak heap is read (`None`: not measured).
    pub memory: Option<MemoryProbe>,
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
            done: Vec::new(),
            done_header: None,
            memory: None,
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
        let r = crate::resolve(name)?;
        Ok(Contender {
            label: r.name.to_string(),
            entry: r.entry,
            params: r.params,
        })
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
    /// Peak heap of that run alone and the inference timing, above what was live before it,
    /// MiB: measured per run, so earlier entries do not carry over (`None`: not measured).
    pub peak_heap_mib: Option<f64>,
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
pub enum Event {
    /// Before any run: what is compared, and for each row the runs still to do and the
    /// estimated work of one (parameters × tokens trained; comparable between rows).
    Plan {
        /// What is compared.
        header: Header,
        /// `(row, runs left, work per run)`, in row order.
        work: Vec<(String, usize, f64)>,
    },
    /// A run started.
    Started {
        /// Row name.
        entry: String,
        /// What runs: `lr 0.01`, `seed 2`, `delay=8, seed 1` (the sweep variable named).
        stage: String,
    },
    /// A run finished: its record, to be kept at once.
    Finished(RunRecord),
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

/// The scores of `m` on each of `data`'s test sets. Without a model (its training diverged)
/// every test set scores `None`, so the table shows the failure where it happened.
fn scores(m: Option<&dyn DynModel<f32>>, data: &TaskData) -> Result<Vec<ScoreRecord>> {
    data.tests
        .iter()
        .map(|t| {
            let (value, rmse) = match m {
                Some(m) => {
                    let metrics = m.evaluate(&t.data.cast::<f32>())?;
                    (data.metric.of(&metrics), metrics.rmse)
                }
                None => (None, None),
            };
            Ok(ScoreRecord {
                label: t.label.clone(),
                x: t.x,
                value: value.filter(|v| v.is_finite()),
                rmse,
            })
        })
        .collect()
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
    fn the_costliest_rows_search_starts_first() {
        let t = Task::named("sines", false).unwrap();
        // linear is listed first but has far fewer parameters than amrc.
        let mut c = CompareConfig::new(vec!["linear".into(), "amrc".into()], t);
        c.seeds = 1;
        c.budget = Budget::Updates(5);
        let mut started = Vec::new();
        compare(&c, &mut |e| {
            if let Event::Started { entry, stage } = e {
                started.push(format!("{entry} {stage}"));
            }
        })
        .unwrap();
        assert_eq!(started[0], "amrc lr 0.003", "{started:?}");
    }

    #[test]
    fn a_small_comparison_has_a_row_per_entry_plus_the_baselines() {
        let t = Task::named("sines", false).unwrap();
        let mut c = CompareConfig::new(vec!["amrc".into()], t);
        c.seeds = 2;
        c.budget = Budget::Updates(20);
        c.learning_rates = vec![0.01];
        let (mut started, mut records, mut plans) = (0, Vec::new(), 0);
        let r = compare(&c, &mut |e| match e {
            Event::Plan { work, .. } => {
                plans += 1;
                // Every row (amrc, linear, and on a forecast ar) has two runs to do; the
                // larger model is estimated to cost more.
                assert_eq!(work.iter().map(|w| w.1).collect::<Vec<_>>(), [2, 2, 2]);
                assert!(work[0].2 > work[1].2, "{work:?}");
            }
            Event::Started { .. } => started += 1,
            Event::Finished(r) => records.push(r.clone()),
        })
        .unwrap();
        assert_eq!(
            r.rows.iter().map(|r| r.entry.as_str()).collect::<Vec<_>>(),
            ["amrc", "linear", "ar"]
        );
        // Two runs per row, each heard starting and finishing, and one timing run per row.
        assert_eq!((plans, started, records.len()), (1, 6, 9));
        for row in &r.rows {
            assert_eq!(row.points.len(), 1);
            assert_eq!(row.points[0].values.len(), 2);
            assert!(row.points[0].mean.is_finite() && row.inference_tokens_per_second > 0.0);
            assert_eq!(row.peak_heap_mib, None, "no probe, no figure");
        }
        assert_eq!(r.rows[1].state_floats, 0);

        // Resuming from every record runs nothing and gives the same table; from some of
        // them, runs only the rest.
        for keep in [records.len(), 3] {
            c.done = records[..keep].to_vec();
            let mut again = 0;
            let r2 = compare(&c, &mut |e| {
                if let Event::Started { .. } = e {
                    again += 1
                }
            })
            .unwrap();
            assert_eq!(
                again,
                6 - records[..keep]
                    .iter()
                    .filter(|r| r.kind != RunKind::Solo)
                    .count()
            );
            for (a, b) in r.rows.iter().zip(&r2.rows) {
                assert_eq!(a.points[0].values, b.points[0].values);
            }
        }
    }

    #[test]
    fn results_survive_a_round_trip_through_their_file_and_a_cut_last_line() {
        let t = Task::named("adding", false).unwrap();
        let mut c = CompareConfig::new(vec!["linear".into()], t);
        c.seeds = 2;
        c.budget = Budget::Updates(3);
        c.learning_rates = vec![0.01, 0.03];
        let mut text = String::new();
        let r = compare(&c, &mut |e| match e {
            Event::Plan { header, .. } => {
                text += &(serde_json::to_string(header).unwrap() + "\n");
            }
            Event::Finished(r) => text += &(serde_json::to_string(r).unwrap() + "\n"),
            Event::Started { .. } => {}
        })
        .unwrap();
        let (header, records) = read_jsonl(&text, "compare.jsonl").unwrap();
        assert_eq!(records.len(), 4);
        let back = comparison(&header, &records);
        assert_eq!(back.rows[0].points[0].values, r.rows[0].points[0].values);
        // An interruption mid-write leaves a partial last line: skipped, not fatal.
        let cut = &text[..text.len() - 10];
        assert_eq!(read_jsonl(cut, "f").unwrap().1.len(), 3);
        // Before its seeds finish, an entry's row shows the seeds that did.
        let partial = comparison(&header, &records[..2]);
        assert_eq!(partial.rows[0].points[0].values.len(), 1);
        assert!(read_jsonl("{}\n", "f").is_err());
        let mut other = header.clone();
        other.budget = Budget::Updates(4);
        assert!(header.resumable_by(&other).is_err());
        assert!(header.resumable_by(&header).is_ok());
    }

    #[test]
    fn the_probe_reports_the_runs_own_peak() {
        fn reset() -> usize {
            100 << 20
        }
        fn peak() -> usize {
            103 << 20
        }
        let probe = MemoryProbe { reset, peak };
        assert_eq!(probe.measure(|| 7), (7, 3.0));
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
        let r = compare(&c, &mut |e| {
            if let Event::Started { stage, .. } = e {
                stages.push(stage.clone())
            }
        })
        .unwrap();
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
                assert_eq!(
                    Some(point.values[seed as usize]),
                    alone,
                    "delay {x}, seed {seed}"
                );
            }
        }
    }
}
