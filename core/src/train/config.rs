//! Training settings, with defaults that train the built-in examples in seconds.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How memory state flows between the windows of truncated BPTT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatePolicy {
    /// Every window starts from a fresh state: sequences are cut into independent windows
    /// that are shuffled and batched.
    Reset,
    /// Each sequence is run window after window with its state carried over (the gradient is
    /// cut at window boundaries). A data set of one long stream is split into `batch_size`
    /// contiguous lanes run side by side.
    Carry,
}

/// The optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Adam with β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    Adam,
    /// Stochastic gradient descent with heavy-ball momentum.
    Sgd {
        /// Momentum in `[0, 1)`.
        momentum: f64,
    },
}

/// Everything about a training run except the model and the data. Every field may be
/// omitted from a config and takes the default shown by [`TrainConfig::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training data (default 60).
    pub epochs: usize,
    /// Sequences (or lanes, or windows) per batch (default 4).
    pub batch_size: usize,
    /// Steps of truncated BPTT per update; 0 means the whole sequence (default 32).
    pub window: usize,
    /// State across windows (default [`StatePolicy::Carry`]).
    pub state: StatePolicy,
    /// Optimizer (default Adam).
    pub optimizer: Optimizer,
    /// Learning rate (default 0.01).
    pub learning_rate: f64,
    /// Global gradient-norm clip; 0 turns it off (default 1.0).
    pub clip: f64,
    /// Fraction of the data held out for validation, taken from the end (default 0.2).
    pub validation: f64,
    /// Epochs without a better validation loss before stopping; 0 never stops early
    /// (default 10).
    pub patience: usize,
    /// Seed of the weights and of the shuffling (default 0).
    pub seed: u64,
    /// Standardise real inputs and targets with training-data statistics (default true).
    pub normalize: bool,
    /// Stop after this many parameter updates; 0 means no limit (default 0).
    pub max_updates: usize,
    /// Stop after this many seconds of training; 0 means no limit (default 0).
    pub max_seconds: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 60,
            batch_size: 4,
            window: 32,
            state: StatePolicy::Carry,
            optimizer: Optimizer::Adam,
            learning_rate: 0.01,
            clip: 1.0,
            validation: 0.2,
            patience: 10,
            seed: 0,
            normalize: true,
            max_updates: 0,
            max_seconds: 0.0,
        }
    }
}

impl TrainConfig {
    /// Refuses settings no run can use, naming the field and its range.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::invalid_param("epochs", 0, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid_param("batch_size", 0, "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid_param(
                "learning_rate",
                self.learning_rate,
                "must be a finite number > 0",
            ));
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return Err(Error::invalid_param(
                "clip",
                self.clip,
                "must be a finite number >= 0 (0 turns clipping off)",
            ));
        }
        if !(0.0..1.0).contains(&self.validation) {
            return Err(Error::invalid_param(
                "validation",
                self.validation,
                "must be in [0, 1)",
            ));
        }
        if !(self.max_seconds.is_finite() && self.max_seconds >= 0.0) {
            return Err(Error::invalid_param(
                "max_seconds",
                self.max_seconds,
                "must be a finite number >= 0 (0 = no limit)",
            ));
        }
        if let Optimizer::Sgd { momentum } = self.optimizer
            && !(0.0..1.0).contains(&momentum)
        {
            return Err(Error::invalid_param(
                "momentum",
                momentum,
                "must be in [0, 1)",
            ));
        }
        Ok(())
    }
}
