//! The training loop: updates under a budget, validation every few updates with early
//! stopping, the learning-rate schedule, the hand-off of lane states along one stream, and
//! the optional refit on training and validation data.

use super::config::{StatePolicy, TrainConfig};
use super::engine::{At, Window, WindowLoss, set_state_row, state_row};
use super::optim::{OptimState, clip_global_norm};
use super::plan::{self, Track};
use super::report::{EvalRecord, FitReport, Progress};
use crate::cell::Cell;
use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::{Error, Result, Rng, Scalar, Tensors};
use std::collections::HashMap;
use std::time::Instant;

/// What one training run (the main one, or the refit) came to.
struct RunOutcome<S> {
    /// The watched loss, weights, update and pass of the best validation point.
    best: (f64, Tensors<S>, usize, usize),
    updates: usize,
    epochs_run: usize,
    stopped_early: bool,
    budget_spent: bool,
    history: Vec<EvalRecord>,
    tokens: usize,
    /// Seconds spent scoring the validation part, which is not training throughput.
    validating: f64,
    /// The most updates the run can make (see [`run_length`]).
    horizon: usize,
}

/// The part of a run that does not change from one update to the next.
struct RunSpec<'a> {
    train: &'a [Track],
    validation: &'a [Track],
    /// Update budget of this run (0 = none).
    max_updates: usize,
    refit: bool,
}

/// The updates a run over `base` will make at most: the budget, or the passes allowed times
/// the windows of one pass if that is less (0 when neither limits it). The learning-rate
/// schedule spans this length.
fn run_length(base: &[Track], cfg: &TrainConfig, max_updates: usize) -> usize {
    if cfg.epochs == 0 {
        return max_updates;
    }
    let per_pass: usize = base
        .chunks(cfg.batch_size)
        .map(|g| {
            let len = g.iter().map(|t| t.len()).max().unwrap_or(0);
            let win = if cfg.window == 0 { len } else { cfg.window };
            len.div_ceil(win.max(1))
        })
        .sum();
    let by_passes = cfg.epochs * per_pass;
    if max_updates == 0 {
        by_passes
    } else {
        max_updates.min(by_passes)
    }
}

/// The validation score of `m`: R² for regression, accuracy for classes.
fn score_of(m: &Metrics) -> Option<f64> {
    m.r2.or(m.accuracy)
}

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    /// Trains on `data` (see [`TrainConfig`]); the best weights by validation loss are kept,
    /// or with `refit` those of a second run on all the data for as many updates.
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
        if let Some(lf) = self.closed_form(data) {
            let order = self.fit_least_squares(data, &split, cfg, &lf);
            return Ok(self.report_closed_form(data, &split, order, started));
        }
        let initial = self.params.clone();
        let spec = RunSpec {
            train: &split.train,
            validation: &split.validation,
            max_updates: cfg.max_updates,
            refit: false,
        };
        let main = self.train_run(data, cfg, &spec, started, progress)?;
        let (mut updates, mut tokens, mut validating) =
            (main.updates, main.tokens, main.validating);
        self.params = main.best.1;
        let mut budget_spent = main.budget_spent;
        let mut refit_updates = None;
        if cfg.refit && !split.validation.is_empty() && main.best.2 > 0 {
            let all = plan::split(data, 0.0).train;
            let spec = RunSpec {
                train: &all,
                validation: &[],
                max_updates: main.best.2,
                refit: true,
            };
            self.params = initial;
            let again = self.train_run(data, cfg, &spec, started, progress)?;
            updates += again.updates;
            tokens += again.tokens;
            validating += again.validating;
            budget_spent = again.budget_spent && again.updates < main.best.2;
            refit_updates = Some(again.updates);
            // The refit has no held-out data to choose by: its last weights are kept.
        }
        self.state = self.fresh_state(1);
        let seconds = started.elapsed().as_secs_f64();
        let (_, train) = self.score_tracks(data, &split.train);
        let validation =
            (!split.validation.is_empty()).then(|| self.score_tracks(data, &split.validation).1);
        Ok(FitReport {
            updates,
            best_update: main.best.2,
            best_loss: main.best.0,
            budget_spent,
            epochs_run: main.epochs_run,
            best_epoch: main.best.3,
            stopped_early: main.stopped_early,
            history: main.history,
            refit_updates,
            least_squares_order: None,
            train,
            validation,
            seconds,
            tokens_per_second: tokens as f64 / (seconds - validating).max(1e-9),
        })
    }

    /// The report of a closed-form fit: no updates, the metrics of the fitted weights.
    fn report_closed_form(
        &mut self,
        data: &Dataset<S>,
        split: &plan::Split,
        order: usize,
        started: Instant,
    ) -> FitReport {
        self.state = self.fresh_state(1);
        let (train_loss, train) = self.score_tracks(data, &split.train);
        let validation =
            (!split.validation.is_empty()).then(|| self.score_tracks(data, &split.validation));
        FitReport {
            updates: 0,
            best_update: 0,
            best_loss: validation.as_ref().map_or(train_loss, |v| v.0),
            budget_spent: false,
            epochs_run: 0,
            best_epoch: 0,
            stopped_early: false,
            history: Vec::new(),
            refit_updates: None,
            least_squares_order: Some(order),
            train,
            validation: validation.map(|v| v.1),
            seconds: started.elapsed().as_secs_f64(),
            tokens_per_second: 0.0,
        }
    }

    /// One training run from the current weights over `spec.train`, validated on
    /// `spec.validation` (on the training loss without it).
    fn train_run(
        &mut self,
        data: &Dataset<S>,
        cfg: &TrainConfig,
        spec: &RunSpec<'_>,
        started: Instant,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RunOutcome<S>> {
        let run_started = Instant::now();
        let base = plan::training_tracks(spec.train, cfg);
        let mut shuffle_rng = Rng::derive(cfg.seed, "shuffle");
        let horizon = run_length(&base, cfg, spec.max_updates);
        let mut opt = OptimState::new(
            cfg.optimizer,
            cfg.learning_rate_at(0, horizon),
            self.params.data().len(),
        );
        let mut grads = Tensors::zeros_like(&self.params);
        let mut out = RunOutcome {
            best: (f64::INFINITY, self.params.clone(), 0, 0),
            updates: 0,
            epochs_run: 0,
            stopped_early: false,
            budget_spent: false,
            history: Vec::new(),
            tokens: 0,
            validating: 0.0,
            horizon,
        };
        let mut since_best = 0;
        let mut pending = WindowLoss::default();
        let mut w = Window::default();
        let mut tape = C::Tape::default();
        let state_len = self.cell.state_layout().total();
        let mut state = self.fresh_state(0);
        let mut dstate = Tensors::zeros_like(&state);
        // Under `Carry`, the state each track ended with, by (sequence, end step): a lane of
        // one stream that starts where another ended continues from it on the next pass, so
        // the memory of every lane but the first is never cut off from the stream before it.
        let mut handoff: HashMap<(usize, usize), Vec<S>> = HashMap::new();
        let mut carried = Vec::new();
        let mut epoch = 0;
        'passes: while cfg.epochs == 0 || epoch < cfg.epochs {
            epoch += 1;
            out.epochs_run = epoch;
            let updates_before = out.updates;
            let mut order = base.clone();
            shuffle_rng.shuffle(&mut order);
            for group in order.chunks(cfg.batch_size) {
                let b = group.len();
                let len = group.iter().map(|t| t.len()).max().unwrap_or(0);
                let win = if cfg.window == 0 {
                    len
                } else {
                    cfg.window.min(len)
                };
                if state.data().len() == state_len * b {
                    // What `fresh_state` makes, in the buffers of the last group.
                    state.fill(S::zero());
                    self.cell.reset_state(&self.params, &mut state);
                } else {
                    state = self.fresh_state(b);
                    dstate = Tensors::zeros_like(&state);
                }
                carried.clear();
                for (j, tr) in group.iter().enumerate() {
                    let from = handoff.get(&(tr.seq, tr.start));
                    if let Some(row) = from {
                        set_state_row(&mut state, b, j, Some(row));
                    }
                    carried.push(from.is_some());
                }
                let mut off = 0;
                while off < len {
                    let steps = win.min(len - off);
                    let at = At {
                        data,
                        tracks: group,
                        off,
                    };
                    let l =
                        self.forward_window(at, steps, &mut state, &mut w, Some(&mut tape), false);
                    out.tokens += steps * b;
                    off += steps;
                    if l.rows == 0 {
                        continue;
                    }
                    if !l.sum.is_finite() {
                        return Err(Error::Diverged { epoch, loss: l.sum });
                    }
                    pending.sum += l.sum;
                    pending.values += l.values;
                    grads.fill(S::zero());
                    dstate.fill(S::zero());
                    self.backward_window(at, &mut w, &tape, &mut dstate, &mut grads, false);
                    if off == steps {
                        // The window began at the reset state, itself a function of the
                        // parameters, on the rows that did not continue a handed-off state;
                        // a later window began at a carried, detached state.
                        for (j, &c) in carried.iter().enumerate() {
                            if c {
                                set_state_row(&mut dstate, b, j, None);
                            }
                        }
                        self.cell
                            .reset_state_backward(&self.params, &dstate, &mut grads);
                    }
                    if let Some(f) = &self.frozen {
                        for (g, &fz) in grads.data_mut().iter_mut().zip(f) {
                            if fz {
                                *g = S::zero();
                            }
                        }
                    }
                    clip_global_norm(grads.data_mut(), cfg.clip);
                    opt.set_learning_rate(cfg.learning_rate_at(out.updates, horizon));
                    opt.step(self.params.data_mut(), grads.data(), self.frozen.as_deref());
                    out.updates += 1;
                    out.budget_spent = (spec.max_updates > 0 && out.updates >= spec.max_updates)
                        || (cfg.max_seconds > 0.0
                            && started.elapsed().as_secs_f64() >= cfg.max_seconds);
                    let due = cfg.eval_every > 0 && out.updates % cfg.eval_every == 0;
                    if due || out.budget_spent {
                        let stop = self.checkpoint(
                            data,
                            cfg,
                            spec,
                            epoch,
                            &mut pending,
                            &mut out,
                            &mut since_best,
                            run_started,
                            progress,
                        )?;
                        if stop || out.budget_spent {
                            break 'passes;
                        }
                    }
                }
                if cfg.state == StatePolicy::Carry {
                    for (j, tr) in group.iter().enumerate() {
                        handoff.insert((tr.seq, tr.end), state_row(&state, b, j));
                    }
                }
            }
            let last_pass = cfg.epochs > 0 && epoch == cfg.epochs;
            if (cfg.eval_every == 0 || last_pass) && pending.values > 0 {
                let stop = self.checkpoint(
                    data,
                    cfg,
                    spec,
                    epoch,
                    &mut pending,
                    &mut out,
                    &mut since_best,
                    run_started,
                    progress,
                )?;
                if stop {
                    break;
                }
            }
            if out.updates == updates_before {
                // A pass without one counted row: no later pass can do better.
                break;
            }
        }
        if out.history.is_empty() {
            // Not one update: the weights are the initial ones.
            out.best.1 = self.params.clone();
        }
        Ok(out)
    }

    /// A validation point: scores the validation part, keeps the weights if they are the best
    /// so far, reports progress; returns whether early stopping ends the run.
    #[allow(clippy::too_many_arguments)]
    fn checkpoint(
        &mut self,
        data: &Dataset<S>,
        cfg: &TrainConfig,
        spec: &RunSpec<'_>,
        epoch: usize,
        pending: &mut WindowLoss,
        out: &mut RunOutcome<S>,
        since_best: &mut usize,
        run_started: Instant,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<bool> {
        let train_loss = pending.sum / pending.values.max(1) as f64;
        *pending = WindowLoss::default();
        if !train_loss.is_finite() || !self.params.all_finite() {
            return Err(Error::Diverged {
                epoch,
                loss: train_loss,
            });
        }
        let scoring = Instant::now();
        let val = (!spec.validation.is_empty()).then(|| self.score_tracks(data, spec.validation));
        out.validating += scoring.elapsed().as_secs_f64();
        let val_loss = val.as_ref().map(|v| v.0);
        let watched = val_loss.unwrap_or(train_loss);
        if watched < out.best.0 || spec.refit {
            out.best = (watched, self.params.clone(), out.updates, epoch);
            *since_best = 0;
        } else {
            *since_best += 1;
        }
        out.history.push(EvalRecord {
            update: out.updates,
            epoch,
            train_loss,
            val_loss,
        });
        let training = (run_started.elapsed().as_secs_f64() - out.validating).max(1e-9);
        progress(&Progress {
            update: out.updates,
            max_updates: out.horizon,
            epoch,
            train_loss,
            val_loss,
            val_score: val.as_ref().and_then(|v| score_of(&v.1)),
            best_update: out.best.2,
            updates_per_second: out.updates as f64 / training,
            refit: spec.refit,
        });
        let stop = !spec.refit && cfg.patience > 0 && *since_best >= cfg.patience;
        out.stopped_early |= stop;
        Ok(stop)
    }
}
