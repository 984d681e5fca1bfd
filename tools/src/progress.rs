//! Progress on stderr: a bar over epochs for `train`; for `compare`, a bar weighted by the
//! estimated work of each run with an ETA on a terminal, or one line per finished run
//! elsewhere (a log file, CI, `nohup`), so a long comparison is never silent.

use indicatif::{ProgressBar, ProgressStyle};
use mnnn_core::Progress;
use mnnn_zoo::compare::{Event, Header, RunKind, RunRecord};
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::time::Instant;

/// A bar over parameter updates showing the speed, the latest losses and the validation
/// score.
pub struct UpdateBar {
    bar: ProgressBar,
}

impl UpdateBar {
    /// A bar for a budget of `max_updates` (a spinner when 0: no update budget).
    pub fn new(max_updates: usize) -> Self {
        let bar = ProgressBar::new(max_updates as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} update {pos}/{len} [{bar:30}] {msg} ({elapsed})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        UpdateBar { bar }
    }

    /// Records one validation point.
    pub fn update(&self, p: &Progress) {
        if p.max_updates > 0 {
            self.bar.set_length(p.max_updates as u64);
        }
        self.bar.set_position(p.update as u64);
        let val = p.val_loss.map_or(String::new(), |v| format!(" val {v:.4}"));
        let score = p
            .val_score
            .map_or(String::new(), |v| format!(" score {v:.3}"));
        let phase = if p.refit { "refit " } else { "" };
        self.bar.set_message(format!(
            "{phase}{:.0} upd/s train {:.4}{val}{score} best@{}",
            p.updates_per_second, p.train_loss, p.best_update
        ));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// How far a comparison is, in estimated seconds rather than runs: an entry's runs can
/// differ a hundredfold in cost.
#[derive(Default)]
pub struct WorkLeft {
    /// `(row, runs to do, estimated work per run)` from the plan.
    plan: Vec<(String, usize, f64)>,
    /// Per row: runs finished and their seconds.
    finished: HashMap<String, (usize, f64)>,
}

impl WorkLeft {
    /// From the plan's `(row, runs, work per run)`.
    pub fn new(plan: Vec<(String, usize, f64)>) -> Self {
        WorkLeft {
            plan,
            finished: HashMap::new(),
        }
    }

    /// Counts a finished run of `row` that took `seconds`.
    pub fn finish(&mut self, row: &str, seconds: f64) {
        let f = self.finished.entry(row.to_string()).or_default();
        f.0 += 1;
        f.1 += seconds;
    }

    /// Runs finished and planned.
    pub fn runs(&self) -> (usize, usize) {
        let done = self.finished.values().map(|f| f.0).sum();
        (done, self.plan.iter().map(|p| p.1).sum())
    }

    /// The fraction of the work done: a row's run costs its measured mean once one has
    /// finished, and otherwise its estimate scaled by the seconds per unit of estimate
    /// measured so far.
    pub fn fraction(&self) -> f64 {
        let (secs, work): (f64, f64) = self
            .plan
            .iter()
            .filter_map(|(row, _, w)| self.finished.get(row).map(|f| (f.1, f.0 as f64 * w)))
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        let per_work = if work > 0.0 { secs / work } else { 1.0 };
        let (mut done, mut total) = (0.0, 0.0);
        for (row, runs, w) in &self.plan {
            let f = self.finished.get(row).copied().unwrap_or_default();
            let cost = if f.0 > 0 {
                f.1 / f.0 as f64
            } else {
                w * per_work
            };
            done += f.0.min(*runs) as f64 * cost;
            total += *runs as f64 * cost;
        }
        if total > 0.0 {
            (done / total).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// `1h02m`, `3m05s`, `12s`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// Shows a comparison's progress.
pub struct CompareProgress {
    bar: Option<ProgressBar>,
    start: Instant,
    header: Option<Header>,
    work: WorkLeft,
}

impl CompareProgress {
    /// A bar on a terminal; log lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1000);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {percent:>3}% {msg} ({elapsed})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        CompareProgress {
            bar,
            start: Instant::now(),
            header: None,
            work: WorkLeft::default(),
        }
    }

    fn eta(&self) -> String {
        let f = self.work.fraction();
        if f <= 0.0 {
            return "ETA after the first run".into();
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        format!("ETA {}", duration(elapsed * (1.0 - f) / f))
    }

    /// Hears one event.
    pub fn event(&mut self, e: &Event) {
        match e {
            Event::Plan { header, work } => {
                self.header = Some(header.clone());
                self.work = WorkLeft::new(work.clone());
                let (_, total) = self.work.runs();
                self.log(format!(
                    "compare: {} runs on {} over {} entries",
                    total,
                    header.task,
                    header.entries.len()
                ));
            }
            Event::Started { entry, stage } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{entry}: {stage} · {}", self.eta()));
                }
            }
            Event::Finished(r) => self.finished(r),
        }
    }

    fn finished(&mut self, r: &RunRecord) {
        if r.kind != RunKind::Solo {
            self.work.finish(&r.entry, r.seconds);
        }
        let (done, total) = self.work.runs();
        match &self.bar {
            Some(bar) => {
                bar.set_position((self.work.fraction() * 1000.0) as u64);
            }
            None => {
                let what = self
                    .header
                    .as_ref()
                    .map_or(r.entry.clone(), |h| r.describe(h));
                self.log(format!("[{done}/{total}] {what} · {}", self.eta()));
            }
        }
    }

    fn log(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_weighted_by_cost_and_refined_by_measured_seconds() {
        // One cheap row of 4 runs, one row estimated 9 times dearer per run.
        let mut w = WorkLeft::new(vec![("a".into(), 4, 1.0), ("b".into(), 4, 9.0)]);
        assert_eq!(w.fraction(), 0.0);
        w.finish("a", 1.0);
        // By estimate: 1 of 4 + 36 units done = 1/40, not 1/8 of the runs.
        assert!(
            (w.fraction() - 1.0 / 40.0).abs() < 1e-12,
            "{}",
            w.fraction()
        );
        // Row b turns out as cheap as a: the estimate gives way to the measurement.
        w.finish("b", 1.0);
        assert!((w.fraction() - 2.0 / 8.0).abs() < 1e-12, "{}", w.fraction());
        assert_eq!(w.runs(), (2, 8));
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(185.0), "3m05s");
    }
}
