//! Every zoo entry passes every property.

use mnnn_conformance::{CountingAllocator, Suite, table};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

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
    assert!(reports.iter().all(|r| r.passed()), "{t}");
}

#[test]
fn assert_conforms_accepts_amrc() {
    mnnn_conformance::assert_conforms("amrc");
}
