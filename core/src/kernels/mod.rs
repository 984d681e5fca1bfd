//! Small hot kernels that the per-token loops spend their time in.
//!
//! Each kernel has a portable body and, on x86-64, the same body compiled with AVX2 and FMA
//! enabled, chosen at run time. The binary therefore runs on any x86-64 and uses the wide
//! instructions only where the CPU has them.

mod dispatch;
mod gemv;
mod tanh;

pub use gemv::{gemm_rows_acc_f32, gemm_rows_acc_f64, gemv_acc_f32, gemv_acc_f64};
pub use tanh::{tanh_f32, tanh_f64};
