//! The sliding window passes the suite; the growing cache fails on no-growth and nowhere
//! else.

use mnnn_conformance::{Outcome, Property, Suite, table};

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn sliding_window_conforms() {
    let _ = mnnn_attention::SlidingWindow;
    mnnn_conformance::assert_conforms("sliding-window");
}

#[test]
fn attention_fails_only_no_growth() {
    let report = Suite::new().check("attention").unwrap();
    let t = table(std::slice::from_ref(&report));
    for p in &report.properties {
        match (p.property, &p.outcome) {
            (Property::NoGrowth, Outcome::Fail(why)) => {
                assert!(why.contains("grew"), "{why}");
            }
            (Property::NoGrowth, _) => panic!("the growing cache passed no-growth:\n{t}"),
            (_, Outcome::Pass) => {}
            _ => panic!("attention fails more than no-growth:\n{t}"),
        }
    }
}
