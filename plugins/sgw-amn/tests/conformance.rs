//! The conformance suite on SGW-AMN (both compat modes: the suite draws `compat`).

use mnnn_sgw_amn as _;

#[global_allocator]
static A: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn sgw_amn_conforms() {
    mnnn_conformance::assert_conforms("sgw-amn");
}

/// A longer run, by hand: `cargo test -p mnnn-sgw-amn --test conformance -- --ignored`.
#[test]
#[ignore]
fn sgw_amn_conforms_on_many_cases() {
    let report = mnnn_conformance::Suite::new()
        .cases(128)
        .check("sgw-amn")
        .unwrap();
    println!("{}", mnnn_conformance::table(std::slice::from_ref(&report)));
    assert!(report.passed());
}
