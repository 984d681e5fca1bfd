//! What a comparison writes as it goes: a header saying what is compared, then one record per
//! finished run. The table, the chart and `--resume` are all computed from these alone, so
//! whatever finished before an interruption is kept and shown.

use super::{Budget, Comparison, Point, Row};
use crate::tasks::Metric;
use mnnn_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// What a comparison compares: written first, so that its results can be read without the
/// command line that made them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Task name.
    pub task: String,
    /// Metric.
    pub metric: Metric,
    /// Name of the swept variable (a sweep that trains per point, or the test sets' x axis).
    pub sweep: Option<String>,
    /// Seeds per entry.
    pub seeds: usize,
    /// Training per run.
    pub budget: Budget,
    /// Learning rates searched on seed 0.
    pub learning_rates: Vec<f64>,
    /// The points every row is scored at, in order: `(x, label)`.
    pub points: Vec<(Option<f64>, String)>,
    /// Row names in order (the `linear` baseline included).
    pub entries: Vec<String>,
}

impl Header {
    /// Whether results written under `self` can be taken over by a comparison under `new`:
    /// the same task, points, budget and learning rates (entries and seeds may differ).
    pub fn resumable_by(&self, new: &Header) -> Result<()> {
        let same = self.task == new.task
            && self.metric == new.metric
            && self.points == new.points
            && self.budget == new.budget
            && self.learning_rates == new.learning_rates;
        if same {
            Ok(())
        } else {
            Err(Error::Data(format!(
                "the results to resume were made with task {} at {:?}, learning rates {:?}; \
                 this comparison is task {} at {:?}, learning rates {:?}",
                self.task,
                self.budget,
                self.learning_rates,
                new.task,
                new.budget,
                new.learning_rates
            )))
        }
    }
}

/// Which part of an entry's comparison a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunKind {
    /// One learning rate of the search on seed 0 (without a sweep, the winner's scores are
    /// seed 0's).
    Search,
    /// A seed at the chosen learning rate (at a sweep point, if any).
    Seed,
    /// The short run timed alone for speed and memory.
    Solo,
}

/// One test set's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    /// The test set's label.
    pub label: String,
    /// Its sweep value.
    pub x: Option<f64>,
    /// The metric (`None`: training diverged, or the metric is undefined).
    pub value: Option<f64>,
    /// RMSE in the data's units (regression).
    pub rmse: Option<f64>,
}

/// Speed and memory of an entry's solo run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoloRecord {
    /// Trainable parameters.
    pub params: usize,
    /// Floats of memory state per sequence.
    pub state_floats: usize,
    /// Training tokens per second (`None`: the run diverged).
    pub train_tokens_per_second: Option<f64>,
    /// Streaming inference tokens per second, batch 1.
    pub inference_tokens_per_second: f64,
    /// Peak heap the run and the inference timing needed above what was live before, MiB
    /// (`None`: the program has no counting allocator).
    pub peak_heap_mib: Option<f64>,
}

/// One finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Row name.
    pub entry: String,
    /// The entry's family.
    pub family: String,
    /// What the run was.
    pub kind: RunKind,
    /// Seed.
    pub seed: u64,
    /// Learning rate.
    pub learning_rate: f64,
    /// The sweep point the run trained at, if the task is a sweep.
    pub x: Option<f64>,
    /// Best validation loss (search runs; `None`: diverged).
    pub val_loss: Option<f64>,
    /// Scores on the test sets (search runs without a sweep, and seed runs).
    pub scores: Vec<ScoreRecord>,
    /// Wall-clock seconds of the run (shared machine, except the solo run).
    pub seconds: f64,
    /// Speed and memory (solo runs).
    pub solo: Option<SoloRecord>,
}

impl RunRecord {
    /// Whether `self` is the run `(entry, kind, seed, lr, x)`; a seed run matches at any
    /// learning rate, since the search that chose it is itself on record.
    pub fn is(&self, entry: &str, kind: RunKind, seed: u64, lr: f64, x: Option<f64>) -> bool {
        self.entry == entry
            && self.kind == kind
            && self.seed == seed
            && self.x == x
            && (kind != RunKind::Search || self.learning_rate == lr)
    }

    /// A one-line summary: entry, point, seed, learning rate, score, seconds.
    pub fn describe(&self, header: &Header) -> String {
        let point = match (self.x, &header.sweep) {
            (Some(x), Some(var)) => format!(" {var}={x}"),
            _ => String::new(),
        };
        let what = match self.kind {
            RunKind::Search => format!("search lr {}", self.learning_rate),
            RunKind::Seed => format!("seed {} (lr {})", self.seed, self.learning_rate),
            RunKind::Solo => format!("timing run (lr {})", self.learning_rate),
        };
        let score = match (&self.solo, self.scores.as_slice()) {
            (Some(s), _) => format!(
                "{:.0} train tok/s, {:.0} infer tok/s",
                s.train_tokens_per_second.unwrap_or(f64::NAN),
                s.inference_tokens_per_second
            ),
            (None, []) => match self.val_loss {
                Some(v) => format!("val loss {v:.4}"),
                None => "diverged".into(),
            },
            (None, scores) => scores
                .iter()
                .map(|s| {
                    let v = s.value.map_or("diverged".into(), |v| format!("{v:.4}"));
                    if scores.len() == 1 {
                        format!("{} {v}", header.metric.name())
                    } else {
                        format!("{}@{} {v}", header.metric.name(), s.label)
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        format!(
            "{}{point} {what}: {score} ({:.1} s)",
            self.entry, self.seconds
        )
    }
}

/// The learning rate the search chose for `entry` (lowest validation loss), once every rate
/// is on record; `Ok(None)` while some are still missing.
pub(crate) fn chosen_lr(
    header: &Header,
    records: &[RunRecord],
    entry: &str,
) -> Result<Option<f64>> {
    let mut best: Option<(f64, f64)> = None;
    for &lr in &header.learning_rates {
        let Some(r) = records
            .iter()
            .find(|r| r.is(entry, RunKind::Search, 0, lr, None))
        else {
            return Ok(None);
        };
        if let Some(loss) = r.val_loss
            && best.is_none_or(|b| loss < b.1)
        {
            best = Some((lr, loss));
        }
    }
    best.map(|b| Some(b.0))
        .ok_or_else(|| Error::Data(format!("{entry} diverged at every learning rate")))
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// The comparison as far as `records` go: a row for each entry with any score, each point
/// over the seeds finished so far; speed columns NaN until the entry's solo run is in.
pub fn comparison(header: &Header, records: &[RunRecord]) -> Comparison {
    let sweep_trains = header.points.iter().all(|p| p.0.is_some()) && header.points.len() > 1;
    let rows = header
        .entries
        .iter()
        .filter_map(|entry| {
            let lr = chosen_lr(header, records, entry).ok().flatten()?;
            let mine = || records.iter().filter(move |r| &r.entry == entry);
            // Per seed, its score at every point (a sweep: one run per point).
            let scored: Vec<&RunRecord> = mine()
                .filter(|r| match r.kind {
                    RunKind::Seed => true,
                    RunKind::Search => r.learning_rate == lr && !r.scores.is_empty(),
                    RunKind::Solo => false,
                })
                .collect();
            let points: Vec<Point> = header
                .points
                .iter()
                .map(|(x, label)| {
                    let mut runs: Vec<(u64, &ScoreRecord)> = scored
                        .iter()
                        .filter_map(|r| {
                            let s = if sweep_trains {
                                r.scores.first().filter(|_| r.x == *x)
                            } else {
                                r.scores.iter().find(|s| &s.label == label)
                            };
                            s.map(|s| (r.seed, s))
                        })
                        .collect();
                    runs.sort_by_key(|r| r.0);
                    let values: Vec<f64> =
                        runs.iter().map(|r| r.1.value.unwrap_or(f64::NAN)).collect();
                    let rmse: Option<Vec<f64>> = runs.iter().map(|r| r.1.rmse).collect();
                    let (mean, sd) = mean_sd(&values);
                    Point {
                        x: *x,
                        label: label.clone(),
                        mean,
                        sd,
                        values,
                        rmse: rmse.filter(|r| !r.is_empty()).map(|r| mean_sd(&r).0),
                    }
                })
                .collect();
            if points.iter().all(|p| p.values.is_empty()) {
                return None;
            }
            let solo = mine().find_map(|r| r.solo.clone());
            let family = mine().next().map(|r| r.family.clone()).unwrap_or_default();
            Some(Row {
                entry: entry.clone(),
                family,
                params: solo.as_ref().map_or(0, |s| s.params),
                state_floats: solo.as_ref().map_or(0, |s| s.state_floats),
                learning_rate: lr,
                points,
                train_tokens_per_second: solo
                    .as_ref()
                    .and_then(|s| s.train_tokens_per_second)
                    .unwrap_or(f64::NAN),
                inference_tokens_per_second: solo
                    .as_ref()
                    .map_or(f64::NAN, |s| s.inference_tokens_per_second),
                peak_heap_mib: solo.and_then(|s| s.peak_heap_mib),
            })
        })
        .collect();
    Comparison {
        task: header.task.clone(),
        metric: header.metric,
        sweep: header.sweep.clone(),
        seeds: header.seeds,
        budget: header.budget,
        rows,
    }
}

/// Reads a results file written line by line: the header, then records. A last line cut
/// short by an interruption is skipped; any other unreadable line is an error.
pub fn read_jsonl(text: &str, name: &str) -> Result<(Header, Vec<RunRecord>)> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        return Err(Error::Data(format!("{name}: empty; no header")));
    };
    let header: Header = serde_json::from_str(first)
        .map_err(|e| Error::Data(format!("{name}:1: not a comparison header: {e}")))?;
    let lines: Vec<(usize, &str)> = lines.collect();
    let mut records = Vec::with_capacity(lines.len());
    for (k, (i, line)) in lines.iter().enumerate() {
        match serde_json::from_str::<RunRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) if k + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => return Err(Error::Data(format!("{name}:{}: {e}", i + 1))),
        }
    }
    Ok((header, records))
}
