//! Every zoo entry passes every property.

use mnnn_conformance::{CountingAllocator, Outcome, Property, Suite, table};
use mnnn_core::Family;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// Every entry passes every property, except a control (a non-member kept for comparison,
/// such as attention with its growing cache), which must fail exactly the membership rule it
/// breaks, `no-growth`, and nothing else.
#[test]
fn every_zoo_entry_conforms() {
    let suite = Suite::new().presets(mnnn_zoo::presets());
    let reports: Vec<_> = mnnn_zoo::entries()
        .iter()
        .map(|e| suite.check(e.name).expect("registered"))
        .collect();
    assert!(!reports.is_empty());
    let t = table(&reports);
    println!("{t}");
    for r in &reports {
        let family = mnnn_zoo::find(&r.entry).expect("registered").family;
        if family == Family::Control {
            let failed: Vec<Property> = r
                .properties
                .iter()
                .filter(|p| matches!(p.outcome, Outcome::Fail(_)))
                .map(|p| p.property)
                .collect();
            assert_eq!(failed, [Property::NoGrowth], "{}: {t}", r.entry);
        } else {
            assert!(r.passed(), "{}: {t}", r.entry);
        }
    }
}

#[test]
fn assert_conforms_accepts_amrc() {
    mnnn_conformance::assert_conforms("amrc");
}
