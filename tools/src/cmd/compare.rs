//! `mnnn compare`.

use super::CmdResult;
use crate::Failure;
use indicatif::{ProgressBar, ProgressStyle};
use mnnn_zoo::compare::{Budget, CompareConfig, Comparison, compare};
use mnnn_zoo::tasks::Task;
use std::fmt::Write as _;
use std::path::Path;

/// What the command was asked.
pub struct Args<'a> {
    /// Entry names (empty: all).
    pub names: &'a [String],
    /// Task name.
    pub task: &'a str,
    /// A CSV series to forecast instead of a named task, with its columns.
    pub csv: Option<(&'a Path, &'a [String])>,
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
    /// JSON on stdout instead of the table.
    pub json: bool,
}

fn table(c: &Comparison) -> String {
    let mut s = String::new();
    let labels: Vec<String> = c.rows[0].points.iter().map(|p| p.label.clone()).collect();
    let head: Vec<String> = if labels.len() == 1 {
        vec![format!("{} (mean ± sd)", c.metric.name())]
    } else {
        labels
            .iter()
            .map(|l| format!("{}={l}", c.sweep.as_deref().unwrap_or("x")))
            .collect()
    };
    let _ = write!(s, "{:<16} {:<9}", "entry", "family");
    for h in &head {
        let _ = write!(s, " {h:>17}");
    }
    let _ = writeln!(
        s,
        " {:>8} {:>7} {:>7} {:>11} {:>11} {:>9}",
        "params", "state", "lr", "train tok/s", "infer tok/s", "peak MiB"
    );
    for r in &c.rows {
        // A control is not a member of the family: marked, and explained below the table.
        let family = if r.family == "control" {
            format!("{}*", r.family)
        } else {
            r.family.clone()
        };
        let _ = write!(s, "{:<16} {:<9}", r.entry, family);
        for p in &r.points {
            let _ = write!(s, " {:>17}", format!("{:.3} ± {:.3}", p.mean, p.sd));
        }
        let _ = writeln!(
            s,
            " {:>8} {:>7} {:>7} {:>11.0} {:>11.0} {:>9}",
            r.params,
            r.state_floats,
            r.learning_rate,
            r.train_tokens_per_second,
            r.inference_tokens_per_second,
            r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.1}"))
        );
    }
    if c.rows.iter().any(|r| r.family == "control") {
        let _ = writeln!(
            s,
            "* not a member: a control that fails the membership test (see `mnnn conformance <entry>`)"
        );
    }
    s
}

fn csv(c: &Comparison) -> String {
    let mut s = String::from(
        "entry,family,point,x,seed,metric,value,rmse_mean,params,state_floats,learning_rate,train_tokens_per_second,inference_tokens_per_second,peak_rss_mib\n",
    );
    for r in &c.rows {
        for p in &r.points {
            for (seed, v) in p.values.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{seed},{},{v},{},{},{},{},{},{},{}",
                    r.entry,
                    r.family,
                    p.label,
                    p.x.map_or(String::new(), |x| x.to_string()),
                    c.metric.name(),
                    p.rmse.map_or(String::new(), |x| x.to_string()),
                    r.params,
                    r.state_floats,
                    r.learning_rate,
                    r.train_tokens_per_second,
                    r.inference_tokens_per_second,
                    r.peak_rss_mib.map_or(String::new(), |m| m.to_string())
                );
            }
        }
    }
    s
}

/// Runs the comparison and writes table, CSV, JSON and SVG.
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
    let task = match a.csv {
        Some((path, columns)) if !columns.is_empty() => Task::Csv {
            path: path.to_path_buf(),
            columns: columns.to_vec(),
        },
        Some(_) => {
            return Err(Failure::usage(
                "--csv needs --columns naming the series to forecast",
            ));
        }
        None => Task::named(a.task, a.full).map_err(|e| Failure::usage(e.to_string()))?,
    };
    let mut cfg = CompareConfig::new(names, task);
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
    cfg.validate().map_err(|e| Failure::usage(e.to_string()))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("template")
            .progress_chars("=> "),
    );
    let result = compare(&cfg, &mut |e| {
        bar.set_length(e.total as u64);
        bar.set_position(e.done as u64);
        bar.set_message(format!("{}: {}", e.entry, e.stage));
    })?;
    bar.finish_and_clear();
    std::fs::create_dir_all(a.out).map_err(|e| mnnn_core::Error::io(a.out, e))?;
    let write = |name: &str, text: &str| -> Result<(), Failure> {
        let p = a.out.join(name);
        mnnn_core::persist::write_atomic(&p, text.as_bytes()).map_err(Failure::from)
    };
    write("compare.csv", &csv(&result))?;
    write(
        "compare.json",
        &serde_json::to_string_pretty(&result).expect("serialises"),
    )?;
    let svg = a.out.join("compare.svg");
    crate::chart::write_svg(&result, &svg)
        .map_err(|e| Failure::failed(format!("{}: {e}", svg.display())))?;
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
        println!(
            "task {} · {} seeds · {budget} per run · learning rate searched over {:?}",
            result.task, result.seeds, cfg.learning_rates
        );
        print!("{}", table(&result));
        println!(
            "wrote {}/compare.csv, compare.json, compare.svg",
            a.out.display()
        );
    }
    Ok(())
}
