//! The object-safe face of every model, so that entries can be created by name and used
//! without knowing their concrete type.

use super::{Model, ModelMeta};
use crate::cell::{Cell, Diagnostic};
use crate::data::{Dataset, Inputs, OutputKind};
use crate::freeze::FreezeSpec;
use crate::metrics::Metrics;
use crate::train::{FitReport, Gradients, Progress, TrainConfig};
use crate::{Error, Result, Scalar, Tensors, persist};
use ndarray::{Array2, Array3, Axis, s};
use std::path::Path;

/// A model of any architecture: what the registry hands out and model files load into.
///
/// The streaming state is that of one sequence: [`DynModel::predict`] advances it, so a
/// stream can be fed in pieces and saved in the middle ([`DynModel::save`] stores it).
pub trait DynModel<S: Scalar>: Send + Sync {
    /// Entry name, hyper-parameters, input/output kinds and seed.
    fn meta(&self) -> &ModelMeta;

    /// Every parameter: the cell's tensors, then `head.w`, `head.b` and, for token inputs,
    /// `embed.table`.
    fn params(&self) -> &Tensors<S>;

    /// Replaces every parameter; the layout must match exactly (nothing changes otherwise).
    fn set_params(&mut self, params: &Tensors<S>) -> Result<()>;

    /// Per-entry frozen flags over [`DynModel::params`], or `None` when nothing is frozen.
    fn frozen(&self) -> Option<&[bool]>;

    /// Freezes the entries `spec` selects; returns how many were newly frozen.
    fn freeze(&mut self, spec: &FreezeSpec) -> Result<usize>;

    /// Unfreezes the entries `spec` selects; returns how many were newly unfrozen.
    fn unfreeze(&mut self, spec: &FreezeSpec) -> Result<usize>;

    /// The streaming state (one sequence; each tensor has a leading dimension of 1).
    fn state(&self) -> &Tensors<S>;

    /// Replaces the streaming state; the layout must match exactly, unless the cell's state
    /// grows with the stream and accepts this one ([`DynModel::accepts_state`]).
    fn set_state(&mut self, state: &Tensors<S>) -> Result<()>;

    /// Whether [`DynModel::set_state`] takes a state of `layout`: the model's own, or for a
    /// cell whose state grows with the stream, a grown one it accepts.
    fn accepts_state(&self, layout: &crate::Layout) -> bool;

    /// Puts the streaming state back to that of a freshly built model.
    fn reset_state(&mut self);

    /// Scalars per sequence the state actually holds now (the conformance suite compares
    /// this with the entry's declared formula; it differs only for a state that grows).
    fn state_size(&self) -> usize;

    /// Normalisation statistics (`x_mean`, `x_std`, `y_mean`, `y_std`).
    fn normalizer(&self) -> &Tensors<S>;

    /// Replaces the normalisation statistics; the layout must match exactly.
    fn set_normalizer(&mut self, norm: &Tensors<S>) -> Result<()>;

    /// Runs `inputs` step by step from the streaming state, advancing it, and returns one row
    /// per step: regression values in the data's units, or class logits.
    fn predict(&mut self, inputs: &Inputs<S>) -> Result<Array2<S>>;

    /// As [`DynModel::predict`], through the cell's chunked form with chunks of `chunk`
    /// steps.
    fn predict_chunked(&mut self, inputs: &Inputs<S>, chunk: usize) -> Result<Array2<S>>;

    /// Runs several sequences side by side, each from a fresh state, as one batch through the
    /// cell's windowed form; the streaming state is untouched. Row `t` of output `k` is the
    /// prediction for step `t` of `inputs[k]`.
    fn predict_batch(&self, inputs: &[Inputs<S>]) -> Result<Vec<Array2<S>>>;

    /// Runs several sequences side by side, each from a fresh state, one batched step at a
    /// time (the cell's step with `B` rows: matrix–matrix products per token); the streaming
    /// state is untouched. Outputs as [`DynModel::predict_batch`].
    fn stream_batch(&self, inputs: &[Inputs<S>]) -> Result<Vec<Array2<S>>>;

    /// Scores every sequence of `data` from a fresh state (the streaming state is untouched).
    fn evaluate(&self, data: &Dataset<S>) -> Result<Metrics>;

    /// Scores every sequence of `data` starting from the streaming state (each from its own
    /// copy; the streaming state is untouched): the score of a forecaster that has seen the
    /// past the state holds. A state that has grown past the cell's fixed layout (attention's
    /// cache) is refused.
    fn evaluate_warm(&self, data: &Dataset<S>) -> Result<Metrics>;

    /// Trains on `data`; `progress` is called after every epoch. The best weights by
    /// validation loss are kept and the streaming state is reset. Normalisation statistics
    /// are fitted on the first training only (while they are still the identity) and kept
    /// afterwards, so fine-tuning and frozen weights stay in the same units. On error the
    /// model is left exactly as it was.
    fn fit(
        &mut self,
        data: &Dataset<S>,
        cfg: &TrainConfig,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<FitReport>;

    /// The mean training loss over `data` as one batch, starting from `state0` (one row per
    /// sequence; a fresh state when `None`), in the units the model trains in (normalised
    /// targets for regression), with the cell's auxiliary loss ([`crate::Cell::aux_loss`])
    /// added as training adds it.
    fn loss(&self, data: &Dataset<S>, state0: Option<&Tensors<S>>) -> Result<f64>;

    /// [`DynModel::loss`] with its gradients by full backpropagation through time. From a
    /// fresh state (`state0` `None`) the parameter gradients include the path through that
    /// state, for a cell whose fresh state is made of parameters; from a given `state0` that
    /// state is an input, and its gradient is [`Gradients::state`].
    fn gradients(
        &self,
        data: &Dataset<S>,
        state0: Option<&Tensors<S>>,
    ) -> Result<(f64, Gradients<S>)>;

    /// A fresh state for `b` sequences (the layout [`DynModel::loss`] takes).
    fn batch_state(&self, b: usize) -> Tensors<S>;

    /// Named scalars about the memory now.
    fn diagnostics(&self) -> Vec<Diagnostic>;

    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn DynModel<S>>;

    /// Refuses (with [`Error::TooLarge`]) running `batch` sequences over windows of `steps`
    /// when the memory that needs is over the budget ([`crate::budget`]). The figure is
    /// what every windowed pass holds at least: per step and sequence, its input, output and
    /// state rows; a training tape keeps more, so this is a floor, checked before allocating.
    fn check_memory(&self, what: &str, batch: usize, steps: usize) -> Result<()> {
        let io = &self.meta().io;
        let per_step = (io.cell_input() as u128 + io.cell_output() as u128)
            .saturating_add(self.state_size() as u128);
        let bytes = crate::budget::bytes(&[batch, steps], S::BYTES).saturating_mul(per_step);
        crate::budget::check(
            &format!("{what} ({batch} sequence(s) × {steps} steps × {per_step} values)"),
            bytes,
        )
    }

    /// The model file's bytes (see [`crate::persist`]).
    fn to_bytes(&self) -> Result<Vec<u8>> {
        persist::to_bytes(self.meta(), self.params(), self.state(), self.normalizer())
    }

    /// Writes the model file atomically: weights, normalisation and streaming state.
    fn save(&self, path: &Path) -> Result<()> {
        persist::write_atomic(path, &self.to_bytes()?)
    }
}

impl<S: Scalar> Clone for Box<dyn DynModel<S>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    fn check_inputs(&self, inputs: &Inputs<S>) -> Result<()> {
        if inputs.is_empty() {
            return Err(Error::Data("the input sequence is empty".into()));
        }
        inputs.check(&self.meta.io.input)
    }

    /// Checks every sequence of a batch; returns the longest length and a zeroed output per
    /// sequence (one row per step).
    fn batch_outputs(&self, inputs: &[Inputs<S>]) -> Result<(usize, Vec<Array2<S>>)> {
        for x in inputs {
            self.check_inputs(x)?;
        }
        let output = self.cell.dims().output;
        let len = inputs.iter().map(|x| x.len()).max().unwrap_or(0);
        self.check_memory("a batch", inputs.len(), len)?;
        let outs = inputs
            .iter()
            .map(|x| Array2::zeros((x.len(), output)))
            .collect();
        Ok((len, outs))
    }

    /// Output rows of `inputs`' steps, in the data's units.
    fn finish_rows(&self, mut out: Array2<S>, inputs: &Inputs<S>) -> Array2<S> {
        if let OutputKind::Regression(_) = self.meta.io.output {
            for (t, mut row) in out.rows_mut().into_iter().enumerate() {
                self.denormalize(inputs, t, row.as_slice_mut().expect("row-major"));
            }
        }
        out
    }
}

/// Every sequence of `data`, whole and scored throughout.
fn whole_tracks<S: Scalar>(data: &Dataset<S>) -> Vec<crate::train::plan::Track> {
    data.sequences
        .iter()
        .enumerate()
        .map(|(seq, s)| crate::train::plan::Track {
            seq,
            start: 0,
            end: s.len(),
            score_from: 0,
        })
        .collect()
}

impl<S: Scalar, C: Cell<S>> DynModel<S> for Model<S, C> {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    fn params(&self) -> &Tensors<S> {
        &self.params
    }

    fn set_params(&mut self, params: &Tensors<S>) -> Result<()> {
        self.params.assign(params)
    }

    fn frozen(&self) -> Option<&[bool]> {
        self.frozen.as_deref()
    }

    fn freeze(&mut self, spec: &FreezeSpec) -> Result<usize> {
        self.set_frozen(spec, true)
    }

    fn unfreeze(&mut self, spec: &FreezeSpec) -> Result<usize> {
        self.set_frozen(spec, false)
    }

    fn state(&self) -> &Tensors<S> {
        &self.state
    }

    fn set_state(&mut self, state: &Tensors<S>) -> Result<()> {
        if state.layout() != self.state.layout() && self.cell.accepts_grown_state(state.layout()) {
            self.state = state.clone();
            return Ok(());
        }
        self.state.assign(state)
    }

    fn accepts_state(&self, layout: &crate::Layout) -> bool {
        layout == self.state.layout() || self.cell.accepts_grown_state(layout)
    }

    fn reset_state(&mut self) {
        self.cell.reset_state(&self.params, &mut self.state);
    }

    fn state_size(&self) -> usize {
        // The streaming state holds one sequence.
        self.state.data().len()
    }

    fn normalizer(&self) -> &Tensors<S> {
        &self.norm
    }

    fn set_normalizer(&mut self, norm: &Tensors<S>) -> Result<()> {
        self.norm.assign(norm)
    }

    fn predict(&mut self, inputs: &Inputs<S>) -> Result<Array2<S>> {
        self.check_inputs(inputs)?;
        let d = self.cell.dims();
        let steps = inputs.len();
        // Steps go through the cell one at a time, but the embedding and the head work on a
        // chunk of rows at once: per row they compute exactly what one row alone gives (the
        // kernels' rows are independent), and each loaded weight serves the whole chunk. A
        // cell without state has nothing to carry from step to step, so it takes the chunk as
        // one batch of rows.
        const CHUNK: usize = 256;
        let rows = CHUNK.min(steps);
        let mut x = Array2::zeros((rows, d.input));
        let mut yc = Array2::zeros((rows, d.output));
        let mut out = Array2::zeros((steps, d.output));
        let mut scratch = std::mem::take(&mut self.scratch);
        let stateless = self.cell.state_layout().total() == 0;
        for t0 in (0..steps).step_by(CHUNK) {
            let n = CHUNK.min(steps - t0);
            self.gather_inputs(
                (t0..t0 + n).map(|t| Some((inputs, t))),
                &mut x.as_slice_mut().expect("row-major")[..n * d.input],
            );
            if stateless {
                let mut none = self.fresh_state(n);
                self.cell.step(
                    &self.params,
                    &mut none,
                    x.slice(s![..n, ..]),
                    yc.slice_mut(s![..n, ..]),
                    &mut scratch,
                );
            } else {
                for k in 0..n {
                    self.cell.step(
                        &self.params,
                        &mut self.state,
                        x.slice(s![k..k + 1, ..]),
                        yc.slice_mut(s![k..k + 1, ..]),
                        &mut scratch,
                    );
                }
            }
            self.head_forward(yc.slice(s![..n, ..]), out.slice_mut(s![t0..t0 + n, ..]));
            self.skip_forward(x.slice(s![..n, ..]), out.slice_mut(s![t0..t0 + n, ..]));
        }
        self.scratch = scratch;
        Ok(self.finish_rows(out, inputs))
    }

    fn predict_chunked(&mut self, inputs: &Inputs<S>, chunk: usize) -> Result<Array2<S>> {
        self.check_inputs(inputs)?;
        if chunk == 0 {
            return Err(Error::invalid_param("chunk", 0, "must be at least 1"));
        }
        let d = self.cell.dims();
        let steps = inputs.len();
        let mut xs = Array3::zeros((steps, 1, d.input));
        self.fill_inputs(inputs, 0, 0, &mut xs.view_mut());
        let mut ys = Array3::zeros((steps, 1, d.output));
        let mut scratch = std::mem::take(&mut self.scratch);
        self.cell.forward_chunked(
            &self.params,
            &mut self.state,
            xs.view(),
            ys.view_mut(),
            chunk,
            &mut scratch,
        );
        self.scratch = scratch;
        let yc = ys.index_axis(Axis(1), 0).to_owned();
        let mut out = Array2::zeros((steps, d.output));
        self.head_forward(yc.view(), out.view_mut());
        self.skip_forward(xs.index_axis(Axis(1), 0), out.view_mut());
        Ok(self.finish_rows(out, inputs))
    }

    fn predict_batch(&self, inputs: &[Inputs<S>]) -> Result<Vec<Array2<S>>> {
        let (len, mut outs) = self.batch_outputs(inputs)?;
        let d = self.cell.dims();
        let b = inputs.len();
        let chunk = super::eval_window(b);
        let mut state = self.fresh_state(b);
        let mut off = 0;
        while off < len {
            let steps = chunk.min(len - off);
            let mut xs = Array3::zeros((steps, b, d.input));
            for (j, x) in inputs.iter().enumerate() {
                self.fill_inputs(x, off, j, &mut xs.view_mut());
            }
            let mut yc = Array3::zeros((steps, b, d.output));
            self.cell
                .forward_window(&self.params, &mut state, xs.view(), yc.view_mut(), None);
            let yc2 = yc
                .into_shape_with_order((steps * b, d.output))
                .expect("contiguous");
            let mut y = Array2::zeros((steps * b, d.output));
            self.head_forward(yc2.view(), y.view_mut());
            let xs2 = xs
                .into_shape_with_order((steps * b, d.input))
                .expect("contiguous");
            self.skip_forward(xs2.view(), y.view_mut());
            for (j, out) in outs.iter_mut().enumerate() {
                for k in 0..steps.min(out.nrows().saturating_sub(off)) {
                    out.row_mut(off + k).assign(&y.row(k * b + j));
                }
            }
            off += steps;
        }
        Ok(outs
            .into_iter()
            .zip(inputs)
            .map(|(o, x)| self.finish_rows(o, x))
            .collect())
    }

    fn stream_batch(&self, inputs: &[Inputs<S>]) -> Result<Vec<Array2<S>>> {
        let (len, mut outs) = self.batch_outputs(inputs)?;
        let d = self.cell.dims();
        let b = inputs.len();
        let mut state = self.fresh_state(b);
        let mut scratch = C::Scratch::default();
        let (mut xs, mut yc, mut y) = (
            Array2::zeros((b, d.input)),
            Array2::zeros((b, d.output)),
            Array2::zeros((b, d.output)),
        );
        for t in 0..len {
            for (j, x) in inputs.iter().enumerate() {
                if t < x.len() {
                    self.input_row(x, t, xs.row_mut(j));
                } else {
                    xs.row_mut(j).fill(S::zero());
                }
            }
            self.cell.step(
                &self.params,
                &mut state,
                xs.view(),
                yc.view_mut(),
                &mut scratch,
            );
            self.head_forward(yc.view(), y.view_mut());
            self.skip_forward(xs.view(), y.view_mut());
            for (j, out) in outs.iter_mut().enumerate() {
                if t < out.nrows() {
                    out.row_mut(t).assign(&y.row(j));
                }
            }
        }
        Ok(outs
            .into_iter()
            .zip(inputs)
            .map(|(o, x)| self.finish_rows(o, x))
            .collect())
    }

    fn evaluate_warm(&self, data: &Dataset<S>) -> Result<Metrics> {
        self.check_data(data)?;
        let fixed = self.cell.state_layout().batched(1);
        if self.state.layout() != &fixed {
            return Err(Error::Data(
                "warm scoring needs a state of the cell's fixed size; this one has grown with \
                 the stream"
                    .into(),
            ));
        }
        Ok(self
            .score_tracks_from(data, &whole_tracks(data), Some(&self.state))
            .1)
    }

    fn evaluate(&self, data: &Dataset<S>) -> Result<Metrics> {
        self.check_data(data)?;
        Ok(self.score_tracks(data, &whole_tracks(data)).1)
    }

    fn fit(
        &mut self,
        data: &Dataset<S>,
        cfg: &TrainConfig,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<FitReport> {
        let longest = data.sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let window = if cfg.window == 0 {
            longest
        } else {
            cfg.window.min(longest)
        };
        self.check_memory("training windows", cfg.batch_size, window)?;
        let (params, norm) = (self.params.clone(), self.norm.clone());
        let result = self.fit_impl(data, cfg, progress);
        if result.is_err() {
            // A failed run leaves the model as it was.
            self.params = params;
            self.norm = norm;
        }
        result
    }

    fn loss(&self, data: &Dataset<S>, state0: Option<&Tensors<S>>) -> Result<f64> {
        Ok(self.loss_and_gradients(data, state0, false)?.0)
    }

    fn gradients(
        &self,
        data: &Dataset<S>,
        state0: Option<&Tensors<S>>,
    ) -> Result<(f64, Gradients<S>)> {
        let (l, g) = self.loss_and_gradients(data, state0, true)?;
        Ok((l, g.expect("backward requested")))
    }

    fn batch_state(&self, b: usize) -> Tensors<S> {
        self.fresh_state(b)
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        self.cell.diagnostics(&self.params, &self.state)
    }

    fn clone_box(&self) -> Box<dyn DynModel<S>> {
        Box::new(self.clone())
    }
}
