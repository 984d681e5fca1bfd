//! The conformance suite on PMRC, in both compat modes (the suite draws `compat` and the
//! three switches from the entry's parameter ranges).

use mnnn_pmrc as _; // links the crate, so its registration is present

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn pmrc_conforms() {
    mnnn_conformance::assert_conforms("pmrc");
}

/// The suite with many more cases; run by hand with `--ignored`.
#[test]
#[ignore = "slow: 128 cases per property"]
fn pmrc_conforms_on_many_cases() {
    let report = mnnn_conformance::Suite::new()
        .cases(128)
        .check("pmrc")
        .unwrap();
    println!("{}", mnnn_conformance::table(std::slice::from_ref(&report)));
    assert!(
        report.passed(),
        "{}",
        mnnn_conformance::table(std::slice::from_ref(&report))
    );
}
