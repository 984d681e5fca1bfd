//! The training engine: truncated BPTT, optimizers, losses and the data plan.

mod closed_form;
pub mod config;
mod engine;
mod fit;
pub mod loss;
pub mod optim;
pub mod plan;
pub mod report;

#[cfg(test)]
mod aux_tests;

pub use config::{Optimizer, Schedule, StatePolicy, TrainConfig};
pub use report::{EvalRecord, FitReport, Gradients, Progress};
