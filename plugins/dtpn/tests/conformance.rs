//! DTPN against the whole conformance suite (both compat modes are drawn from its ranges).

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

/// Names the crate so its registration is linked into this test binary.
#[test]
fn the_entry_is_registered() {
    let e = mnnn_core::registry::find("dtpn").unwrap();
    assert_eq!(e.name, <mnnn_dtpn::Dtpn as mnnn_core::Architecture>::NAME);
    assert!(e.import_reference.is_some());
}

#[test]
fn conforms() {
    mnnn_conformance::assert_conforms("dtpn");
}
