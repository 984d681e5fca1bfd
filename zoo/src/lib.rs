//! # mnnn-zoo
//!
//! Every architecture of mnnn linked into one place, the presets they ship with, and the
//! calls users start from:
//!
//! ```
//! use mnnn_core::{IoSpec, Inputs};
//! let mut model = mnnn_zoo::create::<f32>("amrc", Some("(hidden: 16)"), &IoSpec::regression(3, 1), 0)?;
//! let ys = model.predict(&Inputs::Real(ndarray::Array2::zeros((10, 3))))?;
//! assert_eq!(ys.nrows(), 10);
//! assert!(mnnn_zoo::entries().iter().any(|e| e.name == "amrc"));
//! # Ok::<(), mnnn_core::Error>(())
//! ```
//!
//! Plugins register themselves at link time; a plugin crate that is a dependency but never
//! named in source is dropped by the linker and its entry vanishes. This crate therefore
//! names every plugin below and denies unused crate dependencies, and everything that needs
//! the registry (the binary, the tests) names this crate.

#![deny(unused_crate_dependencies)]
// Used only by the integration tests.
#[cfg(test)]
use tempfile as _;

/// The README's Rust example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub mod baseline;
pub mod demo;

/// AMRC, the adaptive memory recurrent cell.
pub use mnnn_amrc as amrc;

use mnnn_core::{DynModel, Entry, IoSpec, Result, Scalar};
use std::path::Path;

/// Every registered entry, sorted by name.
pub fn entries() -> Vec<&'static Entry> {
    mnnn_core::registry::entries()
}

/// The entry called `name`, or an error that suggests the nearest names.
pub fn find(name: &str) -> Result<&'static Entry> {
    mnnn_core::registry::find(name)
}

/// Creates a model by name with RON `params` (`None`: the entry's defaults) for the given
/// inputs and outputs, its weights drawn from `seed`.
pub fn create<S: Scalar>(
    name: &str,
    params: Option<&str>,
    io: &IoSpec,
    seed: u64,
) -> Result<Box<dyn DynModel<S>>> {
    mnnn_core::registry::create(name, params, io, seed)
}

/// Loads a model file (weights, normalisation and memory state).
pub fn load<S: Scalar>(path: &Path) -> Result<Box<dyn DynModel<S>>> {
    mnnn_core::registry::load(path)
}

/// The preset configs shipped in `zoo/presets`, as `(file stem, RON text)`.
pub fn presets() -> &'static [(&'static str, &'static str)] {
    &[
        ("amrc", include_str!("../presets/amrc.ron")),
        (
            "amrc-long-echo",
            include_str!("../presets/amrc-long-echo.ron"),
        ),
    ]
}
