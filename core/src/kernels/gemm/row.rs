//! `y = β·y + x · w` for a single row `x` and a `w` packed in column panels: a recurrence's
//! step at batch 1, where the time goes in streaming `w` from L2 once per step.
//!
//! Each panel is the product [`gemm_with`](super::gemm_with) computes for a `1 × k` by
//! `k × width` block, through the same tile body, so every output is bit for bit the same.
//! What it saves is per-call work: one dispatch for the whole matrix instead of building and
//! checking views for each panel, which at `128 × 512` in eight panels measured a sixth of
//! the step. The tile is one row of four vectors on every path (four independent chains of
//! fused multiply-adds on the SIMD ones).

use super::vector::{Lanes, Vector};
use super::{Elem, Mat, Task, product};
use crate::Scalar;
use crate::kernels::Path;
use std::any::TypeId;

/// `y ← β·y + x · w` on `path`, where `x` has `k` elements, `y` has `n`, and `w` (`k × n`) is
/// stored in panels of `panel` columns (the last one narrower if `panel` does not divide
/// `n`), each panel `k × width` row-major and contiguous, one after the other. Every output is
/// bit for bit what [`gemm_with`](super::gemm_with) computes for `(path, 1, x as 1 × k, w,
/// β, y as 1 × n)`; with `β = 0`, `y` is not read. Returns `false`, leaving `y` untouched, if
/// the CPU lacks the path.
///
/// # Panics
/// If `panel` is 0 or `w.len() != x.len() · y.len()`.
pub fn row_panels<S: Scalar>(
    path: Path,
    beta: S,
    y: &mut [S],
    x: &[S],
    w: &[S],
    panel: usize,
) -> bool {
    let (k, n) = (x.len(), y.len());
    assert!(panel > 0, "row_panels: a panel has at least one column");
    assert_eq!(
        w.len(),
        k * n,
        "row_panels: w has {} elements, not {k}×{n}",
        w.len()
    );
    if !path.is_available() {
        return false;
    }
    if n == 0 {
        return true;
    }
    let c = Mat::<S> {
        ptr: y.as_mut_ptr().cast_const(),
        rows: 1,
        cols: n,
        rs: n as isize,
        cs: 1,
    };
    let task = Task {
        alpha: S::one(),
        beta,
        a: Mat {
            ptr: x.as_ptr(),
            rows: 1,
            cols: k,
            rs: k as isize,
            cs: 1,
        },
        b: Mat {
            ptr: w.as_ptr(),
            rows: k,
            cols: n,
            rs: 0,
            cs: 1,
        },
        c,
        d: c,
    };
    // SAFETY: the slices hold the shapes checked above, `y` is exclusive, and the path is
    // available.
    unsafe {
        if TypeId::of::<S>() == TypeId::of::<f32>() {
            run::<f32>(path, task.cast(), panel);
        } else {
            debug_assert_eq!(TypeId::of::<S>(), TypeId::of::<f64>());
            run::<f64>(path, task.cast(), panel);
        }
    }
    true
}

/// The element types' builds of the sweep.
trait Sweep: Elem {
    /// # Safety
    /// As [`sweep`], on the path's CPU.
    unsafe fn sweep_on(path: Path, task: Task<Self>, panel: usize);
}

macro_rules! sweeps {
    ($t:ty, $portable:ty, $avx2:ident, $avx512:ident) => {
        impl Sweep for $t {
            unsafe fn sweep_on(path: Path, task: Task<$t>, panel: usize) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2(task: Task<$t>, panel: usize) {
                        // SAFETY: the caller's contract; the features are enabled here.
                        unsafe { sweep::<super::vector::$avx2>(task, panel) }
                    }
                    #[target_feature(enable = "avx512f,avx2,fma")]
                    unsafe fn avx512(task: Task<$t>, panel: usize) {
                        // SAFETY: as above.
                        unsafe { sweep::<super::vector::$avx512>(task, panel) }
                    }
                    // SAFETY: the path is available (the caller's contract).
                    match path {
                        Path::Avx512 => return unsafe { avx512(task, panel) },
                        Path::Avx2 => return unsafe { avx2(task, panel) },
                        Path::Portable => {}
                    }
                }
                let _ = path;
                // SAFETY: the caller's contract.
                unsafe { sweep::<$portable>(task, panel) }
            }
        }
    };
}

sweeps!(f32, Lanes<f32, 4>, Avx2F32, Avx512F32);
sweeps!(f64, Lanes<f64, 2>, Avx2F64, Avx512F64);

/// # Safety
/// `task` describes valid `x`, `y` and packed `w` (its `b.rs` unused), `path` is available.
unsafe fn run<E: Sweep>(path: Path, task: Task<E>, panel: usize) {
    // SAFETY: by the contract.
    unsafe { E::sweep_on(path, task, panel) }
}

/// Every panel in turn, each as a one-row product of `4` vectors per tile.
///
/// # Safety
/// As [`run`], with the CPU features of `V`.
#[inline(always)]
unsafe fn sweep<V: Vector>(task: Task<V::E>, panel: usize) {
    let (k, n) = (task.b.rows, task.c.cols);
    let mut j = 0;
    while j < n {
        let width = panel.min(n - j);
        let b = Mat {
            ptr: task.b.ptr.wrapping_add(j * k),
            cols: width,
            rs: width as isize,
            ..task.b
        };
        let c = Mat {
            ptr: task.c.ptr.wrapping_add(j),
            cols: width,
            ..task.c
        };
        // SAFETY: the panel and its columns of `y` are inside the buffers.
        unsafe { product::<V, 1, 4>(Task { b, c, d: c, ..task }) };
        j += width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm_with;
    use crate::kernels::gemv::tests::values;
    use ndarray::{ArrayView2, ArrayViewMut2};

    fn same_bits<S: Scalar>() {
        let shapes = [
            (0, 5, 4),
            (1, 1, 1),
            (3, 17, 64),
            (16, 64, 64),
            (128, 512, 64),
        ];
        let more = [
            (19, 100, 64),
            (7, 0, 8),
            (9, 70, 16),
            (5, 33, 5),
            (128, 64, 100),
        ];
        for (k, n, panel) in shapes.into_iter().chain(more) {
            let (x, w, y0): (Vec<S>, Vec<S>, Vec<S>) = (
                values(k, 1).into_iter().map(S::from_f64).collect(),
                values(k * n, 2).into_iter().map(S::from_f64).collect(),
                values(n, 3).into_iter().map(S::from_f64).collect(),
            );
            let mut wp = Vec::new();
            for j0 in (0..n).step_by(panel) {
                for i in 0..k {
                    wp.extend_from_slice(&w[i * n + j0..i * n + n.min(j0 + panel)]);
                }
            }
            for path in Path::ALL {
                for beta in [S::zero(), S::one(), S::from_f64(-0.5)] {
                    let (mut got, mut want) = (y0.clone(), y0.clone());
                    if beta == S::zero() {
                        got.fill(S::from_f64(f64::NAN));
                    }
                    let ran = row_panels(path, beta, &mut got, &x, &wp, panel);
                    assert_eq!(ran, path.is_available());
                    if !ran {
                        continue;
                    }
                    let (xv, wv) = (
                        ArrayView2::from_shape((1, k), &x).unwrap(),
                        ArrayView2::from_shape((k, n), &w).unwrap(),
                    );
                    let yv = ArrayViewMut2::from_shape((1, n), &mut want[..]).unwrap();
                    assert!(gemm_with(path, S::one(), xv, wv, beta, yv));
                    let bits = |v: &[S]| v.iter().map(|x| x.as_f64().to_bits()).collect::<Vec<_>>();
                    let what = format!("{path:?} {k}×{n} panel {panel} β {beta}");
                    assert_eq!(bits(&got), bits(&want), "{what}");
                    if k > 0 && n > 0 {
                        assert_ne!(bits(&got), bits(&y0), "{what}: nothing added");
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_by_panels_is_the_general_product_bit_for_bit() {
        same_bits::<f32>();
        same_bits::<f64>();
    }

    #[test]
    fn an_unavailable_path_is_refused_and_touches_nothing() {
        for path in Path::ALL {
            let mut y = [7.0f32; 3];
            let ran = row_panels(path, 1.0, &mut y, &[1.0; 2], &[1.0; 6], 2);
            assert_eq!(ran, path.is_available());
            if !ran {
                assert_eq!(y, [7.0; 3]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "row_panels: w has 5 elements, not 2×3")]
    fn a_wrong_sized_matrix_panics() {
        row_panels(
            Path::Portable,
            1.0,
            &mut [0.0f32; 3],
            &[1.0; 2],
            &[0.0; 5],
            2,
        );
    }
}
