//! What `diagnostics()` returns is what the entry declares (`Architecture::DIAGNOSTICS`, the
//! names `mnnn info` shows): every declared name, once, no other, the same names before and
//! after a stream, and finite values. A declared name with `<k>` in it stands for a family
//! (`head_activation_<k>`: one per head), matched by any non-negative integer in its place.

use super::{Check, model, run};
use crate::case::Case;
use mnnn_core::registry::Entry;

/// Whether `name` is an instance of the declared `pattern`.
fn instance(pattern: &str, name: &str) -> bool {
    match pattern.split_once("<k>") {
        None => pattern == name,
        Some((head, tail)) => name
            .strip_prefix(head)
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// The returned names against the declared ones: `Err` names the first mismatch.
fn matches(declared: &[&str], names: &[&str]) -> Check {
    for (k, n) in names.iter().enumerate() {
        if names[..k].contains(n) {
            return Err(format!("diagnostic '{n}' is returned twice"));
        }
        if !declared.iter().any(|p| instance(p, n)) {
            return Err(format!(
                "diagnostic '{n}' is returned but not declared (declared: {declared:?})"
            ));
        }
    }
    for p in declared {
        if !names.iter().any(|n| instance(p, n)) {
            return Err(format!(
                "diagnostic '{p}' is declared but not returned (returned: {names:?})"
            ));
        }
    }
    Ok(())
}

/// The property on one case (f64).
pub fn check(entry: &Entry, case: &Case) -> Check {
    let mut m = model::<f64>(entry, case, case.seed)?;
    let fresh: Vec<&str> = m.diagnostics().iter().map(|d| d.name).collect();
    matches(entry.diagnostics, &fresh).map_err(|e| format!("fresh model: {e}"))?;
    let x = case.inputs::<f64>("diagnostics", case.len, case.input);
    run(m.as_mut(), &x, case.output)?;
    let after = m.diagnostics();
    let names: Vec<&str> = after.iter().map(|d| d.name).collect();
    if names != fresh {
        return Err(format!(
            "the diagnostics changed names over a stream: {fresh:?}, then {names:?}"
        ));
    }
    if let Some(d) = after.iter().find(|d| !d.value.is_finite()) {
        return Err(format!(
            "diagnostic '{}' is {} after {} steps",
            d.name, d.value, case.len
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_pattern_matches_its_members_only() {
        assert!(instance("head_activation_<k>", "head_activation_0"));
        assert!(instance("head_activation_<k>", "head_activation_12"));
        assert!(!instance("head_activation_<k>", "head_activation_"));
        assert!(!instance("head_activation_<k>", "head_activation_x"));
        assert!(!instance("head_activation_<k>", "manifold_energy_0"));
        assert!(instance("cross_head_flow", "cross_head_flow"));
        assert!(!instance("cross_head_flow", "cross_head_flow_0"));
    }

    #[test]
    fn missing_extra_and_repeated_names_are_named() {
        let declared = ["a", "b_<k>"];
        assert!(matches(&declared, &["a", "b_0", "b_1"]).is_ok());
        let miss = matches(&declared, &["b_0"]).unwrap_err();
        assert!(miss.contains("'a' is declared but not returned"), "{miss}");
        let none = matches(&declared, &["a"]).unwrap_err();
        assert!(none.contains("'b_<k>' is declared"), "{none}");
        let extra = matches(&declared, &["a", "b_0", "c"]).unwrap_err();
        assert!(
            extra.contains("'c' is returned but not declared"),
            "{extra}"
        );
        let twice = matches(&declared, &["a", "a", "b_0"]).unwrap_err();
        assert!(twice.contains("'a' is returned twice"), "{twice}");
    }
}
