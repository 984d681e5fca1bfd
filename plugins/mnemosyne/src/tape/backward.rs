//! The vector–Jacobian product of every primitive, run in reverse over the tape.

use super::{Op, Tape, Trans, Var, back_substitute_transposed, product, tril_in_place};
use mnnn_core::Scalar;
use ndarray::{Array2, ArrayView2, Axis, s};

/// `∂L/∂v` for every value the seeds reach.
#[derive(Debug)]
pub struct Grads<S> {
    slots: Vec<Option<Array2<S>>>,
}

impl<S: Scalar> Grads<S> {
    /// The gradient of `v`, `None` when nothing seeded depends on it.
    pub fn get(&self, v: Var) -> Option<&Array2<S>> {
        self.slots[v.at()].as_ref()
    }

    fn add(&mut self, v: Var, g: Array2<S>) {
        match &mut self.slots[v.at()] {
            Some(acc) => *acc += &g,
            slot @ None => *slot = Some(g),
        }
    }

    fn add_view(&mut self, v: Var, g: ArrayView2<S>) {
        match &mut self.slots[v.at()] {
            Some(acc) => *acc += &g,
            slot @ None => *slot = Some(g.to_owned()),
        }
    }
}

impl<S: Scalar> Tape<S> {
    /// Backpropagates from `seeds` (each `∂L/∂v` for an output `v`).
    pub fn backward(&self, seeds: &[(Var, ArrayView2<S>)]) -> Grads<S> {
        let mut g = Grads {
            slots: vec![None; self.nodes.len()],
        };
        for (v, d) in seeds {
            debug_assert_eq!(self.dim(*v), d.dim(), "seed shape");
            g.add_view(*v, d.view());
        }
        let last = seeds.iter().map(|(v, _)| v.at()).max().unwrap_or(0);
        for i in (0..=last.min(self.nodes.len().saturating_sub(1))).rev() {
            let Some(d) = g.slots[i].take() else { continue };
            self.propagate(Var(i as u32), &d, &mut g);
            g.slots[i] = Some(d);
        }
        g
    }

    fn propagate(&self, out: Var, d: &Array2<S>, g: &mut Grads<S>) {
        let node = &self.nodes[out.at()];
        match &node.op {
            Op::Leaf => {}
            Op::MatMul(a, b, t) => {
                let (x, y, d) = (self.value(*a).view(), self.value(*b).view(), d.view());
                match t {
                    Trans::NN => {
                        g.add(*a, product(d, y.t()));
                        g.add(*b, product(x.t(), d));
                    }
                    Trans::TN => {
                        g.add(*a, product(y, d.t()));
                        g.add(*b, product(x, d));
                    }
                    Trans::NT => {
                        g.add(*a, product(d, y));
                        g.add(*b, product(d.t(), x));
                    }
                }
            }
            Op::Add(a, b) => {
                g.add_view(*a, d.view());
                g.add_view(*b, d.view());
            }
            Op::Sub(a, b) => {
                g.add_view(*a, d.view());
                g.add(*b, d.mapv(|v| -v));
            }
            Op::Mul(a, b) => {
                g.add(*a, d * self.value(*b));
                g.add(*b, d * self.value(*a));
            }
            Op::AddRow(a, r) => {
                g.add_view(*a, d.view());
                g.add(*r, d.sum_axis(Axis(0)).insert_axis(Axis(0)));
            }
            Op::MulRow(a, r) => {
                g.add(*a, d * self.value(*r));
                let p = d * self.value(*a);
                g.add(*r, p.sum_axis(Axis(0)).insert_axis(Axis(0)));
            }
            Op::AddCol(a, c) => {
                g.add_view(*a, d.view());
                g.add(*c, d.sum_axis(Axis(1)).insert_axis(Axis(1)));
            }
            Op::MulCol(a, c) => {
                g.add(*a, d * self.value(*c));
                let p = d * self.value(*a);
                g.add(*c, p.sum_axis(Axis(1)).insert_axis(Axis(1)));
            }
            Op::Scale(a, k) => {
                let k = *k;
                g.add(*a, d.mapv(|v| v * k));
            }
            Op::Offset(a) => g.add_view(*a, d.view()),
            Op::Tril(a, strict) => {
                let mut t = d.clone();
                tril_in_place(&mut t, *strict);
                g.add(*a, t);
            }
            Op::Map(a, f) => {
                let x = self.value(*a).as_standard_layout();
                let mut t = d.as_standard_layout().into_owned();
                let mut th = Array2::zeros(x.dim());
                f.scale_by_derivative(
                    x.as_slice().expect("standard layout"),
                    t.as_slice_mut().expect("standard layout"),
                    th.as_slice_mut().expect("fresh array"),
                );
                g.add(*a, t);
            }
            Op::RowSum(a) => {
                let n = self.dim(*a).1;
                let t = d.broadcast((d.nrows(), n)).expect("column").to_owned();
                g.add(*a, t);
            }
            Op::CumSum(c) => {
                // The adjoint of a running sum is the running sum from the end.
                let mut t = d.clone();
                let m = t.nrows();
                for i in (0..m.saturating_sub(1)).rev() {
                    let next = t[(i + 1, 0)];
                    t[(i, 0)] += next;
                }
                g.add(*c, t);
            }
            Op::Decay(c) => {
                let v = &node.value;
                let m = v.nrows();
                let mut t = Array2::zeros((m, 1));
                for r in 0..m {
                    for q in 0..=r {
                        let w = d[(r, q)] * v[(r, q)];
                        t[(r, 0)] += w;
                        t[(q, 0)] -= w;
                    }
                }
                g.add(*c, t);
            }
            Op::Softmax(a, mask) => {
                let y = &node.value;
                let n = y.ncols();
                let mut t = Array2::zeros(y.dim());
                for i in 0..y.nrows() {
                    let dot = (0..n).fold(S::zero(), |acc, j| acc + d[(i, j)] * y[(i, j)]);
                    for j in (0..n).filter(|&j| mask[i * n + j]) {
                        t[(i, j)] = y[(i, j)] * (d[(i, j)] - dot);
                    }
                }
                g.add(*a, t);
            }
            Op::SliceRows(a, start) => {
                let mut t = Array2::zeros(self.dim(*a));
                t.slice_mut(s![*start..*start + d.nrows(), ..]).assign(d);
                g.add(*a, t);
            }
            Op::SliceCols(a, start) => {
                let mut t = Array2::zeros(self.dim(*a));
                t.slice_mut(s![.., *start..*start + d.ncols()]).assign(d);
                g.add(*a, t);
            }
            Op::ConcatRows(parts) => {
                let mut at = 0;
                for p in parts {
                    let r = self.dim(*p).0;
                    g.add_view(*p, d.slice(s![at..at + r, ..]));
                    at += r;
                }
            }
            Op::ConcatCols(parts) => {
                let mut at = 0;
                for p in parts {
                    let c = self.dim(*p).1;
                    g.add_view(*p, d.slice(s![.., at..at + c]));
                    at += c;
                }
            }
            Op::GatherRows(a, index) => {
                let mut t = Array2::zeros(self.dim(*a));
                for (row, &src) in index.iter().enumerate() {
                    let mut dst = t.row_mut(src);
                    dst += &d.row(row);
                }
                g.add(*a, t);
            }
            Op::SolveUnitLower(a, y) => {
                // x = A⁻¹y: dy = A⁻ᵀ dx, dA = −dy xᵀ on the strict lower triangle.
                let am = self.value(*a);
                let dy = back_substitute_transposed(am.view(), d.view());
                let mut da = product(dy.view(), node.value.t());
                da.mapv_inplace(|v| -v);
                tril_in_place(&mut da, true);
                g.add(*a, da);
                g.add(*y, dy);
            }
            Op::Transpose(a) => g.add(*a, d.t().to_owned()),
            Op::DeltaChunk(ins, lk) => {
                let gr = super::delta::backward(&self.delta_in(*ins, *lk), &node.value, d.view());
                let [w0, q, k, v, theta] = *ins;
                g.add(w0, gr.w0);
                g.add(q, gr.q);
                g.add(k, gr.k);
                g.add(v, gr.v);
                g.add(theta, gr.theta);
                if let (Some(l), Some(dl)) = (lk, gr.log_keep) {
                    g.add(*l, dl);
                }
            }
            Op::MulScalar(a, k) => {
                let f = self.value(*k)[(0, 0)];
                g.add(*a, d.mapv(|v| v * f));
                let dk = (d * self.value(*a)).sum();
                g.add(*k, Array2::from_elem((1, 1), dk));
            }
        }
    }
}
