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
    /// contiguous lanes run side by side; so that no lane's memory is cut off from what came
    /// before it, each lane but the first starts from the state the lane before it ended with
    /// in the previous pass (see [`super::plan::training_tracks`]).
    Carry,
}

/// The optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Adam with β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    Adam,
    /// Adam with decoupled weight decay (AdamW): each update also shrinks every trainable
    /// parameter by `learning rate × weight_decay` of itself, outside the adaptive scaling.
    AdamW {
        /// Decay per unit of learning rate, `>= 0`.
        weight_decay: f64,
    },
    /// Stochastic gradient descent with heavy-ball momentum.
    Sgd {
        /// Momentum in `[0, 1)`.
        momentum: f64,
    },
}

/// How the learning rate moves after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// The configured rate throughout.
    Constant,
    /// Half a cosine from the configured rate down to a tenth of it at `max_updates` (constant
    /// when there is no update budget).
    Cosine,
}

/// Everything about a training run except the model and the data. Every field may be
/// omitted from a config and takes the default shown by [`TrainConfig::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Update budget: stop after this many parameter updates; 0 means no limit (default
    /// 1000, enough for a short series; the cosine schedule ends here).
    pub max_updates: usize,
    /// Most passes over the training data; 0 means no limit, the update budget decides
    /// (default 0).
    pub epochs: usize,
    /// Updates between two validations (the early-stopping checks); 0 validates at the end of
    /// each pass instead (default 25).
    pub eval_every: usize,
    /// Validations without a better validation loss before stopping; 0 never stops early
    /// (default 20).
    pub patience: usize,
    /// Sequences (or lanes, or windows) per batch (default 4). On a single stream under
    /// [`StatePolicy::Carry`] it is the number of lanes the stream is cut into.
    pub batch_size: usize,
    /// Steps of truncated BPTT per update; 0 means the whole sequence (default 32).
    pub window: usize,
    /// State across windows (default [`StatePolicy::Carry`]).
    pub state: StatePolicy,
    /// Optimizer (default Adam).
    pub optimizer: Optimizer,
    /// Peak learning rate (default 0.01).
    pub learning_rate: f64,
    /// Updates over which the learning rate rises linearly to its peak; 0 starts at the peak
    /// (default 50, or a tenth of the budget if that is less).
    pub warmup: usize,
    /// The learning rate after warm-up (default [`Schedule::Cosine`]).
    pub schedule: Schedule,
    /// Global gradient-norm clip; 0 turns it off (default 1.0).
    pub clip: f64,
    /// Fraction of the data held out for validation, taken from the end (default 0.2).
    pub validation: f64,
    /// After choosing the number of updates on validation, train again from the initial
    /// weights on training and validation data together for that many updates, and keep
    /// those weights (default false).
    pub refit: bool,
    /// Seed of the weights and of the shuffling (default 0).
    pub seed: u64,
    /// Standardise real inputs and targets with training-data statistics (default true).
    pub normalize: bool,
    /// Stop after this many seconds of training; 0 means no limit (default 0).
    pub max_seconds: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_updates: 1000,
            epochs: 0,
            eval_every: 25,
            patience: 20,
            batch_size: 4,
            window: 32,
            state: StatePolicy::Carry,
            optimizer: Optimizer::Adam,
            learning_rate: 0.01,
            warmup: 50,
            schedule: Schedule::Cosine,
            clip: 1.0,
            validation: 0.2,
            refit: false,
            seed: 0,
            normalize: true,
            max_seconds: 0.0,
        }
    }
}

impl TrainConfig {
    /// Refuses settings no run can use, naming the field and its range.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 && self.max_updates == 0 && self.max_seconds == 0.0 {
            return Err(Error::invalid_param(
                "max_updates",
                0,
                "needs a limit: set max_updates, epochs or max_seconds above 0",
            ));
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
        if let Optimizer::AdamW { weight_decay } = self.optimizer
            && !(weight_decay.is_finite() && weight_decay >= 0.0)
        {
            return Err(Error::invalid_param(
                "weight_decay",
                weight_decay,
                "must be a finite number >= 0",
            ));
        }
        Ok(())
    }

    /// The learning rate of update `k` (0-based): a linear warm-up to the peak, then the
    /// schedule over the rest of `horizon` updates (0 = no budget, the peak is kept).
    pub fn learning_rate_at(&self, k: usize, horizon: usize) -> f64 {
        let warm = self.warmup_for(horizon);
        if k < warm {
            return self.learning_rate * (k + 1) as f64 / warm as f64;
        }
        match self.schedule {
            Schedule::Cosine if horizon > warm => {
                let f = ((k - warm) as f64 / (horizon - warm) as f64).min(1.0);
                let floor = 0.1;
                let c = 0.5 * (1.0 + (std::f64::consts::PI * f).cos());
                self.learning_rate * (floor + (1.0 - floor) * c)
            }
            _ => self.learning_rate,
        }
    }

    /// Warm-up updates for a budget of `horizon`: at most a tenth of a finite budget, so a
    /// short run is not all warm-up.
    fn warmup_for(&self, horizon: usize) -> usize {
        if horizon == 0 {
            self.warmup
        } else {
            self.warmup.min(horizon / 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_warms_up_linearly_then_decays_by_half_a_cosine_to_a_tenth() {
        let cfg = TrainConfig {
            learning_rate: 1.0,
            warmup: 10,
            ..TrainConfig::default()
        };
        assert!((cfg.learning_rate_at(0, 1000) - 0.1).abs() < 1e-12);
        assert!((cfg.learning_rate_at(9, 1000) - 1.0).abs() < 1e-12);
        let mid = cfg.learning_rate_at(10 + 495, 1000);
        assert!((mid - 0.55).abs() < 1e-12, "{mid}");
        assert!((cfg.learning_rate_at(999, 1000) - 0.1).abs() < 1e-4);
        let rates: Vec<f64> = (10..1000).map(|k| cfg.learning_rate_at(k, 1000)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        // A short budget spends a tenth of itself warming up; no budget keeps the peak.
        assert!((cfg.learning_rate_at(1, 20) - 1.0).abs() < 1e-12);
        assert_eq!(cfg.learning_rate_at(5000, 0), 1.0);
        let flat = TrainConfig {
            schedule: Schedule::Constant,
            ..cfg
        };
        assert_eq!(flat.learning_rate_at(900, 1000), 1.0);
    }

    #[test]
    fn a_run_without_any_limit_and_a_negative_decay_are_refused() {
        let e = TrainConfig {
            max_updates: 0,
            epochs: 0,
            ..TrainConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("max_updates"), "{e}");
        let e = TrainConfig {
            optimizer: Optimizer::AdamW { weight_decay: -1.0 },
            ..TrainConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("weight_decay"), "{e}");
    }
}
