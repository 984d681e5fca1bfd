//! Recording: the operations a [`TapeCell`](super::TapeCell) writes its forward pass in.
//! Each computes its value at once (into the arena) and records how, for the backward pass.

use super::{Op, Tape, Unary, Var, param_shape, value};
use crate::{Scalar, Tensors};

/// `√(2/π)` and the cubic coefficient of GELU's tanh form.
pub(super) const GELU_C: f64 = 0.797_884_560_802_865_4;
pub(super) const GELU_A: f64 = 0.044_715;

/// The recorder a [`TapeCell`](super::TapeCell) writes one step with: every operation
/// returns a new [`Var`] whose value is computed at once.
///
/// Operands must have the shapes each operation names; a mismatch is a bug in the cell's
/// equations (its shapes follow from its validated configuration, never from user data), so
/// it panics with the shapes involved.
pub struct Rec<'a, S: Scalar> {
    pub(super) tape: &'a mut Tape<S>,
    pub(super) params: &'a Tensors<S>,
}

impl<'a, S: Scalar> Rec<'a, S> {
    /// Starts a window on `tape`: forgets the last one and puts every parameter of `params`
    /// on it.
    pub(super) fn begin(tape: &'a mut Tape<S>, params: &'a Tensors<S>, batch: usize) -> Self {
        tape.clear();
        tape.batch = batch;
        for (i, e) in params.layout().entries().iter().enumerate() {
            let (r, c) = param_shape(&e.shape);
            let v = tape.push(Op::Param(i), r, c, true);
            tape.params.push(v);
        }
        Rec { tape, params }
    }

    /// Sequences in the batch: the rows of every per-sequence value.
    pub fn batch(&self) -> usize {
        self.tape.batch
    }

    /// Parameter tensor `i` of the layout: `[r, c]` as an `r × c` matrix, a vector as one
    /// row.
    pub fn param(&self, i: usize) -> Var {
        self.tape.params[i]
    }

    /// The parameter tensor called `name`.
    ///
    /// # Panics
    /// If the layout has no such tensor (a bug in the cell).
    pub fn param_named(&self, name: &str) -> Var {
        match self.params.layout().index_of(name) {
            Some(i) => self.param(i),
            None => panic!("the cell reads a parameter '{name}' its layout does not have"),
        }
    }

    /// The shape of `v`.
    pub fn dim(&self, v: Var) -> (usize, usize) {
        self.tape.dim(v)
    }

    /// The value of `v`, row-major.
    pub fn value(&self, v: Var) -> &[S] {
        self.tape.value(self.params, v)
    }

    /// A `rows × cols` matrix filled with `fill`, through which no gradient flows.
    pub fn constant(&mut self, rows: usize, cols: usize, fill: S) -> Var {
        let v = self.tape.push(Op::Constant, rows, cols, false);
        let n = self.tape.nodes[v.at()];
        self.tape.vals[n.off..n.off + n.len()].fill(fill);
        v
    }

    /// A value given from outside (an input or a start state), copied onto the tape.
    pub(super) fn leaf(
        &mut self,
        op: Op<S>,
        rows: usize,
        cols: usize,
        data: impl IntoIterator<Item = S>,
    ) -> Var {
        let v = self.tape.push(op, rows, cols, true);
        let n = self.tape.nodes[v.at()];
        for (d, s) in self.tape.vals[n.off..n.off + n.len()].iter_mut().zip(data) {
            *d = s;
        }
        v
    }

    /// Appends a node computed by `fill` from its operands' values.
    fn make<const N: usize>(
        &mut self,
        op: Op<S>,
        (rows, cols): (usize, usize),
        args: [Var; N],
        fill: impl FnOnce([&[S]; N], &mut [S]),
    ) -> Var {
        let needs = args.iter().any(|a| self.tape.nodes[a.at()].needs);
        let v = self.tape.push(op, rows, cols, needs);
        let t = &mut *self.tape;
        let off = t.nodes[v.at()].off;
        let (lo, out) = t.vals.split_at_mut(off);
        let ins = args.map(|a| value(&t.nodes, lo, self.params, a));
        fill(ins, out);
        v
    }

    fn same_shape(&self, what: &str, a: Var, b: Var) -> (usize, usize) {
        let (da, db) = (self.dim(a), self.dim(b));
        assert_eq!(da, db, "{what}: operands of shapes {da:?} and {db:?}");
        da
    }

    fn row_of(&self, what: &str, a: Var, r: Var) -> (usize, usize) {
        let (da, dr) = (self.dim(a), self.dim(r));
        assert!(
            dr == (1, da.1),
            "{what}: a row of shape {dr:?} against a matrix of shape {da:?}"
        );
        da
    }

    /// The matrix product `a · b` (`m × k` by `k × n`), row by row with core's kernels, so
    /// each row's result is what that sequence gives alone.
    pub fn matmul(&mut self, a: Var, b: Var) -> Var {
        let ((m, k), (k2, n)) = (self.dim(a), self.dim(b));
        assert_eq!(k, k2, "matmul: {m}×{k} by {k2}×{n}");
        self.make(Op::MatMul(a, b), (m, n), [a, b], |[x, w], y| {
            S::gemm_rows_acc(y, x, w, m)
        })
    }

    /// `a + b`.
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let d = self.same_shape("add", a, b);
        self.make(Op::Add(a, b), d, [a, b], |[x, z], y| {
            for ((y, &x), &z) in y.iter_mut().zip(x).zip(z) {
                *y = x + z;
            }
        })
    }

    /// `a − b`.
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let d = self.same_shape("sub", a, b);
        self.make(Op::Sub(a, b), d, [a, b], |[x, z], y| {
            for ((y, &x), &z) in y.iter_mut().zip(x).zip(z) {
                *y = x - z;
            }
        })
    }

    /// `a ⊙ b`, elementwise.
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let d = self.same_shape("mul", a, b);
        self.make(Op::Mul(a, b), d, [a, b], |[x, z], y| {
            for ((y, &x), &z) in y.iter_mut().zip(x).zip(z) {
                *y = x * z;
            }
        })
    }

    /// `a` with the row `r` (`1 × n`, e.g. a bias vector) added to each of its rows.
    pub fn add_row(&mut self, a: Var, r: Var) -> Var {
        let d = self.row_of("add_row", a, r);
        self.make(Op::AddRow(a, r), d, [a, r], |[x, r], y| {
            for (yr, xr) in y.chunks_exact_mut(d.1).zip(x.chunks_exact(d.1)) {
                for ((y, &x), &r) in yr.iter_mut().zip(xr).zip(r) {
                    *y = x + r;
                }
            }
        })
    }

    /// `a` with each of its rows multiplied elementwise by the row `r` (`1 × n`, e.g. a
    /// per-unit gain).
    pub fn mul_row(&mut self, a: Var, r: Var) -> Var {
        let d = self.row_of("mul_row", a, r);
        self.make(Op::MulRow(a, r), d, [a, r], |[x, r], y| {
            for (yr, xr) in y.chunks_exact_mut(d.1).zip(x.chunks_exact(d.1)) {
                for ((y, &x), &r) in yr.iter_mut().zip(xr).zip(r) {
                    *y = x * r;
                }
            }
        })
    }

    /// `scale · a + shift`, with constants `scale` and `shift`.
    pub fn affine(&mut self, a: Var, scale: S, shift: S) -> Var {
        let d = self.dim(a);
        self.make(Op::Affine(a, scale, shift), d, [a], |[x], y| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = scale * x + shift;
            }
        })
    }

    /// `c · a` for a constant `c`.
    pub fn scale(&mut self, a: Var, c: S) -> Var {
        self.affine(a, c, S::zero())
    }

    /// `1 − a`.
    pub fn one_minus(&mut self, a: Var) -> Var {
        self.affine(a, -S::one(), S::one())
    }

    /// `x · w + b`: a product with a weight matrix and a bias row (`1 × n`), kept as one
    /// value.
    pub fn linear(&mut self, x: Var, w: Var, b: Var) -> Var {
        let ((m, k), (k2, n)) = (self.dim(x), self.dim(w));
        assert_eq!(k, k2, "linear: {m}×{k} by {k2}×{n}");
        assert_eq!(
            self.dim(b),
            (1, n),
            "linear: bias of shape {:?}",
            self.dim(b)
        );
        self.make(Op::Linear(x, w, b), (m, n), [x, w, b], |[x, w, b], y| {
            y.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(b));
            S::gemm_rows_acc(y, x, w, m)
        })
    }

    /// `α·a + β·b` for constants `α` and `β` (a leaky average, an echo): one value where
    /// [`Rec::scale`] and [`Rec::add`] would keep three.
    pub fn axpby(&mut self, alpha: S, a: Var, beta: S, b: Var) -> Var {
        let d = self.same_shape("axpby", a, b);
        self.make(Op::Axpby(alpha, a, beta, b), d, [a, b], |[x, z], y| {
            for ((y, &x), &z) in y.iter_mut().zip(x).zip(z) {
                *y = alpha * x + beta * z;
            }
        })
    }

    /// `f(a)`, elementwise.
    pub fn map(&mut self, a: Var, f: Unary) -> Var {
        let d = self.dim(a);
        self.make(Op::Map(a, f), d, [a], |[x], y| apply(f, x, y))
    }

    /// `tanh(a)`.
    pub fn tanh(&mut self, a: Var) -> Var {
        self.map(a, Unary::Tanh)
    }

    /// `σ(a)`, the logistic sigmoid.
    pub fn sigmoid(&mut self, a: Var) -> Var {
        self.map(a, Unary::Sigmoid)
    }

    /// `max(a, 0)`.
    pub fn relu(&mut self, a: Var) -> Var {
        self.map(a, Unary::Relu)
    }

    /// GELU (tanh form).
    pub fn gelu(&mut self, a: Var) -> Var {
        self.map(a, Unary::Gelu)
    }

    /// `ln(1 + eᵃ)`.
    pub fn softplus(&mut self, a: Var) -> Var {
        self.map(a, Unary::Softplus)
    }

    /// Columns `start..start + cols` of `a`.
    pub fn slice_cols(&mut self, a: Var, start: usize, cols: usize) -> Var {
        let (m, n) = self.dim(a);
        assert!(
            start + cols <= n,
            "slice_cols: columns {start}..{} of {n}",
            start + cols
        );
        self.make(Op::SliceCols(a, start), (m, cols), [a], |[x], y| {
            for (yr, xr) in y.chunks_exact_mut(cols).zip(x.chunks_exact(n)) {
                yr.copy_from_slice(&xr[start..start + cols]);
            }
        })
    }

    /// The columns of `a` followed by those of `b` (same rows).
    pub fn concat(&mut self, a: Var, b: Var) -> Var {
        let ((m, ca), (m2, cb)) = (self.dim(a), self.dim(b));
        assert_eq!(m, m2, "concat: {m} rows beside {m2}");
        self.make(Op::Concat(a, b), (m, ca + cb), [a, b], |[x, z], y| {
            for ((yr, xr), zr) in y
                .chunks_exact_mut(ca + cb)
                .zip(x.chunks_exact(ca))
                .zip(z.chunks_exact(cb))
            {
                yr[..ca].copy_from_slice(xr);
                yr[ca..].copy_from_slice(zr);
            }
        })
    }
}

/// `y = f(x)`.
fn apply<S: Scalar>(f: Unary, x: &[S], y: &mut [S]) {
    let (one, half) = (S::one(), S::from_f64(0.5));
    match f {
        Unary::Tanh => {
            y.copy_from_slice(x);
            S::tanh_inplace(y);
        }
        Unary::Sigmoid => {
            // σ(x) = ½ + ½ tanh(x/2): the fast tanh kernel serves both.
            for (y, &x) in y.iter_mut().zip(x) {
                *y = half * x;
            }
            S::tanh_inplace(y);
            y.iter_mut().for_each(|v| *v = half + half * *v);
        }
        Unary::Relu => {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x.max(S::zero());
            }
        }
        Unary::Gelu => {
            let (c, a) = (S::from_f64(GELU_C), S::from_f64(GELU_A));
            for (y, &u) in y.iter_mut().zip(x) {
                *y = half * u * (one + (c * (u + a * u * u * u)).tanh());
            }
        }
        Unary::Softplus => {
            // max(x, 0) + ln(1 + e^{−|x|}): no overflow for large |x|.
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x.max(S::zero()) + (-x.abs()).exp().ln_1p();
            }
        }
        Unary::Exp => {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x.exp();
            }
        }
        Unary::Square => {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x * x;
            }
        }
    }
}
