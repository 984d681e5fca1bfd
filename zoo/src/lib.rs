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
//! // A preset is a name too: the entry it builds, with the preset's params.
//! let long = mnnn_zoo::create::<f32>("amrc-long-echo", None, &IoSpec::regression(3, 1), 0)?;
//! assert_eq!(long.meta().entry, "amrc");
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
pub mod bench;
pub mod compare;
pub mod demo;
pub mod tasks;

/// AMN, the adaptive memory network.
pub use mnnn_amn as amn;
/// AMRC, the adaptive memory recurrent cell.
pub use mnnn_amrc as amrc;
/// The autoregressive baseline, fitted by least squares.
pub use mnnn_ar as ar;
/// Causal softmax attention: the growing-cache control and the sliding-window baseline.
pub use mnnn_attention as attention;
/// DTPN, the dual-track persistence network.
pub use mnnn_dtpn as dtpn;
/// Hyper-AMN, the multi-head associative manifold network.
pub use mnnn_hyper_amn as hyper_amn;
/// The memoryless linear baseline.
pub use mnnn_linear as linear;
/// MNEMOSYNE, a memory that is a small network trained at inference time.
pub use mnnn_mnemosyne as mnemosyne;
/// NDM, the neural differential manifold (Hebbian fast weights; three variants).
pub use mnnn_ndm as ndm;
/// PMRC, the persistent memory recurrent cell.
pub use mnnn_pmrc as pmrc;
/// The LSTM and GRU baselines (PyTorch's equations and layout).
pub use mnnn_rnn as rnn;
/// SGW-AMN, the sparse global workspace network.
pub use mnnn_sgw_amn as sgw_amn;

/// Every registered entry sorted by name; the entry called `name` (with nearest-name
/// suggestions when there is none); a model created by entry or preset name with RON params;
/// a model file loaded back with its weights, normalisation and memory state.
pub use mnnn_core::registry::{create, entries, find, load};

/// The preset configs shipped in `zoo/presets`, as `(file stem, RON text)`, sorted by stem.
/// Each is also registered by name ([`mnnn_core::preset`]), so [`create`], a config's
/// `model:` and [`resolve`] accept it.
pub fn presets() -> &'static [(&'static str, &'static str)] {
    include!(concat!(env!("OUT_DIR"), "/presets.rs"))
}

include!(concat!(env!("OUT_DIR"), "/register_presets.rs"));

/// An entry or preset name resolved to the entry it builds and the params it brings.
pub use mnnn_core::preset::resolve;
