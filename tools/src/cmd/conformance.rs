//! `mnnn conformance`.

use super::CmdResult;
use crate::Failure;
use mnnn_conformance::{Outcome, Suite, table};

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
    // Each failing entry with the properties it fails, so the reason is in the last line.
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| {
            let props: Vec<&str> = r
                .properties
                .iter()
                .filter(|p| matches!(p.outcome, Outcome::Fail(_)))
                .map(|p| p.property.name())
                .collect();
            format!("{} fails {}", r.entry, props.join(", "))
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "not conforming: {}",
            failed.join("; ")
        )))
    }
}
