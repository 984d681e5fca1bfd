//! Differentiable building blocks, each a forward function and its hand-derived
//! vector–Jacobian product (VJP), all batched over rows.
//!
//! Cells compose these; their own tests and the conformance suite check the composition
//! against finite differences. Conventions: a batch of vectors is a `B × n` matrix; weights
//! are stored input-major (`in × out`), so a linear map is `y = x · W + b`.

pub mod activation;
pub mod elementwise;
pub mod embed;
pub mod linear;
pub mod outer;
pub mod recurrence;

pub use activation::Activation;
