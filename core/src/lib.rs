//! # mnnn-core
//!
//! The memory-native contract and everything that works on any entry: the [`Cell`] trait,
//! named tensor sets, differentiable building blocks with hand-derived VJPs, the training
//! engine (truncated BPTT, batched), persistence (safetensors), RON configs and the registry.
//!
//! Nothing here knows any architecture; plugins implement [`registry::Architecture`] and
//! [`register!`] themselves, and the `mnnn-zoo` crate links them all.

pub mod autodiff;
pub mod benchkit;
pub mod budget;
pub mod buf;
pub mod cell;
pub mod config;
pub mod csvdata;
pub mod data;
mod error;
pub mod freeze;
pub mod gradcheck;
pub mod init;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod naive;
pub mod ops;
pub mod persist;
pub mod preset;
pub mod reference;
pub mod registry;
mod rng;
mod scalar;
pub mod series;
pub mod tempfiles;
pub mod tensors;
#[doc(hidden)]
pub mod testkit;
pub mod train;

pub use cell::{Cell, Diagnostic, Dims, LinearFeatures};
pub use data::{Dataset, InputKind, Inputs, IoSpec, OutputKind, Sequence, Targets};
pub use error::{Error, Result};
pub use freeze::FreezeSpec;
pub use metrics::Metrics;
pub use model::{DynModel, Model, ModelMeta, Wrapper};
pub use registry::{Architecture, Capability, Entry, Family};
pub use rng::Rng;
pub use scalar::{Scalar, s};
pub use tensors::{Layout, TensorInfo, Tensors};
pub use train::{FitReport, Optimizer, Progress, Schedule, StatePolicy, TrainConfig};

#[doc(hidden)]
pub mod __private {
    pub use linkme;
}
