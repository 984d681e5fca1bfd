//! The conformance suite on Hyper-AMN (both compat modes: the suite draws `compat`).

use mnnn_hyper_amn as _;

#[global_allocator]
static A: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn hyper_amn_conforms() {
    mnnn_conformance::assert_conforms("hyper-amn");
}

/// A longer run, by hand: `cargo test -p mnnn-hyper-amn --test conformance -- --ignored`.
#[test]
#[ignore]
fn hyper_amn_conforms_on_many_cases() {
    let report = mnnn_conformance::Suite::new()
        .cases(128)
        .check("hyper-amn")
        .unwrap();
    println!("{}", mnnn_conformance::table(std::slice::from_ref(&report)));
    assert!(report.passed());
}
