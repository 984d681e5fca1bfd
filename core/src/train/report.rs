//! What training reports: per-epoch progress, the final summary, and gradients.

use crate::Tensors;
use crate::metrics::Metrics;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Reported to the progress callback after every validation (or, without validation data,
/// at the same points).
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Updates made so far.
    pub update: usize,
    /// The update budget (0 = none).
    pub max_updates: usize,
    /// The pass over the training data under way (1-based).
    pub epoch: usize,
    /// Mean training loss since the last report (the cell's auxiliary loss included).
    pub train_loss: f64,
    /// Validation loss now, if there is validation data.
    pub val_loss: Option<f64>,
    /// The validation score now: R² for regression, accuracy for classes.
    pub val_score: Option<f64>,
    /// The update after which the weights were the best so far.
    pub best_update: usize,
    /// Updates per second of training so far (validation time excluded).
    pub updates_per_second: f64,
    /// Whether this is the refit on training and validation data (see
    /// [`super::TrainConfig::refit`]).
    pub refit: bool,
}

/// The losses at one validation point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Updates made when the point was taken.
    pub update: usize,
    /// The pass over the training data it fell in (1-based).
    pub epoch: usize,
    /// Mean training loss of the updates since the previous point.
    pub train_loss: f64,
    /// Validation loss, if any.
    pub val_loss: Option<f64>,
}

/// The outcome of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Parameter updates made (the refit's included).
    pub updates: usize,
    /// The update after which the kept weights were taken (chosen on validation; without
    /// validation data, on training loss).
    pub best_update: usize,
    /// The loss the kept weights were chosen by (validation loss, or training loss without
    /// validation data).
    pub best_loss: f64,
    /// Whether the run stopped because `max_updates` or `max_seconds` was reached.
    pub budget_spent: bool,
    /// Passes over the training data begun.
    pub epochs_run: usize,
    /// The pass in which the kept weights were taken.
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Losses at each validation point.
    pub history: Vec<EvalRecord>,
    /// With `refit`, the updates of the second run on training and validation data, whose
    /// weights were kept (`train` and `validation` then score those weights, so `validation`
    /// is no longer held out).
    pub refit_updates: Option<usize>,
    /// For a linear model fitted by least squares in closed form (no updates are made): the
    /// number of leading features, the model order, chosen on validation.
    pub least_squares_order: Option<usize>,
    /// Metrics on the training part, in data units.
    pub train: Metrics,
    /// Metrics on the validation part, in data units. On a single stream the validation part
    /// is scored warm: the memory first runs through the training part.
    pub validation: Option<Metrics>,
    /// Wall-clock seconds of the whole fit.
    pub seconds: f64,
    /// Training throughput: steps × sequences trained on per second of the training loop,
    /// not counting the time spent scoring the validation part.
    pub tokens_per_second: f64,
}

/// Gradients of the mean loss over a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients<S> {
    /// With respect to every parameter (same layout as the model's parameters).
    pub params: Tensors<S>,
    /// With respect to the initial state (batched, one row per sequence).
    pub state: Tensors<S>,
    /// With respect to each sequence's inputs (`T × width`, in the data's units; for token
    /// inputs, with respect to the embedded rows).
    pub inputs: Vec<Array2<S>>,
}
