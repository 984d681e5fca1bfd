//! Reading a PyTorch `nn.LSTM` / `nn.GRU` saved with `safetensors.torch.save_file`: its
//! `state_dict` (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` for each
//! layer `k`, optionally under a module prefix such as `rnn.`) plus an `nn.Linear` read-out as
//! `head.weight` and `head.bias`. Sizes and depth come from the shapes.
//!
//! PyTorch stores `W` as `out × in`; the cell keeps `in × out` (rows are read per step), so
//! every matrix is transposed on the way in. The gate blocks are already in PyTorch's order.

use crate::cell::Kind;
use mnnn_core::reference::{Imported, RefDims, transpose};
use mnnn_core::{Error, Result};
use safetensors::{Dtype, SafeTensors};

fn err(msg: impl Into<String>) -> Error {
    Error::Data(msg.into())
}

/// One tensor's shape and values (f32 or f64 in the file, f32 here).
struct Found {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn find(st: &SafeTensors, name: &str) -> Result<Option<Found>> {
    let key = st
        .names()
        .into_iter()
        .find(|k| *k == name || k.ends_with(&format!(".{name}")));
    let Some(key) = key else { return Ok(None) };
    let view = st
        .tensor(key)
        .map_err(|e| err(format!("tensor '{key}': {e}")))?;
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => {
            return Err(err(format!(
                "tensor '{key}' is {other:?}; only F32 and F64 are read"
            )));
        }
    };
    Ok(Some(Found {
        shape: view.shape().to_vec(),
        values,
    }))
}

fn need(st: &SafeTensors, name: &str) -> Result<Found> {
    find(st, name)?.ok_or_else(|| err(format!("the file has no tensor '{name}'")))
}

fn expect_shape(name: &str, f: &Found, want: &[usize]) -> Result<()> {
    if f.shape != want {
        return Err(err(format!(
            "'{name}' has shape {:?}, expected {want:?}",
            f.shape
        )));
    }
    Ok(())
}

/// Reads a PyTorch file's bytes into the entry's terms (`kind` says which module wrote it),
/// with the sizes the shapes give.
pub fn import_torch(kind: Kind, bytes: &[u8]) -> Result<(Imported, RefDims)> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| err(format!("not a readable safetensors file ({e})")))?;
    let g = kind.gates();
    let hh0 = need(&st, "weight_hh_l0")?;
    let [rows, hidden] = hh0.shape[..] else {
        return Err(err(format!(
            "'weight_hh_l0' has shape {:?}, expected [gates·hidden, hidden]",
            hh0.shape
        )));
    };
    if rows != g * hidden || hidden == 0 {
        return Err(err(format!(
            "'weight_hh_l0' has shape {:?}: {} needs [{g}·hidden, hidden] (is this file from the other module?)",
            hh0.shape,
            if kind == Kind::Lstm {
                "nn.LSTM"
            } else {
                "nn.GRU"
            }
        )));
    }
    let ih0 = need(&st, "weight_ih_l0")?;
    let input = match ih0.shape[..] {
        [r, i] if r == g * hidden && i > 0 => i,
        _ => {
            return Err(err(format!(
                "'weight_ih_l0' has shape {:?}, expected [{}, input]",
                ih0.shape,
                g * hidden
            )));
        }
    };
    let mut tensors = Vec::new();
    let mut layers = 0;
    while find(&st, &format!("weight_hh_l{layers}"))?.is_some() {
        let k = layers;
        let n_in = if k == 0 { input } else { hidden };
        let names = [
            format!("weight_ih_l{k}"),
            format!("weight_hh_l{k}"),
            format!("bias_ih_l{k}"),
            format!("bias_hh_l{k}"),
        ];
        let w_ih = need(&st, &names[0])?;
        expect_shape(&names[0], &w_ih, &[g * hidden, n_in])?;
        let w_hh = need(&st, &names[1])?;
        expect_shape(&names[1], &w_hh, &[g * hidden, hidden])?;
        let b_ih = need(&st, &names[2])?;
        expect_shape(&names[2], &b_ih, &[g * hidden])?;
        let b_hh = need(&st, &names[3])?;
        expect_shape(&names[3], &b_hh, &[g * hidden])?;
        tensors.push((
            format!("param.w_ih{k}"),
            transpose(&w_ih.values, g * hidden, n_in),
        ));
        tensors.push((
            format!("param.w_hh{k}"),
            transpose(&w_hh.values, g * hidden, hidden),
        ));
        tensors.push((format!("param.b_ih{k}"), b_ih.values));
        tensors.push((format!("param.b_hh{k}"), b_hh.values));
        layers += 1;
    }
    if find(&st, &format!("weight_ih_l{layers}"))?.is_some() {
        return Err(err(format!(
            "'weight_ih_l{layers}' has no 'weight_hh_l{layers}'"
        )));
    }
    let hw = need(&st, "head.weight")?;
    let output = match hw.shape[..] {
        [o, h] if h == hidden && o > 0 => o,
        _ => {
            return Err(err(format!(
                "'head.weight' has shape {:?}, expected [output, {hidden}]",
                hw.shape
            )));
        }
    };
    let hb = need(&st, "head.bias")?;
    expect_shape("head.bias", &hb, &[output])?;
    tensors.push(("param.w_out".into(), transpose(&hw.values, output, hidden)));
    tensors.push(("param.b_out".into(), hb.values));
    if let Some(bad) = tensors
        .iter()
        .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
    {
        return Err(err(format!("'{}' holds non-finite values", bad.0)));
    }
    let params = format!("(hidden: {hidden}, layers: {layers})");
    let dims = RefDims {
        input,
        hidden,
        output,
        manifold: None,
    };
    Ok((Imported { params, tensors }, dims))
}
