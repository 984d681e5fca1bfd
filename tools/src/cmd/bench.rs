//! `mnnn bench`.

use super::CmdResult;
use crate::Failure;
use mnnn_zoo::bench::{Flatness, Speed, flatness, speed};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    speeds: Vec<Speed>,
    memory: Vec<Flatness>,
}

/// Measures speeds over the grid and memory flatness over the stream lengths.
pub fn run(
    names: &[String],
    hidden: &[usize],
    batch: &[usize],
    len: usize,
    stream: &[usize],
    json: bool,
) -> CmdResult {
    if hidden.is_empty()
        || batch.is_empty()
        || hidden.contains(&0)
        || batch.contains(&0)
        || len == 0
    {
        return Err(Failure::usage(
            "--hidden, --batch and --len take sizes of at least 1",
        ));
    }
    let entries: Vec<&mnnn_core::Entry> = if names.is_empty() {
        mnnn_zoo::entries()
            .into_iter()
            .filter(|e| e.family != mnnn_core::Family::Control)
            .collect()
    } else {
        names
            .iter()
            .map(|n| mnnn_zoo::find(n))
            .collect::<Result<_, _>>()?
    };
    let mut stream = stream.to_vec();
    stream.sort_unstable();
    let mut report = Report {
        speeds: Vec::new(),
        memory: Vec::new(),
    };
    for e in &entries {
        let has_hidden = e.param_ranges.iter().any(|r| r.name == "hidden");
        let widths: Vec<Option<usize>> = if has_hidden {
            hidden.iter().map(|h| Some(*h)).collect()
        } else {
            vec![None]
        };
        for h in widths {
            for &b in batch {
                if !json {
                    eprintln!(
                        "measuring {} hidden {} batch {b}",
                        e.name,
                        h.map_or("-".into(), |h| h.to_string())
                    );
                }
                report.speeds.push(speed(e, h, b, len)?);
            }
        }
        if !stream.is_empty() {
            if let Some(f) = flatness(e, &stream)? {
                report.memory.push(f);
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialises")
        );
        return Ok(());
    }
    println!(
        "{:<10} {:>6} {:>5} {:>9} {:>11} {:>14} {:>14} {:>14}",
        "entry",
        "hidden",
        "batch",
        "params",
        "state bytes",
        "step tok/s",
        "chunked tok/s",
        "train tok/s"
    );
    for s in &report.speeds {
        println!(
            "{:<10} {:>6} {:>5} {:>9} {:>11} {:>14.0} {:>14.0} {:>14.0}",
            s.entry,
            s.hidden.map_or("-".into(), |h| h.to_string()),
            s.batch,
            s.params,
            s.state_bytes,
            s.step_tokens_per_second,
            s.chunked_tokens_per_second,
            s.train_tokens_per_second
        );
    }
    if !report.memory.is_empty() {
        println!("\npeak RSS (MiB) while streaming, batch 1, default size:");
        print!("{:<10}", "entry");
        for (n, _) in &report.memory[0].points {
            print!(" {:>10}", format!("{n} tok"));
        }
        println!();
        for f in &report.memory {
            print!("{:<10}", f.entry);
            for (_, mib) in &f.points {
                print!(" {mib:>10.1}");
            }
            println!();
        }
    }
    Ok(())
}
