//! The autoregressive baseline passes the conformance suite: its memory is the last `p`
//! inputs, a state of fixed size.

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn ar_conforms() {
    let _ = mnnn_ar::Ar;
    mnnn_conformance::assert_conforms("ar");
}
