//! Both baselines pass the conformance suite.

#[global_allocator]
static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;

#[test]
fn lstm_conforms() {
    let _ = mnnn_rnn::Lstm;
    mnnn_conformance::assert_conforms("lstm");
}

#[test]
fn gru_conforms() {
    mnnn_conformance::assert_conforms("gru");
}
