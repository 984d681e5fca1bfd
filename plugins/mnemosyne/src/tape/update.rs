//! A fast layer's weights at the end of a segment as one primitive:
//!
//! ```text
//! W_end = a·W + b·M − Xᵀ diag(c) G
//! ```
//!
//! the start weights scaled by the segment's decay `a`, the momentum carried in scaled by
//! `b`, and the segment's write (keys or hidden inputs `X`, the inner gradients `G`, each
//! token's total coefficient `c`). Composed from elementary operations this is six values
//! the size of the weights per segment and layer; fused, it is one, and its backward
//! accumulates straight into the operands' gradients.

use super::backward::Grads;
use super::{Op, Tape, Var};
use mnnn_core::{Scalar, kernels};
use ndarray::{Array2, Array3, ArrayView2, Axis, Zip};

/// The operands of [`Tape::fast_update`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Update {
    pub w: Var,
    /// `1 × 1`, or 1 when absent.
    pub a: Option<Var>,
    /// The momentum and its `1 × 1` factor.
    pub m: Option<(Var, Var)>,
    /// `n × dk`.
    pub x: Var,
    /// `n × 1`.
    pub c: Var,
    /// `n × dv`.
    pub g: Var,
}

fn scalar<S: Scalar>(t: &Tape<S>, v: Option<Var>, i: usize) -> S {
    v.map_or(S::one(), |v| t.group(v, i)[(0, 0)])
}

/// `diag(c) G` of group `i`.
fn scaled_rows<S: Scalar>(t: &Tape<S>, u: &Update, i: usize) -> Array2<S> {
    let mut cg = t.group(u.g, i).to_owned();
    let c = t.group(u.c, i);
    for (mut row, &ci) in cg.outer_iter_mut().zip(c.column(0)) {
        row.mapv_inplace(|v| v * ci);
    }
    cg
}

fn dot<S: Scalar>(a: ArrayView2<S>, b: ArrayView2<S>) -> S {
    Zip::from(a)
        .and(b)
        .fold(S::zero(), |acc, &x, &y| acc + x * y)
}

impl<S: Scalar> Tape<S> {
    /// `a·W + b·M − Xᵀ diag(c) G`, group by group (see the module docs).
    pub(crate) fn fast_update(&mut self, u: Update) -> Var {
        let groups = [Some(u.w), u.a, u.m.map(|m| m.0), u.m.map(|m| m.1)]
            .into_iter()
            .flatten()
            .chain([u.x, u.c, u.g])
            .fold(1, |g, v| super::joint(g, self.groups(v)));
        let (dk, dv) = self.dim(u.w);
        let mut out = Array3::zeros((groups, dk, dv));
        for (i, mut o) in out.outer_iter_mut().enumerate() {
            let cg = scaled_rows(self, &u, i);
            let x = self.group(u.x, i);
            kernels::gemm(-S::one(), x.t(), cg.view(), S::zero(), o.view_mut());
            let a = scalar(self, u.a, i);
            Zip::from(&mut o)
                .and(self.group(u.w, i))
                .for_each(|o, &w| *o += a * w);
            if let Some((m, b)) = u.m {
                let b = self.group(b, i)[(0, 0)];
                Zip::from(&mut o)
                    .and(self.group(m, i))
                    .for_each(|o, &mv| *o += b * mv);
            }
        }
        self.push(out, Op::FastUpdate(u))
    }

    /// The VJP of [`Tape::fast_update`] for the output's cotangent `d`.
    pub(crate) fn fast_update_vjp(&self, u: &Update, d: &Array3<S>, g: &mut Grads<S>) {
        let one = S::one();
        for (i, di) in d.outer_iter().enumerate() {
            let a = scalar(self, u.a, i);
            let w = self.group(u.w, i);
            if let Some(av) = u.a {
                self.acc_group(g, av, i, dot_cell(dot(w, di)).view());
            }
            self.acc_scaled(g, u.w, i, a, di);
            if let Some((m, b)) = u.m {
                let bs = self.group(b, i)[(0, 0)];
                let mv = self.group(m, i);
                self.acc_group(g, b, i, dot_cell(dot(mv, di)).view());
                self.acc_scaled(g, m, i, bs, di);
            }
            let cg = scaled_rows(self, u, i);
            let x = self.group(u.x, i);
            // dX = −diag(c) G dᵀ.
            kernels::gemm(-one, cg.view(), di.t(), one, self.slot_group(g, u.x, i));
            // P = X d: dG = −diag(c) P, dc_t = −⟨P_t, G_t⟩.
            let mut p = Array2::zeros(self.dim(u.g));
            kernels::gemm(one, x, di, S::zero(), p.view_mut());
            let (c, gm) = (self.group(u.c, i), self.group(u.g, i));
            let dc: Array2<S> = Array2::from_shape_fn(c.raw_dim(), |(t, _)| {
                -dot(
                    p.row(t).insert_axis(Axis(0)),
                    gm.row(t).insert_axis(Axis(0)),
                )
            });
            for (mut row, &ci) in p.outer_iter_mut().zip(c.column(0)) {
                row.mapv_inplace(|v| -v * ci);
            }
            self.acc_group(g, u.g, i, p.view());
            self.acc_group(g, u.c, i, dc.view());
        }
    }
}

/// A `1 × 1` matrix.
fn dot_cell<S: Scalar>(v: S) -> Array2<S> {
    Array2::from_elem((1, 1), v)
}
