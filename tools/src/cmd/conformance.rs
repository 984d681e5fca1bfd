//! `mnnn conformance`.

use super::CmdResult;
use crate::Failure;
use mnnn_conformance::{Suite, table};

/// Runs the suite on the named entries (all of them with `all` or no names).
pub fn run(names: &[String], all: bool, cases: u32, json: bool) -> CmdResult {
    let names: Vec<String> = if all || names.is_empty() {
        mnnn_zoo::entries()
            .iter()
            .map(|e| e.name.to_string())
            .collect()
    } else {
        names.to_vec()
    };
    let suite = Suite::new().cases(cases).presets(mnnn_zoo::presets());
    let mut reports = Vec::new();
    for n in &names {
        if !json {
            eprintln!("checking {n} ({cases} cases per property)");
        }
        reports.push(suite.check(n)?);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("reports serialise")
        );
    } else {
        print!("{}", table(&reports));
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.entry.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "not conforming: {}",
            failed.join(", ")
        )))
    }
}
