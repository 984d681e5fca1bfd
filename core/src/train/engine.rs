//! Truncated backpropagation through time over any cell, batched: the sequences of a batch go
//! through the cell together, one window at a time.

use super::config::TrainConfig;
use super::loss;
use super::optim::{OptimState, clip_global_norm};
use super::plan::{self, Track};
use super::report::{EpochRecord, FitReport, Gradients, Progress};
use crate::cell::Cell;
use crate::data::{Dataset, Inputs, OutputKind, Targets};
use crate::metrics::{self, Metrics};
use crate::model::{Model, X_MEAN, X_STD, Y_MEAN, Y_STD};
use crate::{Error, Result, Rng, Scalar, Tensors};
use ndarray::{Array2, Array3, Axis};
use std::time::Instant;

/// Buffers for one window of `T` steps over `B` tracks.
struct Window<S> {
    xs: Array3<S>,
    yc: Array3<S>,
    y: Array2<S>,
    dy: Array2<S>,
    targets: Vec<S>,
    classes: Vec<u32>,
    counts: Vec<bool>,
}

/// Which window of which tracks: steps `off..` (relative to each track's start).
#[derive(Clone, Copy)]
struct At<'a, S> {
    data: &'a Dataset<S>,
    tracks: &'a [Track],
    off: usize,
}

/// What one window's loss came to.
#[derive(Default, Clone, Copy)]
struct WindowLoss {
    sum: f64,
    values: usize,
    rows: usize,
    correct: usize,
}

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    fn window(&self, steps: usize, b: usize) -> Window<S> {
        let d = self.cell.dims();
        Window {
            xs: Array3::zeros((steps, b, d.input)),
            yc: Array3::zeros((steps, b, d.output)),
            y: Array2::zeros((steps * b, d.output)),
            dy: Array2::zeros((steps * b, d.output)),
            targets: vec![S::zero(); steps * b * d.output],
            classes: vec![0; steps * b],
            counts: vec![false; steps * b],
        }
    }

    /// Runs steps `off..off + T` (relative to each track's start) of `tracks` forward from
    /// `state`, then the head and the loss; `dy` receives ∂(mean loss)/∂y.
    fn forward_window(
        &self,
        at: At<'_, S>,
        state: &mut Tensors<S>,
        w: &mut Window<S>,
        tape: Option<&mut C::Tape>,
    ) -> WindowLoss {
        let At { data, tracks, off } = at;
        let (steps, b) = (w.xs.shape()[0], tracks.len());
        let o = self.cell.dims().output;
        for (j, tr) in tracks.iter().enumerate() {
            let seq = &data.sequences[tr.seq];
            let t0 = tr.start + off;
            let mut xs = w.xs.view_mut();
            if t0 < tr.end {
                self.fill_inputs(&seq.inputs, t0, j, &mut xs);
                // Steps past the track's end (but inside the sequence) must not leak in.
                for k in 0..steps {
                    if t0 + k >= tr.end {
                        xs.slice_mut(ndarray::s![k, j, ..]).fill(S::zero());
                    }
                }
            } else {
                xs.slice_mut(ndarray::s![.., j, ..]).fill(S::zero());
            }
            for k in 0..steps {
                let t = t0 + k;
                let r = k * b + j;
                let counts = t < tr.end && t >= tr.score_from && seq.counts(t);
                w.counts[r] = counts;
                if !counts {
                    continue;
                }
                match &seq.targets {
                    Targets::Real(_) => {
                        self.target_row(&seq.targets, t, &mut w.targets[r * o..(r + 1) * o])
                    }
                    Targets::Classes(c) => w.classes[r] = c[t],
                }
            }
        }
        self.cell
            .forward_window(&self.params, state, w.xs.view(), w.yc.view_mut(), tape);
        let yc2 =
            w.yc.view()
                .into_shape_with_order((steps * b, o))
                .expect("contiguous");
        self.head_forward(yc2, w.y.view_mut());
        let rows = w.counts.iter().filter(|c| **c).count();
        let pred = w.y.as_slice().expect("contiguous");
        let grad = w.dy.as_slice_mut().expect("contiguous");
        match self.meta.io.output {
            OutputKind::Regression(_) => {
                let scale = S::from_f64(1.0 / (rows.max(1) * o) as f64);
                let (sum, values) = loss::mse(pred, &w.targets, &w.counts, o, scale, grad);
                WindowLoss {
                    sum,
                    values,
                    rows,
                    correct: 0,
                }
            }
            OutputKind::Classes(_) => {
                let scale = S::from_f64(1.0 / rows.max(1) as f64);
                let (sum, n, correct) =
                    loss::cross_entropy(pred, &w.classes, &w.counts, o, scale, grad);
                WindowLoss {
                    sum,
                    values: n,
                    rows,
                    correct,
                }
            }
        }
    }

    /// Backward through head, cell and embedding for the window `forward_window` just ran.
    /// `dstate` carries ∂L/∂state after the window in and before it out; returns ∂L/∂xs
    /// when `want_dx`.
    fn backward_window(
        &self,
        at: At<'_, S>,
        w: &Window<S>,
        tape: &C::Tape,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        want_dx: bool,
    ) -> Option<Array3<S>> {
        let At { data, tracks, off } = at;
        let (steps, b, _) = w.xs.dim();
        let d = self.cell.dims();
        let yc2 =
            w.yc.view()
                .into_shape_with_order((steps * b, d.output))
                .expect("contiguous");
        let mut dyc = Array2::zeros((steps * b, d.output));
        self.head_backward(yc2, w.dy.view(), grads, dyc.view_mut());
        let dyc3 = dyc
            .into_shape_with_order((steps, b, d.output))
            .expect("contiguous");
        let need_dx = want_dx || self.idx.embed.is_some();
        let mut dxs = need_dx.then(|| Array3::zeros((steps, b, d.input)));
        self.cell.backward_window(
            &self.params,
            tape,
            dyc3.view(),
            dstate,
            grads,
            dxs.as_mut().map(|a| a.view_mut()),
        );
        if let (Some(e), Some(dx)) = (self.idx.embed, dxs.as_ref()) {
            let mut table = grads.mat_mut(e);
            for (j, tr) in tracks.iter().enumerate() {
                if let Inputs::Tokens(tok) = &data.sequences[tr.seq].inputs {
                    for k in 0..steps {
                        let t = tr.start + off + k;
                        if t < tr.end {
                            let mut row = table.row_mut(tok[t] as usize);
                            row += &dx.slice(ndarray::s![k, j, ..]);
                        }
                    }
                }
            }
        }
        dxs
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
    fn normalizer_is_identity(&self) -> bool {
        let zero = |i: usize| self.norm.slice(i).iter().all(|v| *v == S::zero());
        let one = |i: usize| self.norm.slice(i).iter().all(|v| *v == S::one());
        zero(X_MEAN) && zero(Y_MEAN) && one(X_STD) && one(Y_STD)
    }

    /// Sets the normaliser from the training tracks (or to the identity).
    fn fit_normalizer(&mut self, data: &Dataset<S>, train: &[Track], on: bool) {
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
        let ys = stats(yo, &|s, t, c| match &data.sequences[s].targets {
            Targets::Real(a) => a[[t, c]].as_f64(),
            Targets::Classes(_) => 0.0,
        });
        put(&mut self.norm, X_MEAN, X_STD, xs);
        put(&mut self.norm, Y_MEAN, Y_STD, ys);
    }

    /// Scores `tracks` from fresh states, batched; returns the mean loss (in the units the
    /// model trains in) and the metrics in the data's units.
    pub(crate) fn score_tracks(&self, data: &Dataset<S>, tracks: &[Track]) -> (f64, Metrics) {
        const GROUP: usize = 64;
        let mut total = WindowLoss::default();
        let (mut preds, mut targs) = (Vec::new(), Vec::new());
        for group in tracks.chunks(GROUP) {
            let b = group.len();
            let len = group.iter().map(|t| t.len()).max().unwrap_or(0);
            let chunk = crate::model::eval_window(b);
            let mut state = self.fresh_state(b);
            let mut w = self.window(chunk.min(len), b);
            let mut off = 0;
            while off < len {
                let steps = chunk.min(len - off);
                if w.xs.dim().0 != steps {
                    w = self.window(steps, b);
                }
                let l = self.forward_window(
                    At {
                        data,
                        tracks: group,
                        off,
                    },
                    &mut state,
                    &mut w,
                    None,
                );
                total.sum += l.sum;
                total.values += l.values;
                total.rows += l.rows;
                total.correct += l.correct;
                if let OutputKind::Regression(_) = self.meta.io.output {
                    let (m, sd) = (self.norm.slice(Y_MEAN), self.norm.slice(Y_STD));
                    for (r, _) in w.counts.iter().enumerate().filter(|(_, c)| **c) {
                        let tr = &group[r % b];
                        let t = tr.start + off + r / b;
                        let Targets::Real(y) = &data.sequences[tr.seq].targets else {
                            unreachable!("regression data was checked")
                        };
                        for (c, v) in w.y.row(r).iter().enumerate() {
                            preds.push((*v * sd[c] + m[c]).as_f64());
                            targs.push(y[[t, c]].as_f64());
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

    /// Trains on `data` (see [`TrainConfig`]); the best weights by validation loss are kept.
    pub(crate) fn fit_impl(
        &mut self,
        data: &Dataset<S>,
        cfg: &TrainConfig,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<FitReport> {
        cfg.validate()?;
        self.check_data(data)?;
        let started = Instant::now();
        let split = plan::split(data, cfg.validation);
        if self.normalizer_is_identity() {
            self.fit_normalizer(data, &split.train, cfg.normalize);
        }
        let base = plan::training_tracks(&split.train, cfg);
        let mut shuffle_rng = Rng::derive(cfg.seed, "shuffle");
        let mut opt = OptimState::new(cfg.optimizer, cfg.learning_rate, self.params.data().len());
        let mut grads = Tensors::zeros_like(&self.params);
        let mut history = Vec::new();
        let mut best = (f64::INFINITY, self.params.clone(), 0usize);
        let mut since_best = 0;
        let mut tokens = 0usize;
        let mut stopped_early = false;
        let mut updates = 0usize;
        let mut budget_spent = false;
        for epoch in 1..=cfg.epochs {
            let mut order = base.clone();
            shuffle_rng.shuffle(&mut order);
            let mut epoch_loss = WindowLoss::default();
            for group in order.chunks(cfg.batch_size) {
                if budget_spent {
                    break;
                }
                let b = group.len();
                let len = group.iter().map(|t| t.len()).max().unwrap_or(0);
                let win = if cfg.window == 0 {
                    len
                } else {
                    cfg.window.min(len)
                };
                let mut state = self.fresh_state(b);
                let mut dstate = Tensors::zeros_like(&state);
                let mut tape = C::Tape::default();
                let mut w = self.window(win, b);
                let mut off = 0;
                while off < len && !budget_spent {
                    let steps = win.min(len - off);
                    if w.xs.dim().0 != steps {
                        w = self.window(steps, b);
                    }
                    let at = At {
                        data,
                        tracks: group,
                        off,
                    };
                    let l = self.forward_window(at, &mut state, &mut w, Some(&mut tape));
                    tokens += steps * b;
                    if l.rows > 0 {
                        if !l.sum.is_finite() {
                            return Err(Error::Diverged { epoch, loss: l.sum });
                        }
                        epoch_loss.sum += l.sum;
                        epoch_loss.values += l.values;
                        grads.fill(S::zero());
                        dstate.fill(S::zero());
                        self.backward_window(at, &w, &tape, &mut dstate, &mut grads, false);
                        if let Some(f) = &self.frozen {
                            for (g, &fz) in grads.data_mut().iter_mut().zip(f) {
                                if fz {
                                    *g = S::zero();
                                }
                            }
                        }
                        clip_global_norm(grads.data_mut(), cfg.clip);
                        opt.step(self.params.data_mut(), grads.data(), self.frozen.as_deref());
                        updates += 1;
                        budget_spent = (cfg.max_updates > 0 && updates >= cfg.max_updates)
                            || (cfg.max_seconds > 0.0
                                && started.elapsed().as_secs_f64() >= cfg.max_seconds);
                    }
                    off += steps;
                }
            }
            let train_loss = epoch_loss.sum / epoch_loss.values.max(1) as f64;
            if !train_loss.is_finite() || !self.params.all_finite() {
                return Err(Error::Diverged {
                    epoch,
                    loss: train_loss,
                });
            }
            let val_loss = (!split.validation.is_empty())
                .then(|| self.score_tracks(data, &split.validation).0);
            let watched = val_loss.unwrap_or(train_loss);
            if watched < best.0 {
                best = (watched, self.params.clone(), epoch);
                since_best = 0;
            } else {
                since_best += 1;
            }
            history.push(EpochRecord {
                epoch,
                train_loss,
                val_loss,
            });
            progress(&Progress {
                epoch,
                epochs: cfg.epochs,
                train_loss,
                val_loss,
                best_epoch: best.2,
            });
            if budget_spent {
                break;
            }
            if cfg.patience > 0 && since_best >= cfg.patience {
                stopped_early = epoch < cfg.epochs;
                break;
            }
        }
        self.params = best.1;
        let state = self.fresh_state(1);
        self.state = state;
        let seconds = started.elapsed().as_secs_f64();
        let train_tracks: Vec<Track> = split.train.clone();
        let (_, train) = self.score_tracks(data, &train_tracks);
        let validation =
            (!split.validation.is_empty()).then(|| self.score_tracks(data, &split.validation).1);
        Ok(FitReport {
            updates,
            best_loss: best.0,
            budget_spent,
            epochs_run: history.len(),
            best_epoch: best.2,
            stopped_early,
            history,
            train,
            validation,
            seconds,
            tokens_per_second: tokens as f64 / seconds.max(1e-9),
        })
    }

    /// The loss over all of `data` as one batch from `state0` (fresh when `None`), with its
    /// gradients when `backward`.
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
        let mut w = self.window(len, b);
        let mut tape = C::Tape::default();
        let at = At {
            data,
            tracks: &tracks,
            off: 0,
        };
        let l = self.forward_window(at, &mut state, &mut w, backward.then_some(&mut tape));
        let loss = l.sum / l.values.max(1) as f64;
        if !backward {
            return Ok((loss, None));
        }
        let mut params = Tensors::zeros_like(&self.params);
        let mut dstate = Tensors::zeros_like(&state);
        let dxs = self
            .backward_window(at, &w, &tape, &mut dstate, &mut params, true)
            .expect("asked for input gradients");
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
