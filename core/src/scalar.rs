//! The floating-point types cells are generic over.

use crate::kernels;
use ndarray::NdFloat;
use std::fmt::{Debug, Display};

/// A floating-point element type: `f32` (the default, for speed) or `f64` (for the tight
/// tolerances of gradient checks and the conformance suite).
///
/// Besides arithmetic it carries the few hot kernels whose fast form differs by type.
pub trait Scalar:
    NdFloat + num_traits::Float + Default + Debug + Display + Send + Sync + 'static + sealed::Sealed
{
    /// The name of the type as model files record it (`"f32"` or `"f64"`).
    const NAME: &'static str;
    /// Bytes per element.
    const BYTES: usize;

    /// Converts from `f64`, rounding to nearest.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
    /// `x ← tanh(x)` for a whole slice.
    fn tanh_inplace(xs: &mut [Self]);
    /// `y[j] += Σ_i x[i]·w[i·n + j]`, `n = y.len()`: a row vector times an input-major matrix.
    fn gemv_acc(y: &mut [Self], x: &[Self], w: &[Self]);
    /// [`Scalar::gemv_acc`] for each of `rows` rows of `x` and `y`, each row bit for bit what
    /// `gemv_acc` gives it alone.
    fn gemm_rows_acc(y: &mut [Self], x: &[Self], w: &[Self], rows: usize);
    /// Appends the little-endian bytes of `xs` to `out`.
    fn extend_le_bytes(xs: &[Self], out: &mut Vec<u8>);
    /// Reads little-endian elements; `bytes.len()` must be a multiple of [`Self::BYTES`].
    fn from_le_bytes(bytes: &[u8]) -> Vec<Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    const BYTES: usize = 4;
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn tanh_inplace(xs: &mut [Self]) {
        kernels::tanh_f32(xs)
    }
    #[inline]
    fn gemv_acc(y: &mut [Self], x: &[Self], w: &[Self]) {
        kernels::gemv_acc_f32(y, x, w)
    }
    #[inline]
    fn gemm_rows_acc(y: &mut [Self], x: &[Self], w: &[Self], rows: usize) {
        kernels::gemm_rows_acc_f32(y, x, w, rows)
    }
    fn extend_le_bytes(xs: &[Self], out: &mut Vec<u8>) {
        out.reserve(xs.len() * 4);
        for x in xs {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn from_le_bytes(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    const BYTES: usize = 8;
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline]
    fn tanh_inplace(xs: &mut [Self]) {
        kernels::tanh_f64(xs)
    }
    #[inline]
    fn gemv_acc(y: &mut [Self], x: &[Self], w: &[Self]) {
        kernels::gemv_acc_f64(y, x, w)
    }
    #[inline]
    fn gemm_rows_acc(y: &mut [Self], x: &[Self], w: &[Self], rows: usize) {
        kernels::gemm_rows_acc_f64(y, x, w, rows)
    }
    fn extend_le_bytes(xs: &[Self], out: &mut Vec<u8>) {
        out.reserve(xs.len() * 8);
        for x in xs {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn from_le_bytes(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect()
    }
}

/// Shorthand for `S::from_f64(v)`.
#[inline]
pub fn s<S: Scalar>(v: f64) -> S {
    S::from_f64(v)
}
