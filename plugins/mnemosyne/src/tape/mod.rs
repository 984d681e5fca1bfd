//! A small reverse-mode tape over matrix primitives.
//!
//! MNEMOSYNE's forward pass contains the inner learner's own hand-derived gradient (the
//! memory writes `−θ·∇ℓ`), so its outer gradient is a gradient *through* a gradient: second
//! derivatives of the LayerNorm-fused loss, GELU's second derivative, products through the
//! chunk's triangular masks. Rather than hand-deriving that whole composition, every forward
//! is written once with these primitives; each primitive's vector–Jacobian product is checked
//! against finite differences, and the composition's backward follows mechanically. The same
//! code runs the inference paths (the tape's values are simply dropped), so training and
//! decoding compute one function.
//!
//! Every value is a matrix; vectors are `1 × n` rows or `m × 1` columns.

mod backward;
mod delta;
mod unary;

pub use backward::Grads;
pub use unary::Unary;
pub(crate) use unary::{gelu_from, gelu_prime_from, gelu_tanh};

use mnnn_core::Scalar;
use ndarray::{Array2, ArrayView2, Axis, s};

/// A value on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(u32);

impl Var {
    fn at(self) -> usize {
        self.0 as usize
    }
}

/// Which operands of a product are transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// `a b`
    NN,
    /// `aᵀ b`
    TN,
    /// `a bᵀ`
    NT,
}

#[derive(Clone, Debug)]
pub(crate) enum Op<S> {
    Leaf,
    MatMul(Var, Var, Trans),
    Add(Var, Var),
    Sub(Var, Var),
    Mul(Var, Var),
    /// `a + r`, `r` a `1 × n` row broadcast down the rows.
    AddRow(Var, Var),
    /// `a ⊙ r`, `r` a `1 × n` row.
    MulRow(Var, Var),
    /// `a + c`, `c` an `m × 1` column broadcast across.
    AddCol(Var, Var),
    /// `a ⊙ c`, `c` an `m × 1` column.
    MulCol(Var, Var),
    Scale(Var, S),
    Offset(Var),
    /// Lower triangle (`strict`: without the diagonal).
    Tril(Var, bool),
    Map(Var, Unary),
    /// `m × n → m × 1`.
    RowSum(Var),
    /// `m × 1 → m × 1` running sum down the rows.
    CumSum(Var),
    /// `c` (`m × 1`) → `m × m` with `exp(c_t − c_s)` for `s ≤ t`, zero above.
    Decay(Var),
    /// Row softmax of `a` restricted to `mask` (a masked-out entry is exactly zero).
    Softmax(Var, Vec<bool>),
    SliceRows(Var, usize),
    SliceCols(Var, usize),
    ConcatRows(Vec<Var>),
    ConcatCols(Vec<Var>),
    /// Rows of `a` picked by index.
    GatherRows(Var, Vec<usize>),
    /// `x = A⁻¹ y` for unit lower-triangular `A = I + strict_tril(a)`.
    SolveUnitLower(Var, Var),
    Transpose(Var),
    /// `s · a` with `s` a `1 × 1` value.
    MulScalar(Var, Var),
    /// The exact delta rule over a block: `[w0, q, k, v, theta]` and the log keep factors;
    /// the value packs `[O; W_end; R]` by rows (see `delta`).
    DeltaChunk([Var; 5], Option<Var>),
}

#[derive(Clone, Debug)]
struct Node<S> {
    value: Array2<S>,
    op: Op<S>,
}

/// The record of one forward pass.
#[derive(Clone, Debug, Default)]
pub struct Tape<S> {
    nodes: Vec<Node<S>>,
}

impl<S: Scalar> Tape<S> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape { nodes: Vec::new() }
    }

    /// The value of `v`.
    pub fn value(&self, v: Var) -> &Array2<S> {
        &self.nodes[v.at()].value
    }

    /// The shape of `v`.
    pub fn dim(&self, v: Var) -> (usize, usize) {
        self.value(v).dim()
    }

    fn push(&mut self, value: Array2<S>, op: Op<S>) -> Var {
        debug_assert!(self.nodes.len() < u32::MAX as usize);
        self.nodes.push(Node { value, op });
        Var(self.nodes.len() as u32 - 1)
    }

    /// An input: parameters, state, data.
    pub fn leaf(&mut self, value: Array2<S>) -> Var {
        self.push(value, Op::Leaf)
    }

    /// An input copied from a view.
    pub fn leaf_view(&mut self, value: ArrayView2<S>) -> Var {
        self.leaf(value.to_owned())
    }

    /// `a b`, `aᵀ b` or `a bᵀ`.
    pub fn matmul(&mut self, a: Var, b: Var, t: Trans) -> Var {
        let (x, y) = (self.value(a).view(), self.value(b).view());
        let v = match t {
            Trans::NN => product(x, y),
            Trans::TN => product(x.t(), y),
            Trans::NT => product(x, y.t()),
        };
        self.push(v, Op::MatMul(a, b, t))
    }

    /// `a + b`.
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let v = self.value(a) + self.value(b);
        self.push(v, Op::Add(a, b))
    }

    /// `a − b`.
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let v = self.value(a) - self.value(b);
        self.push(v, Op::Sub(a, b))
    }

    /// `a ⊙ b`.
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let v = self.value(a) * self.value(b);
        self.push(v, Op::Mul(a, b))
    }

    /// `a + r` with `r` a row.
    pub fn add_row(&mut self, a: Var, r: Var) -> Var {
        let v = self.value(a) + self.value(r);
        self.push(v, Op::AddRow(a, r))
    }

    /// `a ⊙ r` with `r` a row.
    pub fn mul_row(&mut self, a: Var, r: Var) -> Var {
        let v = self.value(a) * self.value(r);
        self.push(v, Op::MulRow(a, r))
    }

    /// `a + c` with `c` a column.
    pub fn add_col(&mut self, a: Var, c: Var) -> Var {
        let v = self.value(a) + self.value(c);
        self.push(v, Op::AddCol(a, c))
    }

    /// `a ⊙ c` with `c` a column: `diag(c) a`.
    pub fn mul_col(&mut self, a: Var, c: Var) -> Var {
        let v = self.value(a) * self.value(c);
        self.push(v, Op::MulCol(a, c))
    }

    /// `k · a`.
    pub fn scale(&mut self, a: Var, k: f64) -> Var {
        let k = S::from_f64(k);
        let v = self.value(a).mapv(|x| x * k);
        self.push(v, Op::Scale(a, k))
    }

    /// `a + k`.
    pub fn offset(&mut self, a: Var, k: f64) -> Var {
        let k = S::from_f64(k);
        let v = self.value(a).mapv(|x| x + k);
        self.push(v, Op::Offset(a))
    }

    /// The lower triangle of `a`, with (`strict = false`) or without its diagonal.
    pub fn tril(&mut self, a: Var, strict: bool) -> Var {
        let mut v = self.value(a).clone();
        tril_in_place(&mut v, strict);
        self.push(v, Op::Tril(a, strict))
    }

    /// `f(a)` elementwise.
    pub fn map(&mut self, a: Var, f: Unary) -> Var {
        let x = self.value(a).as_standard_layout();
        let mut v = Array2::zeros(x.dim());
        f.apply_slice(
            x.as_slice().expect("standard layout"),
            v.as_slice_mut().expect("fresh array"),
        );
        self.push(v, Op::Map(a, f))
    }

    /// Row sums: `m × n → m × 1`.
    pub fn row_sum(&mut self, a: Var) -> Var {
        let v = self.value(a).sum_axis(Axis(1)).insert_axis(Axis(1));
        self.push(v, Op::RowSum(a))
    }

    /// Running sum down a column.
    pub fn cumsum(&mut self, c: Var) -> Var {
        let mut v = self.value(c).clone();
        v.accumulate_axis_inplace(Axis(0), |&prev, cur| *cur += prev);
        self.push(v, Op::CumSum(c))
    }

    /// `D[t, s] = exp(c_t − c_s)` for `s ≤ t`, else 0, from a column `c` of log-factors'
    /// running sums (differences, never raw products, so long chunks cannot underflow).
    pub fn decay(&mut self, c: Var) -> Var {
        let col = self.value(c);
        let m = col.nrows();
        let v = Array2::from_shape_fn((m, m), |(t, s)| {
            if s <= t {
                (col[(t, 0)] - col[(s, 0)]).exp()
            } else {
                S::zero()
            }
        });
        self.push(v, Op::Decay(c))
    }

    /// Softmax of each row of `a` over the entries where `mask` (row-major, same shape) is
    /// set; the others are exactly zero. Every row must have at least one entry set.
    pub fn softmax(&mut self, a: Var, mask: Vec<bool>) -> Var {
        let x = self.value(a);
        let (m, n) = x.dim();
        debug_assert_eq!(mask.len(), m * n);
        let mut v = Array2::zeros((m, n));
        for i in 0..m {
            let on = &mask[i * n..(i + 1) * n];
            let top = (0..n)
                .filter(|&j| on[j])
                .map(|j| x[(i, j)])
                .fold(S::neg_infinity(), S::max);
            let mut total = S::zero();
            for j in (0..n).filter(|&j| on[j]) {
                let e = (x[(i, j)] - top).exp();
                v[(i, j)] = e;
                total += e;
            }
            v.row_mut(i).mapv_inplace(|e| e / total);
        }
        self.push(v, Op::Softmax(a, mask))
    }

    /// Rows `start .. start + len`.
    pub fn rows(&mut self, a: Var, start: usize, len: usize) -> Var {
        let v = self.value(a).slice(s![start..start + len, ..]).to_owned();
        self.push(v, Op::SliceRows(a, start))
    }

    /// Columns `start .. start + len`.
    pub fn cols(&mut self, a: Var, start: usize, len: usize) -> Var {
        let v = self.value(a).slice(s![.., start..start + len]).to_owned();
        self.push(v, Op::SliceCols(a, start))
    }

    /// The rows of every part, in order.
    pub fn concat_rows(&mut self, parts: Vec<Var>) -> Var {
        let views: Vec<_> = parts.iter().map(|&p| self.value(p).view()).collect();
        let v = ndarray::concatenate(Axis(0), &views).expect("equal widths");
        self.push(v, Op::ConcatRows(parts))
    }

    /// The columns of every part, in order.
    pub fn concat_cols(&mut self, parts: Vec<Var>) -> Var {
        let views: Vec<_> = parts.iter().map(|&p| self.value(p).view()).collect();
        let v = ndarray::concatenate(Axis(1), &views).expect("equal heights");
        self.push(v, Op::ConcatCols(parts))
    }

    /// The rows of `a` at `index`, in that order.
    pub fn gather_rows(&mut self, a: Var, index: Vec<usize>) -> Var {
        let v = self.value(a).select(Axis(0), &index);
        self.push(v, Op::GatherRows(a, index))
    }

    /// `x` with `(I + strict_tril(a)) x = y`, by forward substitution.
    pub fn solve_unit_lower(&mut self, a: Var, y: Var) -> Var {
        let v = forward_substitute(self.value(a).view(), self.value(y).view());
        self.push(v, Op::SolveUnitLower(a, y))
    }

    /// `aᵀ`.
    pub fn transpose(&mut self, a: Var) -> Var {
        let v = self.value(a).t().to_owned();
        self.push(v, Op::Transpose(a))
    }

    /// `s · a` for a `1 × 1` value `s`.
    pub fn mul_scalar(&mut self, a: Var, k: Var) -> Var {
        debug_assert_eq!(self.dim(k), (1, 1));
        let f = self.value(k)[(0, 0)];
        let v = self.value(a).mapv(|x| x * f);
        self.push(v, Op::MulScalar(a, k))
    }

    /// The exact (optionally gated) delta rule over one block of `n` tokens from weights
    /// `w0`: a `(2n + dk) × dv` value packing the reads, the final weights and the residuals
    /// by rows, with a hand-derived backward (see `delta`).
    pub fn delta_chunk(&mut self, [w0, q, k, v, theta]: [Var; 5], log_keep: Option<Var>) -> Var {
        let value = delta::forward(&self.delta_in([w0, q, k, v, theta], log_keep));
        self.push(value, Op::DeltaChunk([w0, q, k, v, theta], log_keep))
    }

    fn delta_in(&self, [w0, q, k, v, theta]: [Var; 5], log_keep: Option<Var>) -> delta::In<'_, S> {
        delta::In {
            w0: self.value(w0).view(),
            q: self.value(q).view(),
            k: self.value(k).view(),
            v: self.value(v).view(),
            theta: self.value(theta).view(),
            log_keep: log_keep.map(|l| self.value(l).view()),
        }
    }

    // Compositions used throughout.

    /// `a ⊙ a` summed along rows: `m × 1`.
    pub fn row_sum_sq(&mut self, a: Var) -> Var {
        let sq = self.map(a, Unary::Square);
        self.row_sum(sq)
    }

    /// Rows scaled to unit ℓ2 norm (`x / √(‖x‖² + eps)`).
    pub fn l2_normalize(&mut self, a: Var, eps: f64) -> Var {
        let ss = self.row_sum_sq(a);
        let inv = self.map(ss, Unary::Rsqrt(eps));
        self.mul_col(a, inv)
    }

    /// Root-mean-square normalisation of rows, times a gain row.
    pub fn rms_norm(&mut self, a: Var, gain: Var, eps: f64) -> Var {
        let n = self.dim(a).1 as f64;
        let ss = self.row_sum_sq(a);
        let ms = self.scale(ss, 1.0 / n);
        let inv = self.map(ms, Unary::Rsqrt(eps));
        let x = self.mul_col(a, inv);
        self.mul_row(x, gain)
    }

    /// Row mean: `m × 1`.
    pub fn row_mean(&mut self, a: Var) -> Var {
        let n = self.dim(a).1 as f64;
        let s = self.row_sum(a);
        self.scale(s, 1.0 / n)
    }
}

/// `a b` into a new array, through `mnnn_core`'s small-product kernel (no packing; views of
/// any strides, so transposes cost nothing).
pub(crate) fn product<S: Scalar>(a: ArrayView2<S>, b: ArrayView2<S>) -> Array2<S> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    mnnn_core::kernels::gemm(S::one(), a, b, S::zero(), c.view_mut());
    c
}

/// Zeroes the entries above the diagonal (and the diagonal when `strict`).
pub(crate) fn tril_in_place<S: Scalar>(v: &mut Array2<S>, strict: bool) {
    let (m, n) = v.dim();
    for i in 0..m {
        let from = if strict { i } else { i + 1 };
        for j in from.min(n)..n {
            v[(i, j)] = S::zero();
        }
    }
}

/// `x` with `(I + strict_tril(a)) x = y`.
pub(crate) fn forward_substitute<S: Scalar>(a: ArrayView2<S>, y: ArrayView2<S>) -> Array2<S> {
    let mut x = y.to_owned();
    for i in 1..x.nrows() {
        let (done, mut rest) = x.view_mut().split_at(Axis(0), i);
        let mut row = rest.row_mut(0);
        for j in 0..i {
            let c = a[(i, j)];
            if c != S::zero() {
                row.scaled_add(-c, &done.row(j));
            }
        }
    }
    x
}

/// `x` with `(I + strict_tril(a))ᵀ x = y`, by back substitution.
pub(crate) fn back_substitute_transposed<S: Scalar>(
    a: ArrayView2<S>,
    y: ArrayView2<S>,
) -> Array2<S> {
    let mut x = y.to_owned();
    let m = x.nrows();
    for i in (0..m.saturating_sub(1)).rev() {
        let (mut head, done) = x.view_mut().split_at(Axis(0), i + 1);
        let mut row = head.row_mut(i);
        for j in i + 1..m {
            let c = a[(j, i)];
            if c != S::zero() {
                row.scaled_add(-c, &done.row(j - i - 1));
            }
        }
    }
    x
}

#[cfg(test)]
mod tests;
