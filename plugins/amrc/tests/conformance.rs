//! AMRC passes the conformance suite, in both compat modes (the suite draws `compat`).

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn amrc_conforms() {
    // Name the crate so its registration is linked.
    let _ = mnnn_amrc::Amrc;
    mnnn_conformance::assert_conforms("amrc");
}

#[test]
fn amrc_conforms_in_reference_mode_on_many_cases() {
    use mnnn_conformance::{Property, Suite};
    let r = Suite::new().cases(48).check("amrc").unwrap();
    assert!(
        r.passed(),
        "{}",
        mnnn_conformance::table(std::slice::from_ref(&r))
    );
    assert!(
        r.properties
            .iter()
            .all(|p| p.property != Property::Gradients
                || p.outcome == mnnn_conformance::Outcome::Pass)
    );
}
