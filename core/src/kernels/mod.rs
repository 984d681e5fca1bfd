//! Small hot kernels that the per-token loops spend their time in.
//!
//! Each kernel has a portable body and, on x86-64, the same body compiled with AVX2 and FMA
//! (and, for the matrix product, AVX-512F) enabled, chosen at run time. The binary therefore
//! runs on any x86-64 and uses the wide instructions only where the CPU has them.
//!
//! The environment variable `MNNN_KERNELS` caps that choice for the whole process: `portable`
//! forces the portable code everywhere, `avx2` stops short of AVX-512 (see
//! [`Path::selected`]). Tests reach each path directly through [`gemm_with`] and the kernels'
//! own portable entry points.

mod dispatch;
mod gemm;
mod gemv;
mod tanh;

pub use dispatch::{ENV_VAR, Path};
pub use gemm::{gemm, gemm_from, gemm_with};
pub use gemv::{gemm_rows_acc_f32, gemm_rows_acc_f64, gemv_acc_f32, gemv_acc_f64};
pub use tanh::{tanh_f32, tanh_f64};
