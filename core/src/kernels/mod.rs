//! Small hot kernels that the per-token loops spend their time in.
//!
//! Each kernel has a portable body and, on x86-64, the same body compiled with AVX2 and FMA
//! (and, for the matrix product and tanh, AVX-512F) enabled, chosen at run time. The binary
//! therefore runs on any x86-64 and uses the wide instructions only where the CPU has them.
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
pub use gemm::{gemm, gemm_from, gemm_with, row_panels};
pub use gemv::{gemm_rows_acc_f32, gemm_rows_acc_f64, gemv_acc_f32, gemv_acc_f64};
pub use tanh::{tanh_f32, tanh_f64};

/// Defines a method `$name` that runs the method `$imp` of `$cell<S>` on the widest build the
/// selected [`Path`] allows: the same generic body compiled with AVX-512F, with AVX2+FMA, or
/// for the baseline. The builds compute the same values when the body's loops are elementwise
/// or sum in a fixed order (Rust never contracts `a·b + c` into an FMA), so a cell can choose
/// at run time without changing a bit.
///
/// ```ignore
/// impl<S: Scalar> MyCell<S> {
///     mnnn_core::runtime_builds!(MyCell: fn step_wide => step_impl(x: &[S], y: &mut [S]));
/// }
/// ```
#[macro_export]
macro_rules! runtime_builds {
    ($cell:ident : $vis:vis fn $name:ident => $imp:ident ($($arg:ident : $ty:ty),*)) => {
        $vis fn $name(&self, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn w512<S: $crate::Scalar>(c: &$cell<S>, $($arg: $ty),*) {
                    c.$imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn w256<S: $crate::Scalar>(c: &$cell<S>, $($arg: $ty),*) {
                    c.$imp($($arg),*)
                }
                match $crate::kernels::Path::selected() {
                    // SAFETY: the selected path is one the CPU has.
                    $crate::kernels::Path::Avx512 => return unsafe { w512(self, $($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::Path::Avx2 => return unsafe { w256(self, $($arg),*) },
                    $crate::kernels::Path::Portable => {}
                }
            }
            self.$imp($($arg),*)
        }
    };
}
