//! `c ← β·c + α·a b` for the small dense products of the chunked memories (sides from 1 to
//! a few hundred), over views with any strides.
//!
//! ndarray's product (`matrixmultiply`) packs both operands into panels on every call; at
//! these sizes the packing is a large share of the time, and its kernel is 8 lanes wide
//! whatever the CPU. Here nothing is packed when `b`'s rows (or, transposed, `a`'s columns)
//! are contiguous, which is how the operator's products come:
//!
//! * a tile of `MR` rows × `NV` vectors of `c` stays in registers over the whole sum: each
//!   step loads `NV` vectors of one row of `b` and broadcasts `MR` entries of `a` from
//!   wherever `a`'s strides put them, so `a` may be a transposed view at no cost;
//! * the last columns of `c` use masked loads and stores rather than a scalar loop, so a
//!   width of 1, 5 or 33 costs about as much as the next multiple of the vector width;
//! * when `b`'s columns rather than its rows are contiguous, the product is computed
//!   transposed (`cᵀ = bᵀ aᵀ`) if that makes `b` row-contiguous (and `c` too, if it can);
//!   only when neither orientation has a row-contiguous `b` (`q kᵀ` with both stored by
//!   rows) is it copied, once per call, into a buffer kept per thread.
//!
//! Tiles: 6 × 16 f32 (6 × 8 f64) with AVX2+FMA, 12 accumulators of its 16 registers; 6 × 64
//! (6 × 32) with AVX-512F, 24 of 32; 4 × 8 (4 × 4) portable, 8 of SSE2's 16. The summation
//! over `k` runs in order for each output on every path (fused on the SIMD paths), so results
//! differ from ndarray's and between paths only by rounding, and are deterministic for a path.
//!
//! [`gemm`] hands two kinds of product to ndarray, which is faster there (measured on AVX2,
//! `cargo bench -p mnnn-core --bench kernels -- gemm_`): past [`LARGE`] multiply-adds with a
//! long sum, where `b`'s strip no longer stays in L1 and its blocked product wins; and those
//! that need the copy of `b`, which ndarray's packing does faster than [`pack`] (64 × 64 × 64
//! `q kᵀ` in f32: 8.7 µs against 12.2). [`gemm_with`] always runs the kernel.

use super::dispatch::Path;
use crate::Scalar;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use std::any::TypeId;
use std::cell::Cell;
use std::thread::LocalKey;

mod row;
mod vector;

pub use row::row_panels;
use vector::{Lanes, Vector};

/// From this many multiply-adds (`m·k·n`) on, with `k` at least [`LARGE_K`], [`gemm`] uses
/// ndarray's product: measured on AVX2 (see the benches), the two cross between 256³ and
/// 512³.
const LARGE: usize = 256 * 256 * 256;
/// The sum length from which a strip of `b` (`k` rows × one tile's width) outgrows L1.
const LARGE_K: usize = 384;

/// `c ← β·c + α·op(a)·op(b)`, where `op` is whatever view the caller passes (`x.t()` for a
/// transpose costs nothing); with `β = 0`, `c` is not read, so it may hold anything, NaN
/// included.
///
/// Runs on [`Path::selected`]: AVX-512F or AVX2+FMA where the CPU has them, unless
/// `MNNN_KERNELS` says otherwise (see [`Path::selected`]). Large products with long sums,
/// and those where neither `b`'s rows nor `a`'s columns are contiguous, go to ndarray's
/// `general_mat_mul`, which is faster there.
///
/// # Panics
/// If `a` is `m × k`, and `b` is not `k × n` or `c` is not `m × n`.
pub fn gemm<S: Scalar>(
    alpha: S,
    a: ArrayView2<S>,
    b: ArrayView2<S>,
    beta: S,
    mut c: ArrayViewMut2<S>,
) {
    let task = Task::new(alpha, &a, &b, beta, None, &mut c);
    if task.prefers_ndarray() {
        general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    run(Path::selected(), task);
}

/// `c ← β·d + α·op(a)·op(b)` for a `d` of `c`'s shape: what [`gemm`] computes after
/// `c.assign(&d)`, without the copy. With `β = 0`, neither `d` nor `c` is read.
///
/// # Panics
/// As [`gemm`], or if `d`'s shape is not `c`'s.
pub fn gemm_from<S: Scalar>(
    alpha: S,
    a: ArrayView2<S>,
    b: ArrayView2<S>,
    beta: S,
    d: ArrayView2<S>,
    mut c: ArrayViewMut2<S>,
) {
    let task = Task::new(alpha, &a, &b, beta, Some(&d), &mut c);
    if task.prefers_ndarray() {
        if beta != S::zero() {
            c.assign(&d);
        }
        general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    run(Path::selected(), task);
}

/// [`gemm`] on the given path, whatever the size and `MNNN_KERNELS`, so that tests and
/// benchmarks can reach every path on one machine. Returns `false`, leaving `c` untouched,
/// if the CPU lacks the path.
///
/// # Panics
/// As [`gemm`].
pub fn gemm_with<S: Scalar>(
    path: Path,
    alpha: S,
    a: ArrayView2<S>,
    b: ArrayView2<S>,
    beta: S,
    mut c: ArrayViewMut2<S>,
) -> bool {
    let task = Task::new(alpha, &a, &b, beta, None, &mut c);
    if !path.is_available() {
        return false;
    }
    run(path, task);
    true
}

/// A matrix as the kernels see it: its first element, shape and strides (in elements, of
/// either sign).
#[derive(Clone, Copy, Debug)]
pub(super) struct Mat<E> {
    ptr: *const E,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<E> Mat<E> {
    fn of<S>(ptr: *const S, (rows, cols): (usize, usize), strides: &[isize]) -> Self {
        Mat {
            ptr: ptr.cast(),
            rows,
            cols,
            rs: strides[0],
            cs: strides[1],
        }
    }

    fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether a run along a row is contiguous, so that it can be loaded as vectors. A single
    /// column is: the masked load of its one lane reads nothing else.
    fn row_contiguous(&self) -> bool {
        self.cs == 1 || self.cols <= 1
    }
}

/// One product `c ← β·d + α·a b`, with `d` possibly `c` itself (each element of `d` is read
/// by the tile that then writes the same element of `c`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Task<E> {
    alpha: E,
    beta: E,
    a: Mat<E>,
    b: Mat<E>,
    /// Written through (it came from a mutable view).
    c: Mat<E>,
    d: Mat<E>,
}

impl<S: Scalar> Task<S> {
    /// Checks the shapes and takes the views apart.
    fn new(
        alpha: S,
        a: &ArrayView2<S>,
        b: &ArrayView2<S>,
        beta: S,
        d: Option<&ArrayView2<S>>,
        c: &mut ArrayViewMut2<S>,
    ) -> Self {
        let (m, k) = a.dim();
        let n = b.ncols();
        assert_eq!(
            b.nrows(),
            k,
            "gemm: a is {m}×{k} but b has {} rows",
            b.nrows()
        );
        assert_eq!(c.dim(), (m, n), "gemm: c's shape is not {m}×{n}");
        let c = Mat::of(c.as_mut_ptr().cast_const(), c.dim(), c.strides());
        let d = match d {
            Some(d) => {
                assert_eq!(d.dim(), (m, n), "gemm: the addend's shape is not {m}×{n}");
                Mat::of(d.as_ptr(), d.dim(), d.strides())
            }
            None => c,
        };
        Task {
            alpha,
            beta,
            a: Mat::of(a.as_ptr(), a.dim(), a.strides()),
            b: Mat::of(b.as_ptr(), b.dim(), b.strides()),
            c,
            d,
        }
    }

    /// Whether ndarray's product is the faster: a large product with a long sum, or one
    /// that would need `b` copied (in neither orientation is `b` row-contiguous).
    fn prefers_ndarray(&self) -> bool {
        let large = self.a.cols >= LARGE_K && self.a.rows * self.a.cols * self.b.cols >= LARGE;
        large || !(self.b.row_contiguous() || self.a.t().row_contiguous())
    }

    /// The same task over `E`, which must be `S` (checked by the caller through `TypeId`).
    fn cast<E: Elem>(self) -> Task<E> {
        let mat = |m: Mat<S>| Mat::<E> {
            ptr: m.ptr.cast(),
            rows: m.rows,
            cols: m.cols,
            rs: m.rs,
            cs: m.cs,
        };
        Task {
            alpha: E::from_f64(self.alpha.as_f64()),
            beta: E::from_f64(self.beta.as_f64()),
            a: mat(self.a),
            b: mat(self.b),
            c: mat(self.c),
            d: mat(self.d),
        }
    }
}

/// Runs `task` on `path`, which the CPU has.
fn run<S: Scalar>(path: Path, task: Task<S>) {
    if TypeId::of::<S>() == TypeId::of::<f32>() {
        execute::<f32>(path, task.cast());
    } else {
        debug_assert_eq!(TypeId::of::<S>(), TypeId::of::<f64>());
        execute::<f64>(path, task.cast());
    }
}

/// Whether an orientation lets the tile load `b` (2) and store `c` (1) as vectors.
fn score<E: Elem>(b: &Mat<E>, c: &Mat<E>, d: &Mat<E>, reads_d: bool) -> u8 {
    let stores = c.row_contiguous() && (!reads_d || d.row_contiguous());
    2 * u8::from(b.row_contiguous()) + u8::from(stores)
}

/// Picks the orientation, copies `b` if it must, and runs the path's kernel.
fn execute<E: Elem>(path: Path, task: Task<E>) {
    let (m, n) = (task.c.rows, task.c.cols);
    if m == 0 || n == 0 {
        return;
    }
    let reads_d = task.beta != E::ZERO;
    let keep = score(&task.b, &task.c, &task.d, reads_d);
    let flip = score(&task.a.t(), &task.c.t(), &task.d.t(), reads_d);
    let task = if flip > keep {
        Task {
            a: task.b.t(),
            b: task.a.t(),
            c: task.c.t(),
            d: task.d.t(),
            ..task
        }
    } else {
        task
    };
    if task.b.row_contiguous() {
        // SAFETY: the views were valid for their shapes and strides, `c` mutable and
        // disjoint from `a`, `b` (and `d`, unless it is `c`): Rust's borrows saw to that.
        unsafe { kernel(path, task) };
        return;
    }
    let key = E::packed();
    let mut buf = key.take();
    pack(task.b, &mut buf);
    let packed = Mat {
        ptr: buf.as_ptr(),
        rs: task.b.cols as isize,
        cs: 1,
        ..task.b
    };
    // SAFETY: as above, with `b` now the buffer, which outlives the call.
    unsafe { kernel(path, Task { b: packed, ..task }) };
    key.set(buf);
}

/// Copies `b` (`cols ≥ 1`) into `buf`, row-major. Eight columns at a time, so that the reads
/// follow the contiguous columns of a transposed `b` in a few streams while the writes fill
/// runs of a row: an element-by-element copy in `b`'s row order took longer than the
/// product it served (64 × 64 × 64).
fn pack<E: Elem>(b: Mat<E>, buf: &mut Vec<E>) {
    const RUN: usize = 8;
    let n = b.cols;
    buf.clear();
    buf.resize(b.rows * n, E::ZERO);
    for j0 in (0..n).step_by(RUN) {
        let run = RUN.min(n - j0);
        for (p, row) in buf.chunks_exact_mut(n).enumerate() {
            let src = b
                .ptr
                .wrapping_offset(p as isize * b.rs + j0 as isize * b.cs);
            for (j, out) in row[j0..j0 + run].iter_mut().enumerate() {
                // SAFETY: (p, j0 + j) is inside `b`.
                *out = unsafe { *src.offset(j as isize * b.cs) };
            }
        }
    }
}

/// Dispatches to the path's build.
///
/// # Safety
/// `path` is available; the task's matrices are valid for their shapes and strides, `c`
/// writable, and `b` row-contiguous.
unsafe fn kernel<E: Elem>(path: Path, task: Task<E>) {
    // SAFETY: by the contract.
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => E::avx512(task),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => E::avx2(task),
            _ => E::portable(task),
        }
    }
}

/// The element types, with their builds of the product.
pub(super) trait Elem:
    Copy + PartialEq + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + 'static
{
    const ZERO: Self;
    fn from_f64(v: f64) -> Self;
    /// This thread's buffer for a copied `b`, kept between calls (taken out of the cell for
    /// the call and put back after) since the products run once per chunk.
    fn packed() -> &'static LocalKey<Cell<Vec<Self>>>;
    /// # Safety
    /// As [`kernel`], without the CPU requirement.
    unsafe fn portable(task: Task<Self>);
    /// # Safety
    /// As [`kernel`]; the CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    unsafe fn avx2(task: Task<Self>);
    /// # Safety
    /// As [`kernel`]; the CPU has AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn avx512(task: Task<Self>);
}

thread_local! {
    static PACKED_F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static PACKED_F64: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// The builds of one element type: the portable one, and each x86-64 one compiled with its
/// features, all the same body over a different [`Vector`] and tile.
macro_rules! builds {
    ($t:ty, $packed:ident, $portable:ty, $avx2:ident, $avx512:ident) => {
        impl Elem for $t {
            const ZERO: Self = 0.0;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn packed() -> &'static LocalKey<Cell<Vec<Self>>> {
                &$packed
            }
            unsafe fn portable(task: Task<Self>) {
                // SAFETY: by the contract.
                unsafe { product::<$portable, 4, 2>(task) }
            }
            #[cfg(target_arch = "x86_64")]
            unsafe fn avx2(task: Task<Self>) {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn build(task: Task<$t>) {
                    // SAFETY: by the contract, and the features are enabled here.
                    unsafe { product::<vector::$avx2, 6, 2>(task) }
                }
                // SAFETY: by the contract.
                unsafe { build(task) }
            }
            #[cfg(target_arch = "x86_64")]
            unsafe fn avx512(task: Task<Self>) {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn build(task: Task<$t>) {
                    // SAFETY: by the contract, and the features are enabled here.
                    unsafe { product::<vector::$avx512, 6, 4>(task) }
                }
                // SAFETY: by the contract.
                unsafe { build(task) }
            }
        }
    };
}

builds!(f32, PACKED_F32, Lanes<f32, 4>, Avx2F32, Avx512F32);
builds!(f64, PACKED_F64, Lanes<f64, 2>, Avx2F64, Avx512F64);

/// The whole product: column blocks of `NV` vectors, then one narrower block for the last
/// columns (its last vector masked if the width is not a multiple of the lanes).
///
/// # Safety
/// As [`kernel`], with the CPU features of `V`.
#[inline(always)]
unsafe fn product<V: Vector, const MR: usize, const NV: usize>(task: Task<V::E>) {
    let n = task.c.cols;
    let lanes = V::LANES;
    let mut j = 0;
    // SAFETY (the whole body): every block starts at a column inside the matrices and spans
    // only columns inside them (the last vector masked to what is left).
    unsafe {
        let full = V::mask(lanes);
        while j + NV * lanes <= n {
            rows::<V, MR, NV, false>(at(task, 0, j), full, lanes);
            j += NV * lanes;
        }
        let left = n - j;
        if left == 0 {
            return;
        }
        let vecs = left.div_ceil(lanes);
        let tail = left - (vecs - 1) * lanes;
        let (t, mask) = (at(task, 0, j), V::mask(tail));
        match (vecs, tail == lanes) {
            (1, true) => rows::<V, MR, 1, false>(t, mask, tail),
            (1, false) => rows::<V, MR, 1, true>(t, mask, tail),
            (2, true) => rows::<V, MR, 2, false>(t, mask, tail),
            (2, false) => rows::<V, MR, 2, true>(t, mask, tail),
            (3, true) => rows::<V, MR, 3, false>(t, mask, tail),
            (3, false) => rows::<V, MR, 3, true>(t, mask, tail),
            (_, _) => rows::<V, MR, 4, true>(t, mask, tail),
        }
    }
}

/// The task moved `i` rows and `j` columns into `c` (and `a`'s rows, `b`'s columns).
/// Wrapping arithmetic: a position just past the end is formed but never read.
#[inline(always)]
fn at<E>(task: Task<E>, i: usize, j: usize) -> Task<E> {
    let (i, j) = (i as isize, j as isize);
    let mv = |m: Mat<E>, di: isize, dj: isize| Mat {
        ptr: m.ptr.wrapping_offset(di * m.rs + dj * m.cs),
        ..m
    };
    Task {
        a: mv(task.a, i, 0),
        b: mv(task.b, 0, j),
        c: mv(task.c, i, j),
        d: mv(task.d, i, j),
        ..task
    }
}

/// One column block, every row: tiles of `MR` rows, then one shorter tile.
///
/// # Safety
/// As [`product`], for a block of `NV` vectors, the last one `tail` lanes wide (selected by
/// `mask`) if `MASKED`.
#[inline(always)]
unsafe fn rows<V: Vector, const MR: usize, const NV: usize, const MASKED: bool>(
    task: Task<V::E>,
    mask: V::Mask,
    tail: usize,
) {
    let m = task.c.rows;
    let mut i = 0;
    // SAFETY: each tile's rows are inside the matrices.
    unsafe {
        while i + MR <= m {
            tile::<V, MR, NV, MASKED>(at(task, i, 0), mask, tail);
            i += MR;
        }
        let t = at(task, i, 0);
        match m - i {
            0 => {}
            1 => tile::<V, 1, NV, MASKED>(t, mask, tail),
            2 => tile::<V, 2, NV, MASKED>(t, mask, tail),
            3 => tile::<V, 3, NV, MASKED>(t, mask, tail),
            4 => tile::<V, 4, NV, MASKED>(t, mask, tail),
            _ => tile::<V, 5, NV, MASKED>(t, mask, tail),
        }
    }
}

/// `R` rows × `NV` vectors of `c`, summed over all of `k` in registers, then scaled and
/// added to `β·d` once.
///
/// # Safety
/// As [`rows`], for `R` rows.
#[inline(always)]
unsafe fn tile<V: Vector, const R: usize, const NV: usize, const MASKED: bool>(
    task: Task<V::E>,
    mask: V::Mask,
    tail: usize,
) {
    let lanes = V::LANES;
    let (a, b) = (task.a, task.b);
    // SAFETY: rows `0..R` of `a`, `b`'s `k` rows and the block's columns are in bounds;
    // masked lanes are neither read nor written.
    unsafe {
        let mut acc = [[V::zero(); NV]; R];
        let (mut pa, mut pb) = (a.ptr, b.ptr);
        for _ in 0..a.cols {
            let mut bv = [V::zero(); NV];
            for (v, bv) in bv.iter_mut().enumerate() {
                let p = pb.add(v * lanes);
                *bv = if MASKED && v == NV - 1 {
                    V::load_part(p, mask)
                } else {
                    V::load(p)
                };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = V::splat(*pa.offset(r as isize * a.rs));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = V::mul_add(x, bv, *acc);
                }
            }
            pa = pa.wrapping_offset(a.cs);
            pb = pb.wrapping_offset(b.rs);
        }
        // The write-back below is a loop too large to unroll, which indexes the accumulators
        // at run time; were it to read `acc` itself, `acc` would live in memory and the sum
        // above would store every accumulator on every step (measured: 2–3× slower on a
        // 32 × 128 × 512 product). Reading a copy keeps the sum in registers.
        let mut out = [[V::zero(); NV]; R];
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = *a;
        }
        let acc = out;
        let (c, d) = (task.c, task.d);
        let reads_d = task.beta != V::E::ZERO;
        let (alpha, beta) = (V::splat(task.alpha), V::splat(task.beta));
        let vector_io = c.row_contiguous() && (!reads_d || d.row_contiguous());
        for (r, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                let masked = MASKED && v == NV - 1;
                let (i, j) = (r as isize, (v * lanes) as isize);
                let pc = c.ptr.offset(i * c.rs + j * c.cs).cast_mut();
                let pd = d.ptr.offset(i * d.rs + j * d.cs);
                let mut y = V::mul(alpha, acc);
                if vector_io {
                    if reads_d {
                        let old = if masked {
                            V::load_part(pd, mask)
                        } else {
                            V::load(pd)
                        };
                        y = V::mul_add(beta, old, y);
                    }
                    if masked {
                        y.store_part(pc, mask);
                    } else {
                        y.store(pc);
                    }
                } else {
                    let mut buf = [V::E::ZERO; 16];
                    y.store(buf.as_mut_ptr());
                    let len = if masked { tail } else { lanes };
                    for (l, &y) in buf.iter().enumerate().take(len) {
                        let l = l as isize;
                        let out = pc.offset(l * c.cs);
                        *out = if reads_d {
                            y + task.beta * *pd.offset(l * d.cs)
                        } else {
                            y
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemv::tests::values;
    use super::*;
    use ndarray::{Array2, ShapeBuilder, s};

    fn matrix<S: Scalar>((rows, cols): (usize, usize), seed: u64) -> Array2<S> {
        let v = values(rows * cols, seed);
        Array2::from_shape_fn((rows, cols), |(i, j)| S::from_f64(v[i * cols + j]))
    }

    /// The naive `β·c + α·a b` in f64, and per element the scale `|β·c| + Σ|α·a·b|` that
    /// rounding errors are measured against.
    fn reference<S: Scalar>(
        alpha: S,
        a: &Array2<S>,
        b: &Array2<S>,
        beta: S,
        c: &Array2<S>,
    ) -> (Array2<f64>, Array2<f64>) {
        let ((m, k), n) = (a.dim(), b.ncols());
        let (alpha, beta) = (alpha.as_f64(), beta.as_f64());
        let mut want = Array2::zeros((m, n));
        let mut scale = Array2::zeros((m, n));
        for i in 0..m {
            for j in 0..n {
                let (mut sum, mut abs) = (0.0, 0.0);
                for p in 0..k {
                    let x = a[[i, p]].as_f64() * b[[p, j]].as_f64();
                    sum += x;
                    abs += x.abs();
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta * c[[i, j]].as_f64()
                };
                want[[i, j]] = old + alpha * sum;
                scale[[i, j]] = old.abs() + alpha.abs() * abs + f64::MIN_POSITIVE;
            }
        }
        (want, scale)
    }

    /// How a logical matrix is laid out in memory: the view the kernel gets is over a larger
    /// buffer whose other elements are a sentinel that must survive.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Layout {
        /// Row-major, unit column stride.
        Rows,
        /// Column-major: the transposed view of a row-major matrix.
        Transposed,
        /// Every other column of a row-major buffer, one row of margin above.
        EveryOtherColumn,
        /// Every third row of a column-major buffer, read bottom to top (negative stride).
        Reversed,
    }

    const LAYOUTS: [Layout; 4] = [
        Layout::Rows,
        Layout::Transposed,
        Layout::EveryOtherColumn,
        Layout::Reversed,
    ];

    const SENTINEL: f64 = 12345.0;

    /// A buffer holding `x` in `layout`, with the view's shape, strides and offset.
    struct Stored<S> {
        buf: Array2<S>,
        layout: Layout,
        dim: (usize, usize),
    }

    impl<S: Scalar> Stored<S> {
        fn new(x: &Array2<S>, layout: Layout) -> Self {
            let (r, c) = x.dim();
            let fill = S::from_f64(SENTINEL);
            let buf = match layout {
                Layout::Rows => x.clone(),
                Layout::Transposed => {
                    let mut buf = Array2::from_elem((r, c).f(), fill);
                    buf.assign(x);
                    buf
                }
                Layout::EveryOtherColumn => Array2::from_elem((r + 1, 2 * c), fill),
                Layout::Reversed => Array2::from_elem((3 * r, c).f(), fill),
            };
            let mut stored = Stored {
                buf,
                layout,
                dim: (r, c),
            };
            stored.view_mut().assign(x);
            stored
        }

        fn view(&self) -> ArrayView2<'_, S> {
            match self.layout {
                Layout::Rows | Layout::Transposed => self.buf.view(),
                Layout::EveryOtherColumn => self.buf.slice(s![1.., ..;2]),
                Layout::Reversed => self.buf.slice(s![..;-3, ..]),
            }
        }

        fn view_mut(&mut self) -> ArrayViewMut2<'_, S> {
            match self.layout {
                Layout::Rows | Layout::Transposed => self.buf.view_mut(),
                Layout::EveryOtherColumn => self.buf.slice_mut(s![1.., ..;2]),
                Layout::Reversed => self.buf.slice_mut(s![..;-3, ..]),
            }
        }

        /// Whether every element outside the view still holds the sentinel.
        fn margin_intact(&self) -> bool {
            let mut marks = Array2::from_elem(self.buf.dim(), true);
            match self.layout {
                Layout::Rows | Layout::Transposed => return true,
                Layout::EveryOtherColumn => marks.slice_mut(s![1.., ..;2]).fill(false),
                Layout::Reversed => marks.slice_mut(s![..;-3, ..]).fill(false),
            }
            let _ = self.dim;
            self.buf
                .iter()
                .zip(&marks)
                .all(|(x, &outside)| !outside || x.as_f64() == SENTINEL)
        }
    }

    fn check<S: Scalar>(
        what: &str,
        got: ArrayView2<S>,
        want: &Array2<f64>,
        scale: &Array2<f64>,
        tol: f64,
    ) {
        assert_eq!(got.dim(), want.dim());
        for ((idx, g), (w, s)) in got.indexed_iter().zip(want.iter().zip(scale)) {
            let g = g.as_f64();
            assert!(
                (g - w).abs() <= tol * s,
                "{what}: c{idx:?} = {g:e}, want {w:e} (scale {s:e})"
            );
        }
    }

    /// Shapes: the operator's (chunk 16–64, head 16–128) and odd sizes around each tile edge.
    fn shapes() -> Vec<(usize, usize, usize)> {
        let mut shapes = vec![
            (16, 32, 128),
            (64, 64, 64),
            (32, 16, 32),
            (64, 64, 128),
            (1, 64, 64),
            (64, 64, 1),
            (128, 16, 16),
        ];
        let sides = [1, 2, 5, 6, 7, 8, 9, 13, 16, 17, 33];
        for m in sides {
            for n in sides.iter().copied().chain([31, 48, 65, 70]) {
                for k in [0, 1, 3, 19] {
                    shapes.push((m, k, n));
                }
            }
        }
        shapes
    }

    /// Every available path, every layout of each operand, `β` zero (over NaN), one and
    /// neither, against the naive f64 product.
    fn every_path_and_layout<S: Scalar>(tol: f64) {
        let paths: Vec<Path> = Path::ALL.into_iter().filter(|p| p.is_available()).collect();
        let nan = S::from_f64(f64::NAN);
        for (case, (m, k, n)) in shapes().into_iter().enumerate() {
            let seed = 3 * case as u64;
            let (a, b, c0) = (
                matrix::<S>((m, k), seed),
                matrix::<S>((k, n), seed + 1),
                matrix::<S>((m, n), seed + 2),
            );
            for (alpha, beta) in [(1.0, 0.0), (-0.7, 1.0), (1.3, -0.45)] {
                let (alpha, beta) = (S::from_f64(alpha), S::from_f64(beta));
                let (want, scale) = reference(alpha, &a, &b, beta, &c0);
                for (la, lb, lc) in LAYOUTS
                    .into_iter()
                    .flat_map(|la| LAYOUTS.into_iter().map(move |lb| (la, lb)))
                    .flat_map(|(la, lb)| LAYOUTS.into_iter().map(move |lc| (la, lb, lc)))
                {
                    let (sa, sb) = (Stored::new(&a, la), Stored::new(&b, lb));
                    for &path in &paths {
                        let mut sc = Stored::new(&c0, lc);
                        if beta == S::zero() {
                            sc.view_mut().fill(nan);
                        }
                        let ran = gemm_with(path, alpha, sa.view(), sb.view(), beta, sc.view_mut());
                        assert!(ran);
                        let what = format!(
                            "{path:?} {m}×{k}×{n} α={alpha} β={beta} a {la:?} b {lb:?} c {lc:?}"
                        );
                        check(&what, sc.view(), &want, &scale, tol);
                        assert!(sc.margin_intact(), "{what}: wrote outside c");
                    }
                }
            }
        }
    }

    #[test]
    fn f32_every_path_and_layout_matches_the_naive_product() {
        every_path_and_layout::<f32>(1e-5);
    }

    #[test]
    fn f64_every_path_and_layout_matches_the_naive_product() {
        every_path_and_layout::<f64>(1e-13);
    }

    #[test]
    fn gemm_from_reads_the_addend_not_the_output() {
        let nan = f32::NAN;
        for (m, k, n) in [(16, 32, 128), (7, 5, 9), (1, 4, 33), (33, 8, 1)] {
            let (a, b, d) = (
                matrix::<f32>((m, k), 1),
                matrix::<f32>((k, n), 2),
                matrix::<f32>((m, n), 3),
            );
            for beta in [0.0, 1.0, -0.5] {
                let (want, scale) = reference(0.9, &a, &b, beta, &d);
                for (ld, lc) in [
                    (Layout::Rows, Layout::Rows),
                    (Layout::Transposed, Layout::Rows),
                    (Layout::EveryOtherColumn, Layout::Transposed),
                    (Layout::Reversed, Layout::EveryOtherColumn),
                ] {
                    let sd = Stored::new(&d, ld);
                    let mut sc = Stored::new(&Array2::from_elem((m, n), nan), lc);
                    gemm_from(0.9, a.view(), b.view(), beta, sd.view(), sc.view_mut());
                    let what = format!("{m}×{k}×{n} β={beta} d {ld:?} c {lc:?}");
                    check(&what, sc.view(), &want, &scale, 1e-5);
                    assert!(sc.margin_intact(), "{what}: wrote outside c");
                }
            }
        }
    }

    /// What `gemm` and `gemm_from` hand to ndarray: a large product, and a small `q kᵀ` (both
    /// operands stored by rows, so the kernel would copy `b`).
    #[test]
    fn products_handed_to_ndarray_agree() {
        for (m, k, n) in [(260, 400, 200), (64, 64, 48)] {
            let (a, bt, c0) = (
                matrix::<f64>((m, k), 7),
                matrix::<f64>((n, k), 8),
                matrix::<f64>((m, n), 9),
            );
            let task = Task::new(
                1.0,
                &a.view(),
                &bt.t(),
                1.0,
                None,
                &mut c0.clone().view_mut(),
            );
            assert!(task.prefers_ndarray(), "{m}×{k}×{n} goes to ndarray");
            let b = bt.t().to_owned();
            let (want, scale) = reference(0.5, &a, &b, 2.0, &c0);
            let mut c = c0.clone();
            gemm(0.5, a.view(), bt.t(), 2.0, c.view_mut());
            check("gemm", c.view(), &want, &scale, 1e-13);
            let mut c = Array2::from_elem((m, n), f64::NAN);
            gemm_from(0.5, a.view(), bt.t(), 2.0, c0.view(), c.view_mut());
            check("gemm_from", c.view(), &want, &scale, 1e-13);
        }
    }

    #[test]
    fn an_unavailable_path_is_refused_and_touches_nothing() {
        let (a, b) = (matrix::<f32>((3, 4), 1), matrix::<f32>((4, 5), 2));
        for path in Path::ALL {
            let mut c = Array2::from_elem((3, 5), 7.0_f32);
            let ran = gemm_with(path, 1.0, a.view(), b.view(), 0.0, c.view_mut());
            assert_eq!(ran, path.is_available());
            if !ran {
                assert!(c.iter().all(|&x| x == 7.0), "{path:?}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm: a is 3×4 but b has 5 rows")]
    fn mismatched_shapes_panic() {
        let mut c = Array2::<f64>::zeros((3, 2));
        gemm(
            1.0,
            Array2::zeros((3, 4)).view(),
            Array2::zeros((5, 2)).view(),
            0.0,
            c.view_mut(),
        );
    }
}
