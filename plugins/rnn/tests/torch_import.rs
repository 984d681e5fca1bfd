//! Imported PyTorch models compute what PyTorch computed: the fixtures under `tools/fixtures`
//! (written by `make_torch_rnn.py`) hold an `nn.LSTM` / `nn.GRU` of two layers with an
//! `nn.Linear` head, and PyTorch's outputs for 3 sequences of 100 steps.

use mnnn_core::reference::build;
use mnnn_core::{Entry, Inputs};
use mnnn_rnn::{Gru, Kind, Lstm, import_torch};
use ndarray::{Array3, s};
use safetensors::SafeTensors;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tools/fixtures/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn array(st: &SafeTensors, name: &str) -> Array3<f32> {
    let v = st.tensor(name).unwrap();
    let data: Vec<f32> = v
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let sh = v.shape();
    Array3::from_shape_vec((sh[0], sh[1], sh[2]), data).unwrap()
}

fn matches_pytorch(kind: Kind, entry: &Entry, name: &str) {
    let (imported, dims) = import_torch(kind, &fixture(name)).unwrap();
    assert_eq!(imported.params, "(hidden: 6, layers: 2)");
    assert_eq!((dims.input, dims.hidden, dims.output), (4, 6, 2));
    let model = build(entry, &imported, &dims).unwrap();
    let bytes = fixture(&format!("{name}_expected"));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (x, y) = (array(&st, "x"), array(&st, "y"));
    assert_eq!(x.dim(), (100, 3, 4));
    let seqs: Vec<Inputs<f32>> = (0..3)
        .map(|b| Inputs::Real(x.slice(s![.., b, ..]).to_owned()))
        .collect();
    let batch = model.predict_batch(&seqs).unwrap();
    for (b, seq) in seqs.iter().enumerate() {
        let want = y.slice(s![.., b, ..]);
        let mut m = model.clone();
        let streamed = m.predict(seq).unwrap();
        for got in [&streamed, &batch[b]] {
            let err = (got - &want).mapv(f32::abs).fold(0.0f32, |a, &v| a.max(v));
            assert!(err <= 1e-5, "{name} sequence {b}: off PyTorch by {err}");
        }
    }
}

#[test]
fn lstm_matches_pytorch() {
    matches_pytorch(Kind::Lstm, &Entry::of::<Lstm>(), "lstm");
}

#[test]
fn gru_matches_pytorch() {
    matches_pytorch(Kind::Gru, &Entry::of::<Gru>(), "gru");
}

#[test]
fn the_wrong_module_is_named() {
    let e = import_torch(Kind::Gru, &fixture("lstm"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nn.GRU needs [3·hidden, hidden]"), "{e}");
}
