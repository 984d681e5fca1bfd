//! The comparison's driver: for each row, the learning-rate search, the seeds (at every sweep
//! point) and the solo timing run, each run skipped when its record is already in hand and
//! reported the moment it finishes.

use super::measure::inference_speed;
use super::record::{self, chosen_lr};
use super::{
    Budget, CompareConfig, Comparison, Contender, Event, Header, RunKind, RunRecord, SOLO_SECONDS,
    SOLO_UPDATES, SoloRecord, TaskData, parallel, scores, train, train_config, train_with,
};
use mnnn_core::Result;
use std::cell::RefCell;
use std::time::Instant;

/// One run for the pool: a row's search run at a rate, or its seed run (at a sweep point)
/// at the rate its search picked.
struct Job {
    /// Index of the row in the comparison.
    row: usize,
    kind: RunKind,
    /// Sweep point, if the task is a sweep.
    point: Option<usize>,
    seed: u64,
    lr: f64,
}

/// Tokens one update trains on, for the work estimate.
fn tokens_per_update(data: &TaskData, budget: Budget) -> f64 {
    let cfg = train_config(data, budget, 0.01, 0);
    let longest = data
        .train
        .sequences
        .iter()
        .map(|s| s.len())
        .max()
        .unwrap_or(1);
    let window = if cfg.window == 0 { longest } else { cfg.window };
    (cfg.batch_size * window) as f64
}

/// Runs the comparison; `progress` hears the plan, every run's start and every run's record
/// as it finishes. Runs in `cfg.done` are taken as they are.
pub fn compare(cfg: &CompareConfig, progress: &mut dyn FnMut(&Event)) -> Result<Comparison> {
    let mut names = cfg.checked()?;
    if !names.iter().any(|n| n.label == "linear") {
        names.push(Contender::resolve("linear")?);
    }
    // On a forecast, the classical floor: autoregression on the recent past.
    if cfg.task.is_forecasting() && !names.iter().any(|n| n.label == "ar") {
        names.push(Contender::resolve("ar")?);
    }
    let sweep = cfg.task.sweep();
    // Generation is deterministic in the seed, so every contender trains on one shared copy.
    // Seed 0's data serves the search and the timing run; the other seeds' data is read only
    // without a sweep, since a sweep's runs use the data of their own point.
    let base_seeds = if sweep.is_some() { 1 } else { cfg.seeds };
    let base: Vec<TaskData> = (0..base_seeds as u64)
        .map(|s| cfg.task.generate(s))
        .collect::<Result<_>>()?;
    let sweep_data: Vec<Vec<TaskData>> = match &sweep {
        Some((_, points)) => points
            .iter()
            .map(|(_, task)| (0..cfg.seeds as u64).map(|s| task.generate(s)).collect())
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let header = Header {
        task: cfg.task.name().to_string(),
        metric: base[0].metric,
        sweep: sweep
            .as_ref()
            .map(|(n, _)| n.to_string())
            .or(base[0].sweep.map(str::to_string)),
        seeds: cfg.seeds,
        budget: cfg.budget,
        learning_rates: cfg.learning_rates.clone(),
        points: match &sweep {
            Some((_, points)) => points
                .iter()
                .map(|(x, _)| (Some(*x), x.to_string()))
                .collect(),
            None => base[0]
                .tests
                .iter()
                .map(|t| (t.x, t.label.clone()))
                .collect(),
        },
        entries: names.iter().map(|n| n.label.clone()).collect(),
    };
    if let Some(old) = &cfg.done_header {
        old.resumable_by(&header)?;
    }
    // Every run but the solo one: (kind, sweep point, seed, lr); the seed runs' lr is the
    // search's pick, filled in once known.
    let jobs_of = |label: &str| -> Vec<(RunKind, Option<usize>, u64, f64)> {
        let search = cfg
            .learning_rates
            .iter()
            .map(|&lr| (RunKind::Search, None, 0, lr));
        let seeds: Vec<_> = match &sweep {
            Some((_, points)) => (0..points.len())
                .flat_map(|p| (0..cfg.seeds as u64).map(move |s| (RunKind::Seed, Some(p), s, 0.0)))
                .collect(),
            None => (1..cfg.seeds as u64)
                .map(|s| (RunKind::Seed, None, s, 0.0))
                .collect(),
        };
        search
            .chain(seeds)
            .filter(|&(kind, p, seed, lr)| {
                let x = p.and_then(|p| sweep.as_ref().map(|(_, pts)| pts[p].0));
                !cfg.done.iter().any(|r| r.is(label, kind, seed, lr, x))
            })
            .collect()
    };
    let updates = match cfg.budget {
        Budget::Updates(n) => n as f64,
        // Every run gets the same time, whatever its entry.
        Budget::Seconds(_) => 1.0,
    };
    let tokens = tokens_per_update(&base[0], cfg.budget);
    let io = base[0].train.cast::<f32>().io;
    let work = names
        .iter()
        .map(|c| {
            let params = c
                .entry
                .create::<f32>(c.params.as_deref(), &io, 0)?
                .params()
                .data()
                .len();
            let w = match cfg.budget {
                // A run's cost grows with its parameters and its tokens; the constant stands
                // for the per-token cost every model has (data, loss, optimiser).
                Budget::Updates(_) => (params as f64 + 1000.0) * tokens * updates,
                Budget::Seconds(_) => 1.0,
            };
            Ok((c.label.clone(), jobs_of(&c.label).len(), w))
        })
        .collect::<Result<Vec<_>>>()?;
    let row_work: Vec<f64> = work.iter().map(|w| w.2).collect();
    progress(&Event::Plan {
        header: header.clone(),
        work,
    });
    // The pool's callbacks report, one at a time, on this thread.
    let progress = RefCell::new(progress);
    let point_x = |p: Option<usize>| p.and_then(|p| sweep.as_ref().map(|(_, pts)| pts[p].0));
    let run = |job: &Job| -> Result<RunRecord> {
        let contender = &names[job.row];
        let data = match job.point {
            Some(p) => &sweep_data[p][job.seed as usize],
            None => &base[job.seed as usize],
        };
        let start = Instant::now();
        let outcome = train(contender, data, cfg.budget, job.lr, job.seed)?;
        let model = outcome.as_ref().map(|(m, _)| m.as_ref());
        // A search run without a sweep is also seed 0's result at its rate; with a sweep
        // only its validation loss matters.
        let mut sc = if job.kind == RunKind::Seed || sweep.is_none() {
            scores(model, data)?
        } else {
            Vec::new()
        };
        if let (Some(x), true) = (point_x(job.point), job.kind == RunKind::Seed) {
            // At a sweep point the point's own test set is the score.
            sc.truncate(1);
            sc[0].x = Some(x);
            sc[0].label = x.to_string();
        }
        Ok(RunRecord {
            entry: contender.label.clone(),
            family: contender.entry.family.to_string(),
            kind: job.kind,
            seed: job.seed,
            learning_rate: job.lr,
            x: point_x(job.point),
            val_loss: outcome.as_ref().map(|(_, r)| r.best_loss),
            scores: sc,
            seconds: start.elapsed().as_secs_f64(),
            solo: None,
        })
    };
    let mut records: Vec<RunRecord> = cfg.done.clone();
    // A row's seed runs, once its search has picked the rate, each with its estimated cost:
    // the search runs' mean seconds scaled by the length of the point's sequences (a sweep
    // point's runs train on sequences of their own length).
    let longest = |d: &TaskData| d.train.sequences.iter().map(|s| s.len()).max().unwrap_or(1);
    let base_len = longest(&base[0]) as f64;
    let seeds_of = |row: usize, records: &[RunRecord]| -> Result<Vec<(f64, Job)>> {
        let label = &names[row].label;
        let lr = chosen_lr(&header, records, label)?.expect("every rate was run");
        let searched: Vec<f64> = records
            .iter()
            .filter(|r| &r.entry == label && r.kind == RunKind::Search)
            .map(|r| r.seconds)
            .collect();
        let secs = searched.iter().sum::<f64>() / searched.len().max(1) as f64;
        Ok(jobs_of(label)
            .into_iter()
            .filter(|j| j.0 == RunKind::Seed)
            .map(|(kind, point, seed, _)| {
                let len = point.map_or(base_len, |p| longest(&sweep_data[p][0]) as f64);
                let job = Job {
                    row,
                    kind,
                    point,
                    seed,
                    lr,
                };
                (secs * len / base_len, job)
            })
            .collect())
    };
    // Every search runs before any seed run (a row's seeds wait for its search), the
    // costliest rows' first, so their seeds join the pool early; the seeds then go longest
    // first.
    // Searches rank above every seed run (whose priority is its estimated seconds) by a
    // constant offset, and among themselves by the row's share of the largest row's work:
    // the shares stay within one, where the offset's float keeps their differences.
    const SEARCH_FIRST: f64 = 1e6;
    let most_work = row_work.iter().cloned().fold(f64::MIN_POSITIVE, f64::max);
    let mut initial = Vec::new();
    for (row, c) in names.iter().enumerate() {
        let search: Vec<_> = jobs_of(&c.label)
            .into_iter()
            .filter(|j| j.0 == RunKind::Search)
            .collect();
        if search.is_empty() {
            initial.extend(seeds_of(row, &records)?);
        }
        initial.extend(search.into_iter().map(|(kind, point, seed, lr)| {
            let job = Job {
                row,
                kind,
                point,
                seed,
                lr,
            };
            (SEARCH_FIRST + row_work[row] / most_work, job)
        }));
    }
    parallel::run_pool(
        rayon::current_num_threads(),
        initial,
        run,
        |job| {
            let stage = match (job.kind, job.point, &sweep) {
                (RunKind::Search, ..) => format!("lr {}", job.lr),
                (_, Some(p), Some((var, points))) => {
                    format!("{var}={}, seed {}", points[p].0, job.seed)
                }
                _ => format!("seed {}", job.seed),
            };
            (progress.borrow_mut())(&Event::Started {
                entry: names[job.row].label.clone(),
                stage,
            })
        },
        |job, r| {
            let r = r?;
            (progress.borrow_mut())(&Event::Finished(r.clone()));
            records.push(r);
            let label = &names[job.row].label;
            let searched = cfg.learning_rates.iter().all(|&lr| {
                records
                    .iter()
                    .any(|r| r.is(label, RunKind::Search, 0, lr, None))
            });
            if job.kind == RunKind::Search && searched {
                seeds_of(job.row, &records)
            } else {
                Ok(Vec::new())
            }
        },
    )?;
    // Timed alone, after every other run, so that nothing shares the machine with them.
    for contender in &names {
        let name = &contender.label;
        let lr = chosen_lr(&header, &records, name)?.expect("every rate was run");
        if !records
            .iter()
            .any(|r| r.is(name, RunKind::Solo, 0, lr, None))
        {
            let r = solo(cfg, contender, &base[0], lr)?;
            (progress.borrow_mut())(&Event::Finished(r.clone()));
            records.push(r);
        }
    }
    Ok(record::comparison(&header, &records))
}

/// Speed and memory of one short run alone: the runs above shared the machine, so their
/// own timings would say more about the schedule than about the model.
fn solo(cfg: &CompareConfig, contender: &Contender, data: &TaskData, lr: f64) -> Result<RunRecord> {
    let (updates, seconds) = match cfg.budget {
        Budget::Updates(n) => (n.min(SOLO_UPDATES), SOLO_SECONDS),
        Budget::Seconds(s) => (SOLO_UPDATES, s.min(SOLO_SECONDS)),
    };
    let mut solo = train_config(data, Budget::Updates(updates), lr, 0);
    solo.max_seconds = seconds;
    let start = Instant::now();
    /// Training tokens per second, and the model's parameters, state floats and inference
    /// tokens per second; both `None` when the run diverged.
    type Timed = (Option<f64>, Option<(usize, usize, f64)>);
    let timed = || -> Result<Timed> {
        let Some((mut m, report)) = train_with(contender, data, &solo)? else {
            return Ok((None, None));
        };
        let inference = inference_speed(m.as_mut(), data)?;
        Ok((
            Some(report.tokens_per_second),
            Some((m.params().data().len(), m.state_size(), inference)),
        ))
    };
    let (outcome, peak) = match &cfg.memory {
        Some(probe) => {
            let (r, mib) = probe.measure(timed);
            (r?, Some(mib))
        }
        None => (timed()?, None),
    };
    let (train_tps, model) = outcome;
    // A diverged timing run still needs the model's size for the row.
    let (params, state_floats, inference) = match model {
        Some(m) => m,
        None => {
            let m = contender.entry.create::<f32>(
                contender.params.as_deref(),
                &data.train.cast::<f32>().io,
                0,
            )?;
            (m.params().data().len(), m.state_size(), f64::NAN)
        }
    };
    Ok(RunRecord {
        entry: contender.label.clone(),
        family: contender.entry.family.to_string(),
        kind: RunKind::Solo,
        seed: 0,
        learning_rate: lr,
        x: None,
        val_loss: None,
        scores: Vec::new(),
        seconds: start.elapsed().as_secs_f64(),
        solo: Some(SoloRecord {
            params,
            state_floats,
            train_tokens_per_second: train_tps,
            inference_tokens_per_second: inference,
            peak_heap_mib: peak,
        }),
    })
}
