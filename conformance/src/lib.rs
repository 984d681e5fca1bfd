//! # mnnn-conformance
//!
//! The property suite every mnnn entry must pass (persistence, no external growth, chunked ≡
//! sequential, gradients, determinism, refusal of bad input, config round trips), as a
//! library that runs on any registered entry, in this workspace or outside it.
//!
//! This crate is part of the workspace layout from the start so that the `mnnn` binary and
//! plugin crates can depend on it; its properties are built on the contract in `mnnn-core`.
