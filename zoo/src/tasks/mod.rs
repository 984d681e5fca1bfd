//! Benchmark tasks: each deterministic from a seed, with its metric and a default size that
//! trains in seconds on two cores.
//!
//! | task | what the model must do | metric |
//! |---|---|---|
//! | `sines` | forecast the next value of a noisy sum of sines | R² |
//! | `mackey-glass` | forecast the next value of the Mackey–Glass series (τ = 17) | R² |
//! | `mackey-glass-17` | forecast the Mackey–Glass series 17 steps ahead (τ = 17) | R² |
//! | `delayed-recall` | output the input from `delay` steps ago (sweep: `delay`) | R² |
//! | `adding` | at the end, the sum of the two marked values of a long sequence | R² |
//! | `selective-copying` | after a delimiter, the scattered data tokens in order | accuracy |
//! | `mqar` | for each queried key, the value it was paired with earlier, Zoology's generator (tested at 1×, 2× and 4× the length and pairs) | accuracy |
//! | `mqar-basic` | `mqar` at Zoology's basic configuration: vocabulary 256, length 64, 4 pairs, 10 000 training sequences | accuracy |
//! | `passkey` | at the end of a long filler stream, the digit stored after a key marker (sweep: context length, evaluated streaming) | accuracy |
//!
//! A CSV series is a task too ([`csv_series`]): next-step forecasting of its columns.

mod forecast;
pub mod mqar;
mod recall;
mod tokens;

pub use forecast::{csv_columns, csv_series, mackey_glass_series};

use mnnn_core::{Dataset, Error, IoSpec, Result, Sequence};
use serde::{Deserialize, Serialize};

/// How a task is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Coefficient of determination, averaged over outputs (higher is better).
    R2,
    /// Fraction of counted steps whose arg-max class is right (higher is better).
    Accuracy,
}

impl Metric {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::R2 => "r2",
            Metric::Accuracy => "accuracy",
        }
    }

    /// This metric's value from a [`mnnn_core::Metrics`].
    pub fn of(self, m: &mnnn_core::Metrics) -> Option<f64> {
        match self {
            Metric::R2 => m.r2,
            Metric::Accuracy => m.accuracy,
        }
    }
}

/// One test set: a label (its sweep value, if any) and the data.
#[derive(Clone, Debug)]
pub struct TestSet {
    /// What distinguishes it (e.g. `"1024"` for a context length), or `"test"`.
    pub label: String,
    /// The sweep's x value, when the task is a sweep.
    pub x: Option<f64>,
    /// The sequences.
    pub data: Dataset<f64>,
}

/// Everything a task generates from one seed.
#[derive(Clone, Debug)]
pub struct TaskData {
    /// Training data (the trainer holds out its own validation part from it).
    pub train: Dataset<f64>,
    /// Held-out test sets, never trained on.
    pub tests: Vec<TestSet>,
    /// How to score.
    pub metric: Metric,
    /// The name of the sweep's x axis, if the test sets form a sweep.
    pub sweep: Option<&'static str>,
}

impl TaskData {
    /// `train` with one held-out test set, labelled `"test"`, and no sweep.
    fn one_test(train: Dataset<f64>, test: Dataset<f64>, metric: Metric) -> TaskData {
        TaskData {
            train,
            tests: vec![TestSet {
                label: "test".into(),
                x: None,
                data: test,
            }],
            metric,
            sweep: None,
        }
    }

    /// The last `n_test` of `seqs` held out as the test set, the rest to train on.
    fn split(io: IoSpec, mut seqs: Vec<Sequence<f64>>, n_test: usize, metric: Metric) -> TaskData {
        let test = seqs.split_off(seqs.len() - n_test);
        TaskData::one_test(
            Dataset {
                io: io.clone(),
                sequences: seqs,
            },
            Dataset {
                io,
                sequences: test,
            },
            metric,
        )
    }
}

/// A task with its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// Noisy sum of sines, next-step forecast.
    Sines {
        /// Training steps.
        len: usize,
    },
    /// Mackey–Glass (τ = 17), forecast `horizon` steps ahead.
    MackeyGlass {
        /// Training steps.
        len: usize,
        /// Steps ahead (1: the next value).
        horizon: usize,
    },
    /// Recall the input from `delay` steps ago ([`Task::sweep`] varies the delay).
    DelayedRecall {
        /// The delay.
        delay: usize,
    },
    /// The adding problem at sequence length `len`.
    Adding {
        /// Sequence length.
        len: usize,
    },
    /// Selective copying (Mamba): `data` tokens scattered in `len` noise positions.
    SelectiveCopying {
        /// Context length before the delimiter.
        len: usize,
        /// Data tokens to copy.
        data: usize,
        /// Vocabulary size (including noise and delimiter tokens).
        vocab: usize,
    },
    /// Multi-query associative recall by Zoology's generator, tested at `(len, pairs)` and
    /// at twice and four times both ([`mqar::mqar`]).
    Mqar {
        /// Vocabulary size.
        vocab: usize,
        /// Key–value pairs (each key queried once).
        pairs: usize,
        /// Sequence length.
        len: usize,
        /// Training sequences.
        train: usize,
        /// Test sequences per slice.
        test: usize,
    },
    /// Next-step forecasting of the named columns of a CSV file (the first 80% of the rows
    /// train; every seed sees the same data, only the weights change).
    Csv {
        /// The file.
        path: std::path::PathBuf,
        /// Column names.
        columns: Vec<String>,
    },
    /// The named input columns of a CSV file to its target columns (the first 80% of the
    /// rows train; the model then runs on through the rest, which is scored).
    CsvColumns {
        /// The file.
        path: std::path::PathBuf,
        /// Input column names.
        inputs: Vec<String>,
        /// Target column names.
        targets: Vec<String>,
    },
    /// Passkey retrieval: trained at `train_len`, tested at each of `lengths`.
    Passkey {
        /// Training context length.
        train_len: usize,
        /// Test context lengths.
        lengths: Vec<usize>,
    },
}

/// Every task name.
pub const NAMES: [&str; 9] = [
    "sines",
    "mackey-glass",
    "mackey-glass-17",
    "delayed-recall",
    "adding",
    "selective-copying",
    "mqar",
    "mqar-basic",
    "passkey",
];

/// Zoology's basic MQAR configuration (its `examples/basic.py` and `DataConfig` defaults):
/// vocabulary 256, length 64, 4 key–value pairs, 10 000 training and 1 000 test sequences;
/// the slices at (128, 8) and (256, 16) test generalisation to more pairs over longer contexts.
const MQAR_BASIC: Task = Task::Mqar {
    vocab: 256,
    pairs: 4,
    len: 64,
    train: 10_000,
    test: 1_000,
};

impl Task {
    /// The task called `name` at its default size; `full` selects the thorough settings
    /// (the passkey sweep up to 256K tokens).
    pub fn named(name: &str, full: bool) -> Result<Task> {
        Ok(match name {
            "sines" => Task::Sines { len: 3000 },
            "mackey-glass" => Task::MackeyGlass {
                len: 3000,
                horizon: 1,
            },
            "mackey-glass-17" => Task::MackeyGlass {
                len: 3000,
                horizon: 17,
            },
            "delayed-recall" => Task::DelayedRecall { delay: 8 },
            "adding" => Task::Adding { len: 30 },
            "selective-copying" => Task::SelectiveCopying {
                len: 24,
                data: 4,
                vocab: 12,
            },
            "mqar" => Task::Mqar {
                vocab: 64,
                pairs: 4,
                len: 32,
                train: 2000,
                test: 200,
            },
            "mqar-basic" => MQAR_BASIC,
            "passkey" => Task::Passkey {
                train_len: 64,
                lengths: if full {
                    vec![1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18]
                } else {
                    vec![1 << 8, 1 << 10, 1 << 12]
                },
            },
            other => {
                let known: Vec<&str> = NAMES.to_vec();
                let near = mnnn_core::registry::suggestions(other, &known);
                return Err(Error::Data(format!(
                    "unknown task '{other}'{}; tasks are: {}",
                    near.first()
                        .map_or(String::new(), |n| format!(" (did you mean '{n}'?)")),
                    known.join(", ")
                )));
            }
        })
    }

    /// The task's name.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Sines { .. } => "sines",
            Task::MackeyGlass { horizon: 1, .. } => "mackey-glass",
            Task::MackeyGlass { horizon: 17, .. } => "mackey-glass-17",
            Task::MackeyGlass { .. } => "mackey-glass-ahead",
            Task::DelayedRecall { .. } => "delayed-recall",
            Task::Adding { .. } => "adding",
            Task::SelectiveCopying { .. } => "selective-copying",
            Task::Mqar { .. } if self.is_mqar_basic() => "mqar-basic",
            Task::Mqar { .. } => "mqar",
            Task::Passkey { .. } => "passkey",
            Task::Csv { .. } | Task::CsvColumns { .. } => "csv",
        }
    }

    /// Whether the task forecasts a series (the next value from the past), where an
    /// autoregression is the baseline to beat.
    pub fn is_forecasting(&self) -> bool {
        matches!(
            self,
            Task::Sines { .. } | Task::MackeyGlass { .. } | Task::Csv { .. }
        )
    }

    /// Whether this is MQAR at [`MQAR_BASIC`]'s vocabulary, length and pairs (the data
    /// set sizes are not compared).
    fn is_mqar_basic(&self) -> bool {
        match (self, &MQAR_BASIC) {
            (
                Task::Mqar {
                    vocab, pairs, len, ..
                },
                Task::Mqar {
                    vocab: v,
                    pairs: p,
                    len: l,
                    ..
                },
            ) => (vocab, pairs, len) == (v, p, l),
            _ => false,
        }
    }

    /// For tasks whose natural comparison trains a model per setting: the swept variable's
    /// name and the task at each of its values (delayed recall: delays 1 to 32). Empty for
    /// the others (a passkey sweep is over test sets of one trained model).
    pub fn sweep(&self) -> Option<(&'static str, Vec<(f64, Task)>)> {
        match self {
            Task::DelayedRecall { .. } => Some((
                "delay",
                [1usize, 2, 4, 8, 16, 32]
                    .iter()
                    .map(|&d| (d as f64, Task::DelayedRecall { delay: d }))
                    .collect(),
            )),
            _ => None,
        }
    }

    /// Generates the task's data from `seed`.
    pub fn generate(&self, seed: u64) -> Result<TaskData> {
        Ok(match self {
            Task::Csv { path, columns } => csv_series(path, columns)?,
            Task::CsvColumns {
                path,
                inputs,
                targets,
            } => csv_columns(path, inputs, targets)?,
            Task::Sines { len } => forecast::sines(*len, seed),
            Task::MackeyGlass { len, horizon } => forecast::mackey_glass(*len, *horizon, seed),
            Task::DelayedRecall { delay } => recall::delayed(*delay, seed),
            Task::Adding { len } => recall::adding(*len, seed),
            Task::SelectiveCopying { len, data, vocab } => {
                tokens::selective_copying(*len, *data, *vocab, seed)
            }
            Task::Mqar {
                vocab,
                pairs,
                len,
                train,
                test,
            } => mqar::mqar(*vocab, *pairs, *len, *train, *test, seed),
            Task::Passkey { train_len, lengths } => tokens::passkey(*train_len, lengths, seed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_is_deterministic_and_valid() {
        for name in NAMES {
            let t = Task::named(name, false).unwrap();
            assert_eq!(t.name(), name);
            let (a, b, c) = (
                t.generate(1).unwrap(),
                t.generate(1).unwrap(),
                t.generate(2).unwrap(),
            );
            assert_eq!(a.train, b.train, "{name}");
            assert_ne!(a.train, c.train, "{name}: the seed matters");
            a.train.validate().unwrap();
            assert!(!a.tests.is_empty());
            for s in &a.tests {
                s.data.validate().unwrap();
                assert_eq!(s.data.io, a.train.io, "{name}: test and train read alike");
            }
        }
        let e = Task::named("mqr", false).unwrap_err().to_string();
        assert!(e.contains("did you mean 'mqar'"), "{e}");
    }
}
