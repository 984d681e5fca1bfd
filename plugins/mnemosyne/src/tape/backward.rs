//! The vector–Jacobian product of every primitive, run in reverse over the tape. A shared
//! operand (one group) receives the sum of its groups' gradients.

use super::{
    Bin, Op, Tape, Trans, Var, back_substitute_transposed, flat, flat_mut, pick, softmax_grad_row,
    tril_stack,
};
use mnnn_core::{Scalar, kernels};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis, s};

/// `∂L/∂v` for every value the seeds reach.
#[derive(Debug)]
pub struct Grads<S> {
    slots: Vec<Option<Array3<S>>>,
}

impl<S: Scalar> Grads<S> {
    /// The gradient of a single-matrix `v`, `None` when nothing seeded depends on it.
    pub fn get(&self, v: Var) -> Option<ArrayView2<'_, S>> {
        self.stack(v).map(|a| {
            debug_assert_eq!(a.dim().0, 1, "a stacked gradient read as one matrix");
            a.index_axis(Axis(0), 0)
        })
    }

    /// The gradient of every group of `v`, `None` when nothing seeded depends on it.
    pub fn stack(&self, v: Var) -> Option<&Array3<S>> {
        self.slots[v.at()].as_ref()
    }
}

/// Group `g`'s gradient slot, or the shared slot.
fn group_mut<S>(a: &mut Array3<S>, g: usize) -> ArrayViewMut2<'_, S> {
    let i = if a.dim().0 == 1 { 0 } else { g };
    a.index_axis_mut(Axis(0), i)
}

impl<S: Scalar> Tape<S> {
    /// Backpropagates from `seeds` (each `∂L/∂v` for an output `v`, every group of it).
    pub fn backward(&self, seeds: &[(Var, ArrayView3<S>)]) -> Grads<S> {
        let mut g = Grads {
            slots: vec![None; self.nodes.len()],
        };
        for (v, d) in seeds {
            debug_assert_eq!(self.stack(*v).dim(), d.dim(), "seed shape");
            self.acc(&mut g, *v, d.view());
        }
        let last = seeds.iter().map(|(v, _)| v.at()).max().unwrap_or(0);
        for i in (0..=last.min(self.nodes.len().saturating_sub(1))).rev() {
            let Some(d) = g.slots[i].take() else { continue };
            self.propagate(Var(i as u32), &d, &mut g);
            g.slots[i] = Some(d);
        }
        g
    }

    /// `v`'s gradient slot, zero until something reaches it.
    fn slot<'g>(&self, g: &'g mut Grads<S>, v: Var) -> &'g mut Array3<S> {
        g.slots[v.at()].get_or_insert_with(|| Array3::zeros(self.stack(v).raw_dim()))
    }

    /// Adds `d` (shaped like the operation's output) to `v`'s gradient, summed over every axis
    /// along which `v` was broadcast.
    fn acc(&self, g: &mut Grads<S>, v: Var, d: ArrayView3<S>) {
        let shape = self.stack(v).dim();
        let want = [shape.0, shape.1, shape.2];
        let mut reduced: Option<Array3<S>> = None;
        for (ax, &n) in want.iter().enumerate() {
            let cur = reduced.as_ref().map_or(d.view(), |r| r.view());
            if n == 1 && cur.len_of(Axis(ax)) > 1 {
                reduced = Some(cur.sum_axis(Axis(ax)).insert_axis(Axis(ax)));
            }
        }
        let d = reduced.as_ref().map_or(d.view(), |r| r.view());
        match &mut g.slots[v.at()] {
            Some(acc) => *acc += &d,
            slot @ None => *slot = Some(d.to_owned()),
        }
    }

    fn acc_owned(&self, g: &mut Grads<S>, v: Var, d: Array3<S>) {
        if self.stack(v).dim() == d.dim() && g.slots[v.at()].is_none() {
            g.slots[v.at()] = Some(d);
        } else {
            self.acc(g, v, d.view());
        }
    }

    /// Group `i` of `v`'s slot (the shared slot when `v` is shared), to accumulate into.
    pub(super) fn slot_group<'g>(
        &self,
        g: &'g mut Grads<S>,
        v: Var,
        i: usize,
    ) -> ArrayViewMut2<'g, S> {
        group_mut(self.slot(g, v), i)
    }

    /// Adds `k · d` into group `i` of `v`'s slot.
    pub(super) fn acc_scaled(&self, g: &mut Grads<S>, v: Var, i: usize, k: S, d: ArrayView2<S>) {
        let mut dst = self.slot_group(g, v, i);
        dst.zip_mut_with(&d, |a, &b| *a += k * b);
    }

    /// Adds group `i`'s matrix `d` into `v`'s slot.
    pub(super) fn acc_group(&self, g: &mut Grads<S>, v: Var, i: usize, d: ArrayView2<S>) {
        let mut dst = group_mut(self.slot(g, v), i);
        dst += &d;
    }

    fn propagate(&self, out: Var, d: &Array3<S>, g: &mut Grads<S>) {
        let node = &self.nodes[out.at()];
        let groups = d.dim().0;
        match &node.op {
            Op::Leaf => {}
            Op::MatMul(a, b, t) => self.matmul_vjp(*a, *b, *t, d, g),
            Op::Bin(a, b, op) => {
                let (x, y) = (self.stack(*a), self.stack(*b));
                let (one, minus) = (S::one(), -S::one());
                let (ya, xb, sign_b) = match op {
                    Bin::Add => (None, None, one),
                    Bin::Sub => (None, None, minus),
                    Bin::Mul => (Some(y), Some(x), one),
                };
                super::broadcast::accumulate(self.slot(g, *a), d, ya, one);
                super::broadcast::accumulate(self.slot(g, *b), d, xb, sign_b);
            }
            Op::Scale(a, k) => {
                let k = *k;
                self.acc_owned(g, *a, d.mapv(|v| v * k));
            }
            Op::Offset(a) => self.acc(g, *a, d.view()),
            Op::Tril(a, strict) => {
                let mut t = d.clone();
                tril_stack(&mut t, *strict);
                self.acc_owned(g, *a, t);
            }
            Op::Map(a, f) => {
                let x = self.stack(*a);
                let mut t = d.clone();
                let mut th = Array3::zeros(x.raw_dim());
                f.scale_by_derivative(
                    x.as_slice().expect("standard layout"),
                    t.as_slice_mut().expect("standard layout"),
                    th.as_slice_mut().expect("fresh array"),
                );
                self.acc_owned(g, *a, t);
            }
            Op::RowSum(a) => {
                let shape = self.stack(*a).raw_dim();
                let t = d.broadcast(shape).expect("column");
                self.acc(g, *a, t);
            }
            Op::CumSum(c) => {
                // The adjoint of a running sum is the running sum from the end.
                let mut t = d.clone();
                for mut col in t.outer_iter_mut() {
                    for i in (0..col.nrows().saturating_sub(1)).rev() {
                        let next = col[(i + 1, 0)];
                        col[(i, 0)] += next;
                    }
                }
                self.acc_owned(g, *c, t);
            }
            Op::Decay(c) => {
                let v = &node.value;
                let (gs, m, _) = v.dim();
                let mut t = Array3::zeros((gs, m, 1));
                for i in 0..gs {
                    for r in 0..m {
                        for q in 0..=r {
                            let w = d[(i, r, q)] * v[(i, r, q)];
                            t[(i, r, 0)] += w;
                            t[(i, q, 0)] -= w;
                        }
                    }
                }
                self.acc_owned(g, *c, t);
            }
            Op::Softmax(a, mask) => {
                let y = &node.value;
                let n = y.dim().2;
                let mut t = Array3::zeros(y.raw_dim());
                for (i, ((yr, dr), tr)) in flat(y)
                    .outer_iter()
                    .zip(flat(d).outer_iter())
                    .zip(flat_mut(&mut t).outer_iter_mut())
                    .enumerate()
                {
                    softmax_grad_row(yr, dr, tr, &mask[i * n..(i + 1) * n]);
                }
                self.acc_owned(g, *a, t);
            }
            Op::SliceRows(a, start) => {
                let r = d.dim().1;
                let mut dst = self.slot(g, *a).slice_mut(s![.., *start..*start + r, ..]);
                dst += d;
            }
            Op::SliceCols(a, start) => {
                let c = d.dim().2;
                let mut dst = self.slot(g, *a).slice_mut(s![.., .., *start..*start + c]);
                dst += d;
            }
            Op::ConcatRows(parts) => {
                let mut at = 0;
                for p in parts {
                    let r = self.dim(*p).0;
                    self.acc(g, *p, d.slice(s![.., at..at + r, ..]));
                    at += r;
                }
            }
            Op::ConcatCols(parts) => {
                let mut at = 0;
                for p in parts {
                    let c = self.dim(*p).1;
                    self.acc(g, *p, d.slice(s![.., .., at..at + c]));
                    at += c;
                }
            }
            Op::GatherRows(a, index) => {
                let k = d.dim().1;
                let slot = self.slot(g, *a);
                for i in 0..groups {
                    for r in 0..k {
                        let mut dst = slot.slice_mut(s![i, index[i * k + r], ..]);
                        dst += &d.slice(s![i, r, ..]);
                    }
                }
            }
            Op::SolveUnitLower(a, y) => {
                // x = A⁻¹y: dy = A⁻ᵀ dx, dA = −dy xᵀ on the strict lower triangle.
                let am = self.stack(*a);
                for i in 0..groups {
                    let dy = back_substitute_transposed(pick(am, i), d.index_axis(Axis(0), i));
                    let x = node.value.index_axis(Axis(0), i);
                    let mut da = group_mut(self.slot(g, *a), i);
                    // da −= strict_tril(dy xᵀ), accumulated in place.
                    let mut full = Array2::zeros(da.raw_dim());
                    kernels::gemm(S::one(), dy.view(), x.t(), S::zero(), full.view_mut());
                    super::tril_in_place(&mut full.view_mut(), true);
                    da -= &full;
                    self.acc_group(g, *y, i, dy.view());
                }
            }
            Op::Transpose(a) => {
                let t = d.view().permuted_axes([0, 2, 1]);
                self.acc(g, *a, t);
            }
            Op::FastUpdate(u) => self.fast_update_vjp(u, d, g),
            Op::DeltaChunk(ins, lk) => {
                let [w0, q, k, v, theta] = *ins;
                for i in 0..groups {
                    let gr = super::delta::backward(
                        &self.delta_in(*ins, *lk, i),
                        node.value.index_axis(Axis(0), i),
                        d.index_axis(Axis(0), i),
                    );
                    self.acc_group(g, w0, i, gr.w0.view());
                    self.acc_group(g, q, i, gr.q.view());
                    self.acc_group(g, k, i, gr.k.view());
                    self.acc_group(g, v, i, gr.v.view());
                    self.acc_group(g, theta, i, gr.theta.view());
                    if let (Some(l), Some(dl)) = (lk, gr.log_keep) {
                        self.acc_group(g, *l, i, dl.view());
                    }
                }
            }
        }
    }

    /// The product's VJP, accumulated straight into the operands' slots.
    fn matmul_vjp(&self, a: Var, b: Var, t: Trans, d: &Array3<S>, g: &mut Grads<S>) {
        let (x, y) = (self.stack(a), self.stack(b));
        let groups = d.dim().0;
        let one = S::one();
        if t == Trans::NN && y.dim().0 == 1 && x.dim().0 == groups {
            // A shared right operand: the forward was one product over every group's rows.
            let y0 = pick(y, 0);
            kernels::gemm(one, flat(d), y0.t(), one, flat_mut(self.slot(g, a)));
            let db = group_mut(self.slot(g, b), 0);
            kernels::gemm(one, flat(x).reversed_axes(), flat(d), one, db);
            return;
        }
        for i in 0..groups {
            let (xi, yi, di) = (pick(x, i), pick(y, i), d.index_axis(Axis(0), i));
            // C = op(X) op(Y): dX and dY for each layout.
            let (da_l, da_r, db_l, db_r) = match t {
                Trans::NN => (di, yi.t(), xi.t(), di),
                Trans::TN => (yi, di.t(), xi, di),
                Trans::NT => (di, yi, di.t(), xi),
            };
            kernels::gemm(one, da_l, da_r, one, group_mut(self.slot(g, a), i));
            kernels::gemm(one, db_l, db_r, one, group_mut(self.slot(g, b), i));
        }
    }
}
