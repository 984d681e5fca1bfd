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
//! Every value is a stack of matrices of one shape, one per group (a batch's sequences), or a
//! single matrix shared by every group (a parameter, a constant): operations broadcast a
//! shared operand across the stack, and its gradient sums over the groups. So one tape
//! records a whole batch and each primitive runs once for all of it. Vectors are `1 × n` rows
//! or `m × 1` columns.

mod backward;
mod broadcast;
mod delta;
mod dense;
mod unary;
mod update;

pub use backward::Grads;
pub(crate) use dense::{
    back_substitute_transposed, forward_substitute, product, softmax_grad_row, softmax_row,
    tril_in_place, tril_stack,
};
pub use unary::Unary;
pub(crate) use unary::{gelu_from, gelu_prime_from, gelu_tanh};
pub(crate) use update::Update;

use mnnn_core::Scalar;
use mnnn_core::kernels;
use ndarray::{Array2, Array3, ArrayView2, Axis, s};

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

/// How a broadcasting elementwise operation combines its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bin {
    Add,
    Sub,
    Mul,
}

#[derive(Clone, Debug)]
pub(crate) enum Op<S> {
    Leaf,
    MatMul(Var, Var, Trans),
    /// `a ∘ b` with numpy broadcasting over every axis of length one: a shared matrix across
    /// the stack, a `1 × n` row down the rows, an `m × 1` column across, a `1 × 1` scalar.
    Bin(Var, Var, Bin),
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
    /// Row softmax of `a` restricted to `mask` (a masked-out entry is exactly zero); the
    /// mask covers the whole stack, group after group.
    Softmax(Var, Vec<bool>),
    SliceRows(Var, usize),
    SliceCols(Var, usize),
    ConcatRows(Vec<Var>),
    ConcatCols(Vec<Var>),
    /// Rows of `a` picked by index, group after group (each group its own indices).
    GatherRows(Var, Vec<usize>),
    /// `x = A⁻¹ y` for unit lower-triangular `A = I + strict_tril(a)`.
    SolveUnitLower(Var, Var),
    Transpose(Var),
    /// The exact delta rule over a block: `[w0, q, k, v, theta]` and the log keep factors;
    /// the value packs `[O; W_end; R]` by rows (see `delta`).
    DeltaChunk([Var; 5], Option<Var>),
    /// `a·W + b·M − Xᵀ diag(c) G` (see `update`).
    FastUpdate(Update),
}

#[derive(Clone, Debug)]
struct Node<S> {
    /// `groups × rows × cols`, in standard layout.
    value: Array3<S>,
    op: Op<S>,
}

/// The record of one forward pass.
#[derive(Clone, Debug, Default)]
pub struct Tape<S> {
    nodes: Vec<Node<S>>,
}

/// Group `g` of a stack, or its only matrix when it is shared by every group.
pub(crate) fn pick<S>(a: &Array3<S>, g: usize) -> ArrayView2<'_, S> {
    a.index_axis(Axis(0), if a.dim().0 == 1 { 0 } else { g })
}

/// A stack seen as one matrix of all its groups' rows.
pub(crate) fn flat<S>(a: &Array3<S>) -> ArrayView2<'_, S> {
    let (g, m, n) = a.dim();
    a.view()
        .into_shape_with_order((g * m, n))
        .expect("standard layout")
}

/// [`flat`], writable.
pub(crate) fn flat_mut<S>(a: &mut Array3<S>) -> ndarray::ArrayViewMut2<'_, S> {
    let (g, m, n) = a.dim();
    a.view_mut()
        .into_shape_with_order((g * m, n))
        .expect("standard layout")
}

/// The operands of a product with their transposes applied.
pub(crate) fn oriented<'a, S>(
    x: ArrayView2<'a, S>,
    y: ArrayView2<'a, S>,
    t: Trans,
) -> (ArrayView2<'a, S>, ArrayView2<'a, S>) {
    match t {
        Trans::NN => (x, y),
        Trans::TN => (x.reversed_axes(), y),
        Trans::NT => (x, y.reversed_axes()),
    }
}

/// The groups of an operation on stacks of `a` and `b` groups: equal, or one of them shared.
pub(crate) fn joint(a: usize, b: usize) -> usize {
    debug_assert!(a == b || a == 1 || b == 1, "stacks of {a} and {b} groups");
    a.max(b)
}

impl<S: Scalar> Tape<S> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape { nodes: Vec::new() }
    }

    /// The value of `v`, a single matrix (a stack of one group).
    pub fn value(&self, v: Var) -> ArrayView2<'_, S> {
        debug_assert_eq!(self.groups(v), 1, "a stacked value read as one matrix");
        self.group(v, 0)
    }

    /// Every group of `v`: `groups × rows × cols`.
    pub fn stack(&self, v: Var) -> &Array3<S> {
        &self.nodes[v.at()].value
    }

    /// Group `g` of `v` (its only matrix when `v` is shared by every group).
    pub fn group(&self, v: Var, g: usize) -> ArrayView2<'_, S> {
        pick(self.stack(v), g)
    }

    /// How many matrices `v` stacks (1 for a value shared by every group).
    pub fn groups(&self, v: Var) -> usize {
        self.stack(v).dim().0
    }

    /// The shape of each of `v`'s matrices.
    pub fn dim(&self, v: Var) -> (usize, usize) {
        let (_, m, n) = self.stack(v).dim();
        (m, n)
    }

    fn push(&mut self, value: Array3<S>, op: Op<S>) -> Var {
        debug_assert!(self.nodes.len() < u32::MAX as usize);
        let value = if value.is_standard_layout() {
            value
        } else {
            value.as_standard_layout().into_owned()
        };
        self.nodes.push(Node { value, op });
        Var(self.nodes.len() as u32 - 1)
    }

    /// An input shared by every group: parameters, constants.
    pub fn leaf(&mut self, value: Array2<S>) -> Var {
        self.push(value.insert_axis(Axis(0)), Op::Leaf)
    }

    /// A shared input copied from a view.
    pub fn leaf_view(&mut self, value: ArrayView2<S>) -> Var {
        self.leaf(value.as_standard_layout().into_owned())
    }

    /// An input with one matrix per group: a batch's data or state.
    pub fn leaf_stack(&mut self, value: Array3<S>) -> Var {
        self.push(value, Op::Leaf)
    }

    /// `a b`, `aᵀ b` or `a bᵀ`, group by group.
    pub fn matmul(&mut self, a: Var, b: Var, t: Trans) -> Var {
        let (x, y) = (self.stack(a), self.stack(b));
        let g = joint(x.dim().0, y.dim().0);
        let (m, n) = {
            let (x0, y0) = oriented(pick(x, 0), pick(y, 0), t);
            (x0.nrows(), y0.ncols())
        };
        let mut v = Array3::zeros((g, m, n));
        if t == Trans::NN && y.dim().0 == 1 && x.dim().0 == g {
            // A shared right operand: one product over every group's rows.
            kernels::gemm(S::one(), flat(x), pick(y, 0), S::zero(), flat_mut(&mut v));
        } else {
            for (i, out) in v.outer_iter_mut().enumerate() {
                let (l, r) = oriented(pick(x, i), pick(y, i), t);
                kernels::gemm(S::one(), l, r, S::zero(), out);
            }
        }
        self.push(v, Op::MatMul(a, b, t))
    }

    fn bin(&mut self, a: Var, b: Var, op: Bin) -> Var {
        let v = broadcast::forward(self.stack(a), self.stack(b), op);
        self.push(v, Op::Bin(a, b, op))
    }

    /// `a + b`.
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        debug_assert_eq!(self.dim(a), self.dim(b));
        self.bin(a, b, Bin::Add)
    }

    /// `a − b`.
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        debug_assert_eq!(self.dim(a), self.dim(b));
        self.bin(a, b, Bin::Sub)
    }

    /// `a ⊙ b`.
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        debug_assert_eq!(self.dim(a), self.dim(b));
        self.bin(a, b, Bin::Mul)
    }

    /// `a + r` with `r` a row.
    pub fn add_row(&mut self, a: Var, r: Var) -> Var {
        debug_assert_eq!(self.dim(r), (1, self.dim(a).1));
        self.bin(a, r, Bin::Add)
    }

    /// `a ⊙ r` with `r` a row.
    pub fn mul_row(&mut self, a: Var, r: Var) -> Var {
        debug_assert_eq!(self.dim(r), (1, self.dim(a).1));
        self.bin(a, r, Bin::Mul)
    }

    /// `a + c` with `c` a column.
    pub fn add_col(&mut self, a: Var, c: Var) -> Var {
        debug_assert_eq!(self.dim(c), (self.dim(a).0, 1));
        self.bin(a, c, Bin::Add)
    }

    /// `a ⊙ c` with `c` a column: `diag(c) a`.
    pub fn mul_col(&mut self, a: Var, c: Var) -> Var {
        debug_assert_eq!(self.dim(c), (self.dim(a).0, 1));
        self.bin(a, c, Bin::Mul)
    }

    /// `k · a`.
    pub fn scale(&mut self, a: Var, k: f64) -> Var {
        let k = S::from_f64(k);
        let v = self.stack(a).mapv(|x| x * k);
        self.push(v, Op::Scale(a, k))
    }

    /// `a + k`.
    pub fn offset(&mut self, a: Var, k: f64) -> Var {
        let k = S::from_f64(k);
        let v = self.stack(a).mapv(|x| x + k);
        self.push(v, Op::Offset(a))
    }

    /// The lower triangle of `a`, with (`strict = false`) or without its diagonal.
    pub fn tril(&mut self, a: Var, strict: bool) -> Var {
        let mut v = self.stack(a).clone();
        tril_stack(&mut v, strict);
        self.push(v, Op::Tril(a, strict))
    }

    /// `f(a)` elementwise.
    pub fn map(&mut self, a: Var, f: Unary) -> Var {
        let x = self.stack(a);
        let mut v = Array3::zeros(x.raw_dim());
        f.apply_slice(
            x.as_slice().expect("standard layout"),
            v.as_slice_mut().expect("fresh array"),
        );
        self.push(v, Op::Map(a, f))
    }

    /// Row sums: `m × n → m × 1`.
    pub fn row_sum(&mut self, a: Var) -> Var {
        let v = self.stack(a).sum_axis(Axis(2)).insert_axis(Axis(2));
        self.push(v, Op::RowSum(a))
    }

    /// Running sum down a column.
    pub fn cumsum(&mut self, c: Var) -> Var {
        let mut v = self.stack(c).clone();
        v.accumulate_axis_inplace(Axis(1), |&prev, cur| *cur += prev);
        self.push(v, Op::CumSum(c))
    }

    /// `D[t, s] = exp(c_t − c_s)` for `s ≤ t`, else 0, from a column `c` of log-factors'
    /// running sums (differences, never raw products, so long chunks cannot underflow).
    pub fn decay(&mut self, c: Var) -> Var {
        let col = self.stack(c);
        let (g, m, _) = col.dim();
        let v = Array3::from_shape_fn((g, m, m), |(i, t, s)| {
            if s <= t {
                (col[(i, t, 0)] - col[(i, s, 0)]).exp()
            } else {
                S::zero()
            }
        });
        self.push(v, Op::Decay(c))
    }

    /// Softmax of each row of `a` over the entries where `mask` (row-major over the whole
    /// stack, same shape) is set; the others are exactly zero. Every row must have at least
    /// one entry set.
    pub fn softmax(&mut self, a: Var, mask: Vec<bool>) -> Var {
        let x = self.stack(a);
        let (g, m, n) = x.dim();
        debug_assert_eq!(mask.len(), g * m * n);
        let mut v = Array3::zeros((g, m, n));
        for (i, (xs, row_v)) in flat(x)
            .outer_iter()
            .zip(flat_mut(&mut v).outer_iter_mut())
            .enumerate()
        {
            let on = &mask[i * n..(i + 1) * n];
            softmax_row(xs, row_v, on);
        }
        self.push(v, Op::Softmax(a, mask))
    }

    /// Rows `start .. start + len`.
    pub fn rows(&mut self, a: Var, start: usize, len: usize) -> Var {
        let v = self
            .stack(a)
            .slice(s![.., start..start + len, ..])
            .to_owned();
        self.push(v, Op::SliceRows(a, start))
    }

    /// Columns `start .. start + len`.
    pub fn cols(&mut self, a: Var, start: usize, len: usize) -> Var {
        let v = self
            .stack(a)
            .slice(s![.., .., start..start + len])
            .as_standard_layout()
            .into_owned();
        self.push(v, Op::SliceCols(a, start))
    }

    fn concat(&mut self, parts: &[Var], axis: usize) -> Array3<S> {
        let g = parts.iter().fold(1, |g, &p| joint(g, self.groups(p)));
        let views: Vec<_> = parts
            .iter()
            .map(|&p| {
                let (_, r, c) = self.stack(p).dim();
                self.stack(p)
                    .broadcast((g, r, c))
                    .expect("one group or all")
            })
            .collect();
        ndarray::concatenate(Axis(axis), &views).expect("matching shapes")
    }

    /// The rows of every part, in order.
    pub fn concat_rows(&mut self, parts: Vec<Var>) -> Var {
        let v = self.concat(&parts, 1);
        self.push(v, Op::ConcatRows(parts))
    }

    /// The columns of every part, in order.
    pub fn concat_cols(&mut self, parts: Vec<Var>) -> Var {
        let v = self.concat(&parts, 2);
        self.push(v, Op::ConcatCols(parts))
    }

    /// The rows of `a` at `index`, in that order; a stack takes `index` as one list per
    /// group, concatenated.
    pub fn gather_rows(&mut self, a: Var, index: Vec<usize>) -> Var {
        let x = self.stack(a);
        let (g, _, n) = x.dim();
        let k = index.len() / g;
        debug_assert_eq!(k * g, index.len());
        let v = Array3::from_shape_fn((g, k, n), |(i, r, c)| x[(i, index[i * k + r], c)]);
        self.push(v, Op::GatherRows(a, index))
    }

    /// `x` with `(I + strict_tril(a)) x = y`, by forward substitution.
    pub fn solve_unit_lower(&mut self, a: Var, y: Var) -> Var {
        let (am, ym) = (self.stack(a), self.stack(y));
        let g = joint(am.dim().0, ym.dim().0);
        let parts: Vec<Array2<S>> = (0..g)
            .map(|i| forward_substitute(pick(am, i), pick(ym, i)))
            .collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let v = ndarray::stack(Axis(0), &views).expect("equal shapes");
        self.push(v, Op::SolveUnitLower(a, y))
    }

    /// `aᵀ`.
    pub fn transpose(&mut self, a: Var) -> Var {
        let v = self
            .stack(a)
            .view()
            .permuted_axes([0, 2, 1])
            .as_standard_layout()
            .into_owned();
        self.push(v, Op::Transpose(a))
    }

    /// `s · a` for a `1 × 1` value `s`.
    pub fn mul_scalar(&mut self, a: Var, k: Var) -> Var {
        debug_assert_eq!(self.dim(k), (1, 1));
        self.bin(a, k, Bin::Mul)
    }

    /// The exact (optionally gated) delta rule over one block of `n` tokens from weights
    /// `w0`: a `(2n + dk) × dv` value packing the reads, the final weights and the residuals
    /// by rows, with a hand-derived backward (see `delta`).
    pub fn delta_chunk(&mut self, [w0, q, k, v, theta]: [Var; 5], log_keep: Option<Var>) -> Var {
        let ins = [w0, q, k, v, theta];
        let g = ins
            .iter()
            .chain(&log_keep)
            .fold(1, |g, &x| joint(g, self.groups(x)));
        let parts: Vec<Array2<S>> = (0..g)
            .map(|i| delta::forward(&self.delta_in(ins, log_keep, i)))
            .collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let value = ndarray::stack(Axis(0), &views).expect("equal shapes");
        self.push(value, Op::DeltaChunk(ins, log_keep))
    }

    fn delta_in(
        &self,
        [w0, q, k, v, theta]: [Var; 5],
        log_keep: Option<Var>,
        g: usize,
    ) -> delta::In<'_, S> {
        delta::In {
            w0: self.group(w0, g),
            q: self.group(q, g),
            k: self.group(k, g),
            v: self.group(v, g),
            theta: self.group(theta, g),
            log_keep: log_keep.map(|l| self.group(l, g)),
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

#[cfg(test)]
mod tests;
