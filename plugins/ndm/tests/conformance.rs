//! The conformance suite on NDM (the suite draws the variant and the compat mode).

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

/// Names the crate so its registration is linked into this test binary.
#[test]
fn the_entry_is_registered() {
    let e = mnnn_core::registry::find("ndm").unwrap();
    assert_eq!(e.name, <mnnn_ndm::Ndm as mnnn_core::Architecture>::NAME);
    assert_eq!(e.family, mnnn_core::Family::Cousin);
}

#[test]
fn conforms() {
    mnnn_conformance::assert_conforms("ndm");
}
