//! What training reports: per-epoch progress, the final summary, and gradients.

use crate::Tensors;
use crate::metrics::Metrics;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Reported to the progress callback after every epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// The epoch just finished (1-based).
    pub epoch: usize,
    /// Epochs configured.
    pub epochs: usize,
    /// Mean training loss of the epoch (the cell's auxiliary loss included).
    pub train_loss: f64,
    /// Validation loss after the epoch, if there is validation data.
    pub val_loss: Option<f64>,
    /// The epoch whose weights are the best so far.
    pub best_epoch: usize,
}

/// One epoch's losses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss, if any.
    pub val_loss: Option<f64>,
}

/// The outcome of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Parameter updates made.
    pub updates: usize,
    /// The loss the kept weights were chosen by (validation loss, or training loss without
    /// validation data).
    pub best_loss: f64,
    /// Whether the run stopped because `max_updates` or `max_seconds` was reached.
    pub budget_spent: bool,
    /// Epochs actually run.
    pub epochs_run: usize,
    /// Epoch whose weights the model now has.
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Losses per epoch.
    pub history: Vec<EpochRecord>,
    /// Metrics on the training part, in data units.
    pub train: Metrics,
    /// Metrics on the validation part, in data units.
    pub validation: Option<Metrics>,
    /// Wall-clock seconds of the training loop.
    pub seconds: f64,
    /// Training throughput: steps × sequences trained on per second of the training loop,
    /// not counting the time spent scoring the validation part after each epoch.
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
