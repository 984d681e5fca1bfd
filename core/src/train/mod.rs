//! The training engine: truncated BPTT, optimizers, losses and the data plan.

pub mod config;
mod engine;
pub mod loss;
pub mod optim;
pub mod plan;
pub mod report;

#[cfg(test)]
mod aux_tests;

pub use config::{Optimizer, StatePolicy, TrainConfig};
pub use report::{EpochRecord, FitReport, Gradients, Progress};
