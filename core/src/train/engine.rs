//! Truncated backpropagation through time over any cell, batched: the sequences of a batch go
//! through the cell together, one window at a time.

use super::loss;
use super::plan::Track;
use super::report::Gradients;
use crate::buf;
use crate::cell::Cell;
use crate::data::{Dataset, Inputs, OutputKind, Targets};
use crate::metrics::{self, Metrics};
use crate::model::{Model, X_MEAN, X_STD, Y_MEAN, Y_STD};
use crate::ops::embed;
use crate::{Error, Result, Scalar, Tensors};
use ndarray::{ArrayView3, ArrayViewMut3, Axis};

/// Buffers for one window of `T` steps over `B` tracks, allocated once per fit (or scoring
/// pass) and reused by every window: they only grow, so after the first window none of them
/// allocates again.
#[derive(Default)]
pub(super) struct Window<S> {
    steps: usize,
    b: usize,
    /// Whether the cell ran on the scored rows only (see [`Model::scored_rows_only`]).
    scored_only: bool,
    /// Cell inputs: `T × B × input`, or `1 × R × input` for the scored rows only.
    xs: Vec<S>,
    /// Cell outputs, shaped as `xs`.
    yc: Vec<S>,
    /// The rows the loss counts, as `t·B + b` in the `T × B` layout, ascending.
    rows: Vec<usize>,
    /// Cell outputs of the counted rows (`R × out`), the head's input.
    hc: Vec<S>,
    /// Cell inputs of the counted rows (`R × input`), the skip's input (with a skip only).
    xh: Vec<S>,
    /// Head outputs of the counted rows (`R × out`).
    y: Vec<S>,
    /// ∂L/∂y of the counted rows.
    dy: Vec<S>,
    /// ∂L/∂hc of the counted rows.
    dhc: Vec<S>,
    /// ∂L/∂yc for every row (zero where nothing is counted), when the cell ran every row.
    dyc: Vec<S>,
    /// ∂L/∂xs, shaped as `xs`.
    dxs: Vec<S>,
    /// Normalised regression targets of the counted rows (`R × out`).
    targets: Vec<S>,
    /// Class targets of the counted rows.
    classes: Vec<u32>,
    /// `R` flags, all set: the loss functions' mask over the compacted rows.
    counts: Vec<bool>,
    /// Rows of `dxs` in the order their embedding gradients are added.
    order: Vec<usize>,
    /// The weight of each row the cell ran in the cell's auxiliary loss (see
    /// [`Cell::aux_loss`]).
    aux_weights: Vec<S>,
}

/// Which window of which tracks: steps `off..` (relative to each track's start).
#[derive(Clone, Copy)]
pub(super) struct At<'a, S> {
    pub(super) data: &'a Dataset<S>,
    pub(super) tracks: &'a [Track],
    pub(super) off: usize,
}

impl<S> At<'_, S> {
    /// The sequence index and step of row `r = k·B + j` of a window of `B` tracks, when that
    /// step lies inside its track.
    fn step(&self, r: usize) -> Option<(usize, usize)> {
        let b = self.tracks.len();
        let tr = &self.tracks[r % b];
        let t = tr.start + self.off + r / b;
        (t < tr.end).then_some((tr.seq, t))
    }
}

/// What one window's loss came to.
#[derive(Default, Clone, Copy)]
pub(super) struct WindowLoss {
    pub(super) sum: f64,
    pub(super) values: usize,
    pub(super) rows: usize,
    pub(super) correct: usize,
}

/// Row `j` of a state batched over `b` sequences, tensor by tensor.
pub(super) fn state_row<S: Scalar>(state: &Tensors<S>, b: usize, j: usize) -> Vec<S> {
    let mut out = Vec::new();
    for i in 0..state.layout().len() {
        let t = state.slice(i);
        let n = t.len() / b;
        out.extend_from_slice(&t[j * n..(j + 1) * n]);
    }
    out
}

/// Writes `row` (as [`state_row`] reads it) into row `j`, or zeros when `row` is `None`.
pub(super) fn set_state_row<S: Scalar>(
    state: &mut Tensors<S>,
    b: usize,
    j: usize,
    row: Option<&[S]>,
) {
    let mut at = 0;
    for i in 0..state.layout().len() {
        let t = state.slice_mut(i);
        let n = t.len() / b;
        let dst = &mut t[j * n..(j + 1) * n];
        match row {
            Some(r) => dst.copy_from_slice(&r[at..at + n]),
            None => dst.fill(S::zero()),
        }
        at += n;
    }
}

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    /// Whether windows may run the cell on the rows the loss counts and skip the rest. A cell
    /// with no state computes each step's output from that step's input alone (its window
    /// must equal its step loop, and nothing carries from one step to the next), and a row
    /// the loss does not count gets a zero gradient; so the outputs and gradients that matter
    /// are the same, and the work shrinks to the scored rows (a sixteenth of them on MQAR).
    fn scored_rows_only(&self) -> bool {
        self.cell.state_layout().total() == 0
    }

    /// Runs steps `off..off + T` (relative to each track's start) of `tracks` forward from
    /// `state`, then the head and the loss over the counted rows only; when `tape` records the
    /// window, `w.dy` receives ∂(mean loss)/∂y of those rows. With `all_rows` the cell runs every row even when
    /// [`Model::scored_rows_only`] would allow less (to get every input's gradient).
    pub(super) fn forward_window(
        &self,
        at: At<'_, S>,
        steps: usize,
        state: &mut Tensors<S>,
        w: &mut Window<S>,
        mut tape: Option<&mut C::Tape>,
        all_rows: bool,
    ) -> WindowLoss {
        let At { data, tracks, .. } = at;
        let b = tracks.len();
        let d = self.cell.dims();
        let o = d.output;
        // Only a recorded window is differentiated; scoring needs the loss alone.
        let want_grad = tape.is_some();
        w.steps = steps;
        w.b = b;
        w.scored_only = !all_rows && self.scored_rows_only();
        w.rows.clear();
        w.classes.clear();
        w.targets.clear();
        for r in 0..steps * b {
            let Some((seq, t)) = at.step(r) else {
                continue;
            };
            let s = &data.sequences[seq];
            if t < tracks[r % b].score_from || !s.counts(t) {
                continue;
            }
            w.rows.push(r);
            match &s.targets {
                Targets::Real(_) => {
                    let n = w.targets.len();
                    w.targets.resize(n + o, S::zero());
                    self.target_row(&s.inputs, &s.targets, t, &mut w.targets[n..]);
                }
                Targets::Classes(c) => w.classes.push(c[t]),
            }
        }
        let rows = w.rows.len();
        let input = |r: usize| at.step(r).map(|(seq, t)| (&data.sequences[seq].inputs, t));
        buf::zeroed(&mut w.hc, rows * o);
        if w.scored_only {
            if rows > 0 {
                buf::zeroed(&mut w.xs, rows * d.input);
                self.gather_inputs(w.rows.iter().map(|&r| input(r)), &mut w.xs);
                let mut none = self.fresh_state(rows);
                let xs = ArrayView3::from_shape((1, rows, d.input), &w.xs[..]).expect("sized");
                let yc = ArrayViewMut3::from_shape((1, rows, o), &mut w.hc[..]).expect("sized");
                self.cell
                    .forward_window(&self.params, &mut none, xs, yc, tape.as_deref_mut());
            }
        } else {
            buf::zeroed(&mut w.xs, steps * b * d.input);
            buf::zeroed(&mut w.yc, steps * b * o);
            self.gather_inputs((0..steps * b).map(input), &mut w.xs);
            let xs = ArrayView3::from_shape((steps, b, d.input), &w.xs[..]).expect("sized");
            let yc = ArrayViewMut3::from_shape((steps, b, o), &mut w.yc[..]).expect("sized");
            self.cell
                .forward_window(&self.params, state, xs, yc, tape.as_deref_mut());
            for (dst, &r) in w.hc.chunks_exact_mut(o).zip(&w.rows) {
                dst.copy_from_slice(&w.yc[r * o..(r + 1) * o]);
            }
        }
        buf::zeroed(&mut w.y, rows * o);
        buf::zeroed(&mut w.dy, rows * o);
        w.counts.clear();
        w.counts.resize(rows, true);
        if rows == 0 {
            return WindowLoss::default();
        }
        // Row by row, the head computes exactly what it computes over the whole window (the
        // kernel's rows are independent), so skipping the rows nothing reads changes no value.
        self.head_forward(buf::mat(&w.hc, rows, o), buf::mat_mut(&mut w.y, rows, o));
        if self.idx.skip.is_some() {
            let input = d.input;
            w.xh.clear();
            if w.scored_only {
                w.xh.extend_from_slice(&w.xs[..rows * input]);
            } else {
                for &r in &w.rows {
                    w.xh.extend_from_slice(&w.xs[r * input..(r + 1) * input]);
                }
            }
            self.skip_forward(
                buf::mat(&w.xh, rows, input),
                buf::mat_mut(&mut w.y, rows, o),
            );
        }
        let mut loss = match self.meta.io.output {
            OutputKind::Regression(_) => {
                let scale = S::from_f64(1.0 / (rows * o) as f64);
                let (sum, values) = loss::mse(&w.y, &w.targets, &w.counts, o, scale, &mut w.dy);
                WindowLoss {
                    sum,
                    values,
                    rows,
                    correct: 0,
                }
            }
            OutputKind::Classes(_) => {
                let scale = S::from_f64(1.0 / rows as f64);
                let (sum, n, correct) = if want_grad {
                    loss::cross_entropy(&w.y, &w.classes, &w.counts, o, scale, &mut w.dy)
                } else {
                    loss::cross_entropy_loss(&w.y, &w.classes, &w.counts, o)
                };
                WindowLoss {
                    sum,
                    values: n,
                    rows,
                    correct,
                }
            }
        };
        if let Some(tape) = tape {
            // The cell's auxiliary loss, a mean over the real rows it ran, joins the window's
            // mean loss (the sum is divided by `values` downstream).
            w.aux_weights.clear();
            if w.scored_only {
                let wt = S::from_f64(1.0 / rows as f64);
                w.aux_weights.resize(rows, wt);
            } else {
                let real = (0..steps * b).filter(|&r| at.step(r).is_some()).count();
                let wt = S::from_f64(1.0 / real.max(1) as f64);
                w.aux_weights.extend(
                    (0..steps * b).map(|r| if at.step(r).is_some() { wt } else { S::zero() }),
                );
            }
            let aux = self.cell.aux_loss(&self.params, tape, &w.aux_weights);
            loss.sum += aux * loss.values as f64;
        }
        loss
    }

    /// Backward through head, cell and embedding for the window `forward_window` just ran.
    /// `dstate` carries ∂L/∂state after the window in and before it out; `w.dxs` receives
    /// ∂L/∂xs when `want_dx` (shaped as `w.xs`).
    pub(super) fn backward_window(
        &self,
        at: At<'_, S>,
        w: &mut Window<S>,
        tape: &C::Tape,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        want_dx: bool,
    ) {
        let At { data, .. } = at;
        let (steps, b, rows) = (w.steps, w.b, w.rows.len());
        let d = self.cell.dims();
        buf::zeroed(&mut w.dhc, rows * d.output);
        if rows > 0 {
            self.head_backward(
                buf::mat(&w.hc, rows, d.output),
                buf::mat(&w.dy, rows, d.output),
                grads,
                buf::mat_mut(&mut w.dhc, rows, d.output),
            );
        }
        let need_dx = want_dx || self.idx.embed.is_some();
        // A cell that ran every row takes ∂L/∂yc for every row: zero but on the counted ones.
        let (n, dys) = if w.scored_only {
            if rows == 0 {
                return;
            }
            let dys = ArrayView3::from_shape((1, rows, d.output), &w.dhc[..]).expect("sized");
            (rows, dys)
        } else {
            buf::zeroed(&mut w.dyc, steps * b * d.output);
            for (src, &r) in w.dhc.chunks_exact(d.output).zip(&w.rows) {
                w.dyc[r * d.output..(r + 1) * d.output].copy_from_slice(src);
            }
            let dys = ArrayView3::from_shape((steps, b, d.output), &w.dyc[..]).expect("sized");
            (steps * b, dys)
        };
        buf::zeroed(&mut w.dxs, if need_dx { n * d.input } else { 0 });
        let shape = if w.scored_only {
            (1, rows, d.input)
        } else {
            (steps, b, d.input)
        };
        let dxs = need_dx.then(|| ArrayViewMut3::from_shape(shape, &mut w.dxs[..]).expect("sized"));
        self.cell
            .backward_window(&self.params, tape, dys, dstate, grads, dxs);
        if rows > 0 {
            self.wrapper_backward(w, grads, want_dx);
        }
        if let Some(e) = self.idx.embed {
            // Track-major order (by track, then step): the order the rows of one token were
            // summed in by the per-track loop this replaces, so the sums round the same way.
            w.order.clear();
            if w.scored_only {
                for j in 0..b {
                    w.order.extend((0..rows).filter(|&i| w.rows[i] % b == j));
                }
            } else {
                w.order
                    .extend((0..b).flat_map(|j| (0..steps).map(move |k| k * b + j)));
            }
            let row_of = |i: usize| if w.scored_only { w.rows[i] } else { i };
            let pairs = w.order.iter().filter_map(|&i| {
                let (seq, t) = at.step(row_of(i))?;
                match &data.sequences[seq].inputs {
                    Inputs::Tokens(tok) => Some((i, tok[t] as usize)),
                    Inputs::Real(_) => None,
                }
            });
            embed::scatter_add_rows(grads.slice_mut(e), d.input, &w.dxs, pairs);
        }
    }

    /// Backward through what the wrapper adds around the cell and head, for the counted
    /// rows: the skip's weight gradient and, when `want_dx`, the input gradient of the skip
    /// and of the level a change is taken from (it moves the target the loss compares with).
    fn wrapper_backward(&self, w: &mut Window<S>, grads: &mut Tensors<S>, want_dx: bool) {
        let (input, o, rows) = (
            self.cell.dims().input,
            self.cell.dims().output,
            w.rows.len(),
        );
        if self.idx.skip.is_some() {
            self.skip_backward(
                buf::mat(&w.xh, rows, input),
                buf::mat(&w.dy, rows, o),
                grads,
                None,
            );
        }
        if !want_dx || (self.idx.skip.is_none() && self.meta.difference.is_empty()) {
            return;
        }
        let mut dx = vec![S::zero(); rows * input];
        self.skip_backward(
            buf::mat(&w.xh, rows, input),
            buf::mat(&w.dy, rows, o),
            &mut Tensors::zeros_like(grads),
            Some(buf::mat_mut(&mut dx, rows, input)),
        );
        // The target is (y − x_j − mean) / sd_y, so ∂L/∂x_j gains dy / sd_y in the data's
        // units; `dxs` holds normalised-input units, hence the factor sd_x.
        let (sy, sx) = (self.norm.slice(Y_STD), self.norm.slice(X_STD));
        for (i, dyr) in w.dy.chunks_exact(o).enumerate() {
            for (c, &j) in self.meta.difference.iter().enumerate() {
                dx[i * input + j] += dyr[c] / sy[c] * sx[j];
            }
        }
        for (i, &r) in w.rows.iter().enumerate() {
            let at_row = if w.scored_only { i } else { r };
            let dst = &mut w.dxs[at_row * input..(at_row + 1) * input];
            for (v, g) in dst.iter_mut().zip(&dx[i * input..(i + 1) * input]) {
                *v += *g;
            }
        }
    }

    /// Refuses data that does not fit the model (kinds, widths, vocabulary, classes) or is
    /// itself inconsistent.
    pub(crate) fn check_data(&self, data: &Dataset<S>) -> Result<()> {
        data.validate()?;
        if data.io.input != self.meta.io.input || data.io.output != self.meta.io.output {
            return Err(Error::Data(format!(
                "the data is {:?} → {:?} but the model was built for {:?} → {:?}",
                data.io.input, data.io.output, self.meta.io.input, self.meta.io.output
            )));
        }
        Ok(())
    }

    /// Whether the normaliser is still the identity (no statistics fitted yet).
    pub(super) fn normalizer_is_identity(&self) -> bool {
        let zero = |i: usize| self.norm.slice(i).iter().all(|v| *v == S::zero());
        let one = |i: usize| self.norm.slice(i).iter().all(|v| *v == S::one());
        zero(X_MEAN) && zero(Y_MEAN) && one(X_STD) && one(Y_STD)
    }

    /// Sets the normaliser from the training tracks (or to the identity).
    pub(super) fn fit_normalizer(&mut self, data: &Dataset<S>, train: &[Track], on: bool) {
        let stats = |cols: usize, get: &dyn Fn(usize, usize, usize) -> f64| {
            // Two passes (mean, then squared deviations): one pass loses every digit when the
            // data sit far from zero.
            let mut mean = vec![0.0; cols];
            let mut sq = vec![0.0; cols];
            let n = train.iter().map(|t| t.len()).sum::<usize>().max(1) as f64;
            for tr in train {
                for t in tr.start..tr.end {
                    for (c, m) in mean.iter_mut().enumerate() {
                        *m += get(tr.seq, t, c) / n;
                    }
                }
            }
            for tr in train {
                for t in tr.start..tr.end {
                    for (c, s) in sq.iter_mut().enumerate() {
                        let d = get(tr.seq, t, c) - mean[c];
                        *s += d * d;
                    }
                }
            }
            (0..cols)
                .map(|c| {
                    let m = mean[c];
                    let var = sq[c] / n;
                    // A constant column keeps unit scale rather than dividing by zero.
                    let sd = if var.sqrt() > 1e-12 * m.abs().max(1.0) {
                        var.sqrt()
                    } else {
                        1.0
                    };
                    (m, sd)
                })
                .collect::<Vec<_>>()
        };
        let put = |norm: &mut Tensors<S>, mi: usize, si: usize, st: Vec<(f64, f64)>| {
            for (c, (m, s)) in st.into_iter().enumerate() {
                norm.slice_mut(mi)[c] = S::from_f64(if on { m } else { 0.0 });
                norm.slice_mut(si)[c] = S::from_f64(if on { s } else { 1.0 });
            }
        };
        let xi = self.norm.slice(X_MEAN).len();
        let yo = self.norm.slice(Y_MEAN).len();
        let xs = stats(xi, &|s, t, c| match &data.sequences[s].inputs {
            Inputs::Real(a) => a[[t, c]].as_f64(),
            Inputs::Tokens(_) => 0.0,
        });
        // A model that learns changes is normalised in changes.
        let ys = stats(yo, &|s, t, c| {
            let seq = &data.sequences[s];
            match &seq.targets {
                Targets::Real(a) => (a[[t, c]] - self.level(&seq.inputs, t, c)).as_f64(),
                Targets::Classes(_) => 0.0,
            }
        });
        put(&mut self.norm, X_MEAN, X_STD, xs);
        put(&mut self.norm, Y_MEAN, Y_STD, ys);
    }

    /// Scores `tracks` from fresh states, batched; returns the mean loss (in the units the
    /// model trains in) and the metrics in the data's units. The loss is the data loss
    /// alone: a cell's auxiliary loss ([`Cell::aux_loss`]) shapes training, and validation
    /// and early stopping judge the predictions.
    pub(crate) fn score_tracks(&self, data: &Dataset<S>, tracks: &[Track]) -> (f64, Metrics) {
        self.score_tracks_from(data, tracks, None)
    }

    /// As [`Model::score_tracks`], each track starting from `from` (one sequence's state,
    /// of the cell's fixed layout) instead of a fresh state when given.
    pub(crate) fn score_tracks_from(
        &self,
        data: &Dataset<S>,
        tracks: &[Track],
        from: Option<&Tensors<S>>,
    ) -> (f64, Metrics) {
        const GROUP: usize = 64;
        let mut total = WindowLoss::default();
        let (mut preds, mut targs) = (Vec::new(), Vec::new());
        let mut w = Window::default();
        for group in tracks.chunks(GROUP) {
            let b = group.len();
            let len = group.iter().map(|t| t.len()).max().unwrap_or(0);
            let chunk = crate::model::eval_window(b);
            let mut state = self.fresh_state(b);
            if let Some(start) = from {
                let row = state_row(start, 1, 0);
                for j in 0..b {
                    set_state_row(&mut state, b, j, Some(&row));
                }
            }
            let mut off = 0;
            while off < len {
                let steps = chunk.min(len - off);
                let at = At {
                    data,
                    tracks: group,
                    off,
                };
                let l = self.forward_window(at, steps, &mut state, &mut w, None, false);
                total.sum += l.sum;
                total.values += l.values;
                total.rows += l.rows;
                total.correct += l.correct;
                if let OutputKind::Regression(o) = self.meta.io.output {
                    let (m, sd) = (self.norm.slice(Y_MEAN), self.norm.slice(Y_STD));
                    for (&r, y) in w.rows.iter().zip(w.y.chunks_exact(o)) {
                        let (seq, t) = at.step(r).expect("counted rows lie in their track");
                        let Targets::Real(target) = &data.sequences[seq].targets else {
                            unreachable!("regression data was checked")
                        };
                        let inputs = &data.sequences[seq].inputs;
                        for (c, v) in y.iter().enumerate() {
                            let level = self.level(inputs, t, c);
                            preds.push((*v * sd[c] + m[c] + level).as_f64());
                            targs.push(target[[t, c]].as_f64());
                        }
                    }
                }
                off += steps;
            }
        }
        let mean = total.sum / total.values.max(1) as f64;
        let m = match self.meta.io.output {
            OutputKind::Regression(w) => metrics::regression(&preds, &targs, w),
            OutputKind::Classes(_) => metrics::classification(total.sum, total.correct, total.rows),
        };
        (mean, m)
    }

    /// The loss over all of `data` as one batch from `state0` (fresh when `None`), the
    /// cell's auxiliary loss included, with its gradients when `backward`.
    pub(crate) fn loss_and_gradients(
        &self,
        data: &Dataset<S>,
        state0: Option<&Tensors<S>>,
        backward: bool,
    ) -> Result<(f64, Option<Gradients<S>>)> {
        self.check_data(data)?;
        let tracks: Vec<Track> = data
            .sequences
            .iter()
            .enumerate()
            .map(|(seq, s)| Track {
                seq,
                start: 0,
                end: s.len(),
                score_from: 0,
            })
            .collect();
        let b = tracks.len();
        let mut state = self.fresh_state(b);
        if let Some(s0) = state0 {
            state.assign(s0)?;
        }
        let len = tracks.iter().map(|t| t.len()).max().unwrap_or(0);
        let mut w = Window::default();
        let mut tape = C::Tape::default();
        let at = At {
            data,
            tracks: &tracks,
            off: 0,
        };
        // Recorded even without a backward pass: the loss includes the cell's auxiliary
        // loss, which is computed from the tape.
        let l = self.forward_window(at, len, &mut state, &mut w, Some(&mut tape), true);
        let loss = l.sum / l.values.max(1) as f64;
        if !backward {
            return Ok((loss, None));
        }
        let mut params = Tensors::zeros_like(&self.params);
        let mut dstate = Tensors::zeros_like(&state);
        self.backward_window(at, &mut w, &tape, &mut dstate, &mut params, true);
        if state0.is_none() {
            self.cell
                .reset_state_backward(&self.params, &dstate, &mut params);
        }
        let dxs = ArrayView3::from_shape((len, b, self.cell.dims().input), &w.dxs[..])
            .expect("every row's input gradient");
        let inputs = tracks
            .iter()
            .enumerate()
            .map(|(j, tr)| {
                let mut g = dxs
                    .index_axis(Axis(1), j)
                    .slice(ndarray::s![..tr.len(), ..])
                    .to_owned();
                if let Inputs::Real(_) = data.sequences[tr.seq].inputs {
                    let sd = self.norm.slice(X_STD);
                    for mut row in g.rows_mut() {
                        for (v, s) in row.iter_mut().zip(sd) {
                            *v /= *s;
                        }
                    }
                }
                g
            })
            .collect();
        Ok((
            loss,
            Some(Gradients {
                params,
                state: dstate,
                inputs,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{Diagnostic, Dims};
    use crate::data::{InputKind, IoSpec, Sequence};
    use crate::model::{DynModel, ModelMeta};
    use crate::ops::linear;
    use crate::{Layout, Rng};
    use ndarray::{Array2, ArrayView2, ArrayViewMut2};

    /// A cell without state, `y = tanh(x) · W + b`, written directly from the trait (its
    /// window runs its step function on every row), so the engine's shortcut for stateless
    /// cells is tested on something other than the zoo's linear entry.
    #[derive(Clone)]
    struct Affine(Dims);

    fn tanh_rows(x: ArrayView2<f64>) -> Array2<f64> {
        x.mapv(f64::tanh)
    }

    impl Cell<f64> for Affine {
        type Tape = Array2<f64>;
        type Scratch = ();

        fn dims(&self) -> Dims {
            self.0
        }

        fn param_layout(&self) -> Layout {
            Layout::new()
                .with("w", &[self.0.input, self.0.output])
                .with("b", &[self.0.output])
        }

        fn state_layout(&self) -> Layout {
            Layout::new()
        }

        fn init_params(&self, rng: &mut Rng, params: &mut Tensors<f64>) {
            params.data_mut().iter_mut().for_each(|v| *v = rng.normal());
        }

        fn step(
            &self,
            p: &Tensors<f64>,
            _: &mut Tensors<f64>,
            x: ArrayView2<f64>,
            y: ArrayViewMut2<f64>,
            _: &mut (),
        ) {
            let h = tanh_rows(x);
            linear::forward(h.view(), p.mat(0), Some(p.vec(1)), y);
        }

        fn forward_window(
            &self,
            p: &Tensors<f64>,
            st: &mut Tensors<f64>,
            xs: ArrayView3<f64>,
            mut ys: ArrayViewMut3<f64>,
            tape: Option<&mut Array2<f64>>,
        ) {
            let (t, b, i) = xs.dim();
            for k in 0..t {
                let x = xs.index_axis(Axis(0), k);
                self.step(p, st, x, ys.index_axis_mut(Axis(0), k), &mut ());
            }
            if let Some(tape) = tape {
                *tape = xs.to_shape((t * b, i)).expect("sizes").to_owned();
            }
        }

        fn backward_window(
            &self,
            p: &Tensors<f64>,
            x: &Array2<f64>,
            dys: ArrayView3<f64>,
            _: &mut Tensors<f64>,
            grads: &mut Tensors<f64>,
            dxs: Option<ArrayViewMut3<f64>>,
        ) {
            let (t, b, o) = dys.dim();
            let dy = dys.to_shape((t * b, o)).expect("sizes").to_owned();
            let h = tanh_rows(x.view());
            let mut dw = Array2::zeros((self.0.input, o));
            let mut dh = Array2::zeros((t * b, self.0.input));
            linear::backward(
                h.view(),
                p.mat(0),
                dy.view(),
                dw.view_mut(),
                Some(grads.vec_mut(1)),
                Some((dh.view_mut(), false)),
            );
            grads.mat_mut(0).scaled_add(1.0, &dw);
            if let Some(mut dx) = dxs {
                let dx_rows = &dh * &h.mapv(|v| 1.0 - v * v);
                dx.assign(&dx_rows.to_shape((t, b, self.0.input)).expect("sizes"));
            }
        }

        fn diagnostics(&self, _: &Tensors<f64>, _: &Tensors<f64>) -> Vec<Diagnostic> {
            Vec::new()
        }
    }

    fn model(vocab: usize, embed: usize, classes: usize) -> Model<f64, Affine> {
        let io = IoSpec {
            input: InputKind::Tokens { vocab, embed },
            output: OutputKind::Classes(classes),
            input_names: vec![],
            target_names: vec![],
        };
        let meta = ModelMeta {
            entry: "affine".into(),
            params: "()".into(),
            io: io.clone(),
            seed: 3,
            skip: false,
            difference: vec![],
            horizon: 0,
        };
        Model::new(
            meta,
            Affine(Dims {
                input: embed,
                output: classes,
            }),
        )
        .unwrap()
    }

    /// Token sequences of different lengths, a few steps of each scored.
    fn data(vocab: usize, classes: usize, lens: &[usize]) -> Dataset<f64> {
        let mut r = Rng::new(8);
        let m = model(vocab, 1, classes);
        Dataset {
            io: m.meta.io.clone(),
            sequences: lens
                .iter()
                .map(|&n| Sequence {
                    inputs: Inputs::Tokens((0..n).map(|_| r.below(vocab) as u32).collect()),
                    targets: Targets::Classes((0..n).map(|_| r.below(classes) as u32).collect()),
                    mask: Some((0..n).map(|_| r.below(3) == 0).collect()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_stateless_cell_run_on_the_scored_rows_only_gives_the_loss_and_gradients_of_every_row() {
        let (vocab, embed, classes) = (9, 4, 5);
        let m = model(vocab, embed, classes);
        let data = data(vocab, classes, &[7, 12, 3, 12]);
        let tracks: Vec<Track> = (0..4)
            .map(|seq| Track {
                seq,
                start: 1,
                end: data.sequences[seq].len(),
                score_from: 2,
            })
            .collect();
        let at = At {
            data: &data,
            tracks: &tracks,
            off: 0,
        };
        let mut out = Vec::new();
        for all_rows in [true, false] {
            let mut w = Window::default();
            let mut tape = Array2::zeros((0, 0));
            let mut state = m.fresh_state(tracks.len());
            let l = m.forward_window(at, 11, &mut state, &mut w, Some(&mut tape), all_rows);
            assert_eq!(w.scored_only, !all_rows);
            let mut grads = Tensors::zeros_like(&m.params);
            let mut dstate = Tensors::zeros_like(&state);
            m.backward_window(at, &mut w, &tape, &mut dstate, &mut grads, false);
            out.push((l.sum, l.rows, l.correct, w.y.clone(), grads));
        }
        let (all, scored) = (&out[0], &out[1]);
        assert!(all.1 > 3, "some rows are scored");
        assert_eq!((all.0, all.1, all.2), (scored.0, scored.1, scored.2));
        assert_eq!(all.3, scored.3, "the head's outputs, bit for bit");
        let (g0, g1) = (all.4.data(), scored.4.data());
        assert!(g0.iter().any(|v| *v != 0.0));
        let scale = g0.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (a, b) in g0.iter().zip(g1) {
            assert!((a - b).abs() <= 1e-13 * scale, "{a} vs {b}");
        }
    }

    #[test]
    fn predict_in_chunks_equals_the_step_loop_bit_for_bit() {
        let (vocab, embed, classes) = (9, 4, 5);
        let mut m = model(vocab, embed, classes);
        let data = data(vocab, classes, &[600]);
        let x = &data.sequences[0].inputs;
        let chunked = m.predict(x).unwrap();
        let stepped = m.stream_batch(std::slice::from_ref(x)).unwrap();
        assert_eq!(chunked, stepped[0]);
    }
}
