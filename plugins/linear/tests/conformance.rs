//! The baseline passes the conformance suite too.

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn linear_conforms() {
    let _ = mnnn_linear::Linear;
    mnnn_conformance::assert_conforms("linear");
}
