//! The wrapper's own maps around the cell: input normalisation or embedding, the affine head,
//! and the way back to the data's units.

use super::{Model, X_MEAN, X_STD, Y_MEAN, Y_STD};
use crate::cell::Cell;
use crate::data::{Inputs, Targets};
use crate::ops::{embed, linear};
use crate::{Scalar, Tensors};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis};

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    /// Writes step `t` of `inputs` as the cell reads it (normalised, or embedded) into `out`.
    pub(crate) fn input_row(&self, inputs: &Inputs<S>, t: usize, mut out: ArrayViewMut1<S>) {
        match inputs {
            Inputs::Real(a) => {
                let (m, s) = (self.norm.slice(X_MEAN), self.norm.slice(X_STD));
                for (j, o) in out.iter_mut().enumerate() {
                    *o = (a[[t, j]] - m[j]) / s[j];
                }
            }
            Inputs::Tokens(tok) => {
                let e = self.idx.embed.expect("token model has an embedding");
                let table = self.params.mat(e);
                out.assign(&table.row(tok[t] as usize));
            }
        }
    }

    /// Fills `xs[(t − t0), b, :]` for `t` in `t0..t0 + T` from `inputs`, and zeros past its end.
    pub(crate) fn fill_inputs(
        &self,
        inputs: &Inputs<S>,
        t0: usize,
        b: usize,
        xs: &mut ArrayViewMut3<S>,
    ) {
        let steps = xs.shape()[0];
        for k in 0..steps {
            let t = t0 + k;
            let row = xs.slice_mut(ndarray::s![k, b, ..]);
            if t < inputs.len() {
                self.input_row(inputs, t, row);
            } else {
                let mut row = row;
                row.fill(S::zero());
            }
        }
    }

    /// The head, `y = yc · W + b`, over rows (a window, a batch or one streaming step).
    pub(crate) fn head_forward(&self, yc: ArrayView2<S>, y: ArrayViewMut2<S>) {
        let (w, b) = (
            self.params.mat(self.idx.head_w),
            self.params.vec(self.idx.head_b),
        );
        linear::forward(yc, w, Some(b), y);
    }

    /// VJP of the head: adds its parameter gradients to `grads` and writes `dyc`. The weight
    /// gradient is accumulated straight into `grads` (no `out × out` temporary per window).
    pub(crate) fn head_backward(
        &self,
        yc: ArrayView2<S>,
        dy: ArrayView2<S>,
        grads: &mut Tensors<S>,
        dyc: ArrayViewMut2<S>,
    ) {
        let (iw, ib) = (self.idx.head_w, self.idx.head_b);
        general_mat_mul(S::one(), &yc.t(), &dy, S::one(), &mut grads.mat_mut(iw));
        grads
            .vec_mut(ib)
            .scaled_add(S::one(), &dy.sum_axis(Axis(0)));
        let mut dyc = dyc;
        general_mat_mul(S::one(), &dy, &self.params.mat(iw).t(), S::zero(), &mut dyc);
    }

    /// Writes the cell's input for each of `steps` (a sequence's inputs and a step, or `None`
    /// for a step that must read zeros) into consecutive rows of `out`: one batched gather from
    /// the embedding table for tokens, the normalised rows for real-valued data.
    pub(crate) fn gather_inputs<'a>(
        &self,
        steps: impl ExactSizeIterator<Item = Option<(&'a Inputs<S>, usize)>>,
        out: &mut [S],
    ) where
        S: 'a,
    {
        let width = self.cell.dims().input;
        match self.idx.embed {
            Some(e) => {
                let ids = steps.map(|st| {
                    st.map(|(inputs, t)| match inputs {
                        Inputs::Tokens(tok) => tok[t] as usize,
                        Inputs::Real(_) => unreachable!("the data was checked against the model"),
                    })
                });
                embed::gather_rows(self.params.slice(e), width, ids, out);
            }
            None => {
                for (row, st) in out.chunks_exact_mut(width).zip(steps) {
                    match st {
                        Some((inputs, t)) => {
                            self.input_row(inputs, t, ArrayViewMut1::from(row));
                        }
                        None => row.fill(S::zero()),
                    }
                }
            }
        }
    }

    /// The level output `c` is a change from at step `t` (the raw input column
    /// [`crate::ModelMeta::difference`] names), or zero when outputs are levels.
    pub(crate) fn level(&self, inputs: &Inputs<S>, t: usize, c: usize) -> S {
        match (self.meta.difference.get(c), inputs) {
            (Some(&j), Inputs::Real(a)) => a[[t, j]],
            _ => S::zero(),
        }
    }

    /// Writes step `t`'s regression target as the model learns it into `out`: normalised,
    /// and a change from the current level when the model learns changes.
    pub(crate) fn target_row(
        &self,
        inputs: &Inputs<S>,
        targets: &Targets<S>,
        t: usize,
        out: &mut [S],
    ) {
        if let Targets::Real(a) = targets {
            let (m, s) = (self.norm.slice(Y_MEAN), self.norm.slice(Y_STD));
            for (j, o) in out.iter_mut().enumerate() {
                *o = (a[[t, j]] - self.level(inputs, t, j) - m[j]) / s[j];
            }
        }
    }

    /// Maps step `t`'s regression output row from the units the model learns in back to
    /// the data's (levels), in place.
    pub(crate) fn denormalize(&self, inputs: &Inputs<S>, t: usize, row: &mut [S]) {
        let (m, s) = (self.norm.slice(Y_MEAN), self.norm.slice(Y_STD));
        for (j, v) in row.iter_mut().enumerate() {
            if j < m.len() {
                *v = *v * s[j] + m[j] + self.level(inputs, t, j);
            }
        }
    }

    /// Adds the skip's share, `x · S`, to head outputs `y` of the (normalised) cell inputs
    /// `x`, row for row; nothing without a skip.
    pub(crate) fn skip_forward(&self, x: ArrayView2<S>, mut y: ArrayViewMut2<S>) {
        if let Some(k) = self.idx.skip {
            general_mat_mul(S::one(), &x, &self.params.mat(k), S::one(), &mut y);
        }
    }

    /// VJP of the skip: adds `xᵀ · dy` to its weight gradient and, when given, `dy · Sᵀ` to
    /// `dx`.
    pub(crate) fn skip_backward(
        &self,
        x: ArrayView2<S>,
        dy: ArrayView2<S>,
        grads: &mut Tensors<S>,
        dx: Option<ArrayViewMut2<S>>,
    ) {
        if let Some(k) = self.idx.skip {
            general_mat_mul(S::one(), &x.t(), &dy, S::one(), &mut grads.mat_mut(k));
            if let Some(mut dx) = dx {
                general_mat_mul(S::one(), &dy, &self.params.mat(k).t(), S::one(), &mut dx);
            }
        }
    }
}
