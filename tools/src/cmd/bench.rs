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
    let cols = [
        "entry",
        "hidden",
        "batch",
        "params",
        "state bytes",
        "step tok/s",
        "chunked tok/s",
        "train tok/s",
    ];
    let mut t = crate::table::new(&cols, &cols[1..]);
    for s in &report.speeds {
        t.add_row(vec![
            s.entry.to_string(),
            s.hidden.map_or("-".into(), |h| h.to_string()),
            s.batch.to_string(),
            s.params.to_string(),
            s.state_bytes.to_string(),
            format!("{:.0}", s.step_tokens_per_second),
            format!("{:.0}", s.chunked_tokens_per_second),
            format!("{:.0}", s.train_tokens_per_second),
        ]);
    }
    println!("{t}");
    println!(
        "(every model built with {} inputs and {} outputs: params exceed `mnnn list`'s, which uses 1 and 1)",
        mnnn_zoo::bench::INPUT,
        mnnn_zoo::bench::OUTPUT
    );
    if !report.memory.is_empty() {
        println!("\npeak RSS (MiB) while streaming, batch 1, default size:");
        let heads: Vec<String> = std::iter::once("entry".to_string())
            .chain(
                report.memory[0]
                    .points
                    .iter()
                    .map(|(n, _)| format!("{n} tok")),
            )
            .collect();
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        let mut t = crate::table::new(&heads, &heads[1..]);
        for f in &report.memory {
            t.add_row(
                std::iter::once(f.entry.to_string())
                    .chain(f.points.iter().map(|(_, mib)| format!("{mib:.1}")))
                    .collect::<Vec<_>>(),
            );
        }
        println!("{t}");
    }
    Ok(())
}
