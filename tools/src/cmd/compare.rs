//! `mnnn compare`.

use super::CmdResult;
use crate::Failure;
use crate::progress::CompareProgress;
use mnnn_zoo::compare::{
    Budget, CompareConfig, Comparison, Event, Header, RunRecord, compare, comparison, read_jsonl,
};
use mnnn_zoo::tasks::Task;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A user's CSV file to compare on.
pub struct CsvTask<'a> {
    /// The file.
    pub path: &'a Path,
    /// Columns to forecast one step ahead (`--columns`).
    pub columns: &'a [String],
    /// Input columns (`--inputs`, with `--targets`).
    pub inputs: &'a [String],
    /// Target columns.
    pub targets: &'a [String],
}

/// What the command was asked.
pub struct Args<'a> {
    /// Entry or preset names (empty: all entries).
    pub names: &'a [String],
    /// Task name.
    pub task: &'a str,
    /// A CSV file instead of a named task.
    pub csv: Option<CsvTask<'a>>,
    /// The thorough task settings (the passkey sweep to 256K).
    pub full: bool,
    /// Seeds.
    pub seeds: usize,
    /// Update budget.
    pub budget_steps: Option<usize>,
    /// Seconds budget.
    pub budget_seconds: Option<f64>,
    /// Output directory.
    pub out: &'a Path,
    /// Take over the runs already in `out`.
    pub resume: bool,
    /// JSON on stdout instead of the table.
    pub json: bool,
}

/// The table of a comparison (Markdown pipes, widths from the cells).
pub fn table(c: &Comparison) -> String {
    let Some(first) = c.rows.first() else {
        return "(no entry has finished a run yet)\n".into();
    };
    let metric = c.metric.name();
    let heads: Vec<String> = if first.points.len() == 1 {
        let spread = if c.seeds > 1 { " (mean ± sd)" } else { "" };
        vec![format!("{metric}{spread}")]
    } else {
        first
            .points
            .iter()
            .map(|p| format!("{}={}", c.sweep.as_deref().unwrap_or("x"), p.label))
            .collect()
    };
    let numbers = [
        "params",
        "state",
        "lr",
        "train tok/s",
        "infer tok/s",
        "peak MiB",
    ];
    let mut header: Vec<&str> = vec!["entry", "family"];
    header.extend(heads.iter().map(String::as_str));
    header.extend(numbers);
    let mut right: Vec<&str> = heads.iter().map(String::as_str).collect();
    right.extend(numbers);
    let mut t = crate::table::new(&header, &right);
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.0}")
        } else {
            "-".into()
        }
    };
    for r in &c.rows {
        // A control is not a member of the family: marked, and explained below the table.
        let mut cells = vec![
            r.entry.clone(),
            if r.family == "control" {
                format!("{}*", r.family)
            } else {
                r.family.clone()
            },
        ];
        for p in &r.points {
            cells.push(match (p.values.len(), p.mean.is_finite()) {
                (0, _) => "…".into(),
                (_, false) => "diverged".into(),
                (1, true) => format!("{:.3}", p.mean),
                _ => format!("{:.3} ± {:.3}", p.mean, p.sd),
            });
        }
        cells.extend([
            if r.params > 0 {
                r.params.to_string()
            } else {
                "-".into()
            },
            r.state_floats.to_string(),
            r.learning_rate.to_string(),
            num(r.train_tokens_per_second),
            num(r.inference_tokens_per_second),
            r.peak_heap_mib.map_or("-".into(), |m| format!("{m:.1}")),
        ]);
        t.add_row(cells);
    }
    let mut s = format!("{t}\n");
    if c.rows.iter().any(|r| r.family == "control") {
        s += "* not a member: a control that fails the membership test (see `mnnn conformance <entry>`)\n";
    }
    s
}

/// One CSV line per test set a finished run was scored on.
const CSV_HEADER: &str = "entry,family,kind,point,x,seed,learning_rate,metric,value,rmse,seconds\n";

fn csv_lines(h: &Header, r: &RunRecord) -> String {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    r.scores
        .iter()
        .map(|s| {
            format!(
                "{},{},{:?},{},{},{},{},{},{},{},{}\n",
                r.entry,
                r.family,
                r.kind,
                s.label,
                opt(s.x),
                r.seed,
                r.learning_rate,
                h.metric.name(),
                opt(s.value),
                opt(s.rmse),
                r.seconds
            )
        })
        .collect()
}

/// A hook for tests of an interrupted comparison: with `MNNN_TEST_COMPARE_HOLD=N` set, once
/// `N` runs are recorded (on disk) the comparison makes no more progress and waits to be
/// interrupted, so that however fast the machine, the interrupt comes mid-job.
pub const HOLD_VAR: &str = "MNNN_TEST_COMPARE_HOLD";

fn hold_if_asked(recorded: usize) {
    let hold = std::env::var(HOLD_VAR)
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    if hold.is_some_and(|n| recorded >= n) {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// The results directory as the comparison fills it: `compare.jsonl` (the header, then a
/// line per finished run, read back by `--resume`) and `compare.csv` (a line per score),
/// both appended and flushed as each run finishes.
struct Sink {
    dir: PathBuf,
    jsonl: Option<File>,
    csv: Option<File>,
    /// Records taken over from an earlier comparison.
    resumed: Vec<RunRecord>,
}

impl Sink {
    fn open(&mut self, header: &Header) -> Result<(), Failure> {
        fn io(p: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
            move |e| Failure::from(mnnn_core::Error::io(p, e))
        }
        let (jp, cp) = (self.dir.join("compare.jsonl"), self.dir.join("compare.csv"));
        let mut jsonl = File::create(&jp).map_err(io(&jp))?;
        let mut csv = File::create(&cp).map_err(io(&cp))?;
        let mut j = serde_json::to_string(header).expect("serialises") + "\n";
        let mut c = CSV_HEADER.to_string();
        for r in &self.resumed {
            j += &(serde_json::to_string(r).expect("serialises") + "\n");
            c += &csv_lines(header, r);
        }
        jsonl.write_all(j.as_bytes()).map_err(io(&jp))?;
        csv.write_all(c.as_bytes()).map_err(io(&cp))?;
        (self.jsonl, self.csv) = (Some(jsonl), Some(csv));
        Ok(())
    }

    fn append(&mut self, header: &Header, r: &RunRecord) -> Result<(), Failure> {
        let line = serde_json::to_string(r).expect("serialises") + "\n";
        let (jp, cp) = (self.dir.join("compare.jsonl"), self.dir.join("compare.csv"));
        if let Some(f) = &mut self.jsonl {
            f.write_all(line.as_bytes())
                .map_err(|e| mnnn_core::Error::io(&jp, e))?;
        }
        if let Some(f) = &mut self.csv {
            f.write_all(csv_lines(header, r).as_bytes())
                .map_err(|e| mnnn_core::Error::io(&cp, e))?;
        }
        Ok(())
    }
}

/// A comparison's header and every run finished so far.
type SoFar = (Header, Vec<RunRecord>);

/// The task the arguments name.
fn task(a: &Args) -> Result<Task, Failure> {
    let Some(csv) = &a.csv else {
        // The error names the task and the known ones; it is the user's input, not data.
        return Task::named(a.task, a.full).map_err(|e| match e {
            mnnn_core::Error::Data(m) => Failure::usage(m),
            other => Failure::usage(other.to_string()),
        });
    };
    match (
        csv.columns.is_empty(),
        csv.inputs.is_empty(),
        csv.targets.is_empty(),
    ) {
        (false, true, true) => Ok(Task::Csv {
            path: csv.path.to_path_buf(),
            columns: csv.columns.to_vec(),
        }),
        (true, false, false) => Ok(Task::CsvColumns {
            path: csv.path.to_path_buf(),
            inputs: csv.inputs.to_vec(),
            targets: csv.targets.to_vec(),
        }),
        _ => Err(Failure::usage(
            "--csv needs either --columns (series to forecast one step ahead) or --inputs with --targets",
        )),
    }
}

/// Writes compare.json and compare.svg of `c` into `dir`.
fn write_summary(dir: &Path, c: &Comparison) -> Result<(), Failure> {
    let json = serde_json::to_string_pretty(c).expect("serialises");
    mnnn_core::persist::write_atomic(&dir.join("compare.json"), json.as_bytes())?;
    let svg = dir.join("compare.svg");
    crate::chart::write_svg(c, &svg).map_err(|e| Failure::failed(format!("{}: {e}", svg.display())))
}

/// Runs the comparison, writing each run as it finishes, then the table, JSON and SVG.
pub fn run(a: Args) -> CmdResult {
    let names: Vec<String> = if a.names.is_empty() {
        // Every entry, controls included: the attention control is the row that shows what
        // the membership rule excludes (the table marks it).
        mnnn_zoo::entries()
            .iter()
            .map(|e| e.name.to_string())
            .collect()
    } else {
        a.names.to_vec()
    };
    let mut cfg = CompareConfig::new(names, task(&a)?);
    cfg.seeds = a.seeds;
    cfg.budget = match (a.budget_steps, a.budget_seconds) {
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                "give --budget-steps or --budget-seconds, not both",
            ));
        }
        (None, Some(s)) => Budget::Seconds(s),
        (Some(n), None) => Budget::Updates(n),
        (None, None) => cfg.budget,
    };
    cfg.memory = Some(crate::alloc::PROBE);
    cfg.validate().map_err(|e| Failure::usage(e.to_string()))?;
    if a.out.exists() && !a.out.is_dir() {
        return Err(Failure::usage(format!(
            "--out {} is a file; give a directory for compare.jsonl, .csv, .json and .svg",
            a.out.display()
        )));
    }
    if a.resume {
        let p = a.out.join("compare.jsonl");
        let text = std::fs::read_to_string(&p).map_err(|e| mnnn_core::Error::io(&p, e))?;
        let (h, records) = read_jsonl(&text, &p.display().to_string())?;
        cfg.done = records;
        cfg.done_header = Some(h);
    }
    std::fs::create_dir_all(a.out).map_err(|e| mnnn_core::Error::io(a.out, e))?;
    let sink = Arc::new(Mutex::new(Sink {
        dir: a.out.to_path_buf(),
        jsonl: None,
        csv: None,
        resumed: cfg.done.clone(),
    }));
    // What Ctrl-C shows: the header and every record so far.
    let so_far: Arc<Mutex<Option<SoFar>>> = Arc::default();
    {
        let so_far = so_far.clone();
        let dir = a.out.to_path_buf();
        crate::interrupt::on_interrupt(move || {
            let Ok(guard) = so_far.lock() else { return };
            let Some((h, records)) = guard.as_ref() else {
                eprintln!("\ninterrupted before any run finished");
                return;
            };
            let c = comparison(h, records);
            eprintln!(
                "\ninterrupted: the runs that finished, kept in {}",
                dir.display()
            );
            print!("{}", table(&c));
            if let Err(f) = write_summary(&dir, &c) {
                eprintln!("error: {}", f.message);
            }
        });
    }
    let mut progress = CompareProgress::new();
    let mut failure: Option<Failure> = None;
    let result = compare(&cfg, &mut |e| {
        progress.event(e);
        let mut sink = sink.lock().expect("not poisoned");
        let mut shown = so_far.lock().expect("not poisoned");
        let outcome = match e {
            Event::Plan { header, .. } => {
                *shown = Some((header.clone(), cfg.done.clone()));
                sink.open(header)
            }
            Event::Finished(r) => {
                let (h, records) = shown.as_mut().expect("the plan comes first");
                records.push(r.clone());
                sink.append(h, r)
            }
            Event::Started { .. } => Ok(()),
        };
        if let (Err(f), None) = (outcome, &failure) {
            failure = Some(f);
        }
        let n = shown.as_ref().map_or(0, |(_, r)| r.len());
        // Released before a test hold, which Ctrl-C's last words must be able to take.
        drop((sink, shown));
        hold_if_asked(n);
    });
    progress.finish();
    if let Some(f) = failure {
        return Err(f);
    }
    let result = result?;
    write_summary(a.out, &result)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("serialises")
        );
    } else {
        let budget = match result.budget {
            Budget::Updates(n) => format!("{n} updates"),
            Budget::Seconds(s) => format!("{s} s"),
        };
        let seeds = if result.seeds == 1 { "seed" } else { "seeds" };
        println!(
            "task {} · {} {seeds} · {budget} per run · learning rate searched over {:?}",
            result.task, result.seeds, cfg.learning_rates
        );
        print!("{}", table(&result));
        println!(
            "wrote {}/compare.jsonl, compare.csv, compare.json, compare.svg",
            a.out.display()
        );
    }
    Ok(())
}
