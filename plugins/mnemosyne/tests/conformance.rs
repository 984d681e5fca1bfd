//! MNEMOSYNE passes the conformance suite over every memory, update rule, gate, chunk size
//! and sidecar size the suite draws.

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn mnemosyne_conforms() {
    // Name the crate so its registration is linked.
    let _ = mnnn_mnemosyne::Mnemosyne;
    mnnn_conformance::assert_conforms("mnemosyne");
}
