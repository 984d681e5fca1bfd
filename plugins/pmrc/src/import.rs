//! Reading the reference implementation's PMRC save files (`memory_net_extended.c`,
//! `save_network`).

use crate::PmrcParams;
use mnnn_core::reference::{Compat, Imported, Reader, RefDims, transpose};
use mnnn_core::{Error, Result};

/// Bytes of a reference PMRC file for these sizes:
/// `35 + 4·(3·H·I + H·O + 2·H² + 7·H + 2·O)`, or `None` if that overflows.
pub fn file_size(input: usize, hidden: usize, output: usize) -> Option<usize> {
    let (i, h, o) = (input, hidden, output);
    let hi = h.checked_mul(i)?;
    let floats = hi
        .checked_mul(3)?
        .checked_add(h.checked_mul(o)?)?
        .checked_add(h.checked_mul(h)?.checked_mul(2)?)?
        .checked_add(h.checked_mul(7)?)?
        .checked_add(o.checked_mul(2)?)?;
    floats.checked_mul(4)?.checked_add(35)
}

/// Reads a reference PMRC file (see the crate docs for the layout) into `compat: "reference"`
/// params and tensors.
///
/// The header's sizes must equal `dims`; the file must be exactly [`file_size`] bytes. The
/// three feature flags and β, α, β_o come from the header (the learning rate and step count
/// are training bookkeeping and are dropped). Only the tensors the flags use are produced.
/// State: `m`, `p` (= `y_{t−2}`) and, with output memory, `zp` come from the file; the file
/// lacks `s` (`y_{t−1}`) and `z` (`ŷ_{t−1}`), which are left at zero; `q` must equal `p` (the
/// reference always writes them equal) and the gate statistic `g` is not state (it is
/// recomputed as a diagnostic).
pub fn import(bytes: &[u8], dims: &RefDims) -> Result<Imported> {
    let (i, h, o) = (dims.input, dims.hidden, dims.output);
    let expected = file_size(i, h, o).ok_or_else(|| {
        Error::Data(format!(
            "sizes input {i}, hidden {h}, output {o} are too large for a reference PMRC file"
        ))
    })?;
    let mut r = Reader::new(bytes, expected)?;
    r.expect_i32("input_size", i)?;
    r.expect_i32("hidden_size", h)?;
    r.expect_i32("output_size", o)?;
    let beta = r.f32()?;
    let alpha = r.f32()?;
    let output_beta = r.f32()?;
    let _learning_rate = r.f32()?;
    let _training_steps = r.i32()?;
    let use_recurrent = r.bool()?;
    let use_learnable_gates = r.bool()?;
    let use_output_memory = r.bool()?;
    let w_h = r.f32s(h * i)?;
    let w_o = r.f32s(o * h)?;
    let u_r = r.f32s(h * h)?;
    let b_h = r.f32s(h)?;
    let b_o = r.f32s(o)?;
    let w_g = r.f32s(h * i)?;
    let u_g = r.f32s(h * h)?;
    let b_g = r.f32s(h)?;
    let w_c = r.f32s(h * i)?;
    let b_c = r.f32s(h)?;
    let m = r.f32s(h)?;
    let p = r.f32s(h)?;
    let q = r.f32s(h)?;
    let zp = r.f32s(o)?;
    let _gate_stat = r.f32s(h)?;
    if let Some(k) = (0..h).find(|&k| p[k].to_bits() != q[k].to_bits()) {
        return Err(Error::Data(format!(
            "hidden_prev_state q[{k}] = {} differs from hidden_prev_output p[{k}] = {}; the \
             reference always writes them equal",
            q[k], p[k]
        )));
    }
    let params = PmrcParams {
        hidden: h,
        alpha: alpha as f64,
        beta: beta as f64,
        output_beta: output_beta as f64,
        use_recurrent,
        use_learnable_gates,
        use_output_memory,
        compat: Compat::Reference,
    };
    params.validate()?;
    // RON by hand: `{:?}` of an f64 reads back to the same value, and every f32 is an f64.
    let ron = format!(
        "(hidden: {h}, alpha: {:?}, beta: {:?}, output_beta: {:?}, use_recurrent: {}, \
         use_learnable_gates: {}, use_output_memory: {}, compat: \"reference\")",
        params.alpha,
        params.beta,
        params.output_beta,
        use_recurrent,
        use_learnable_gates,
        use_output_memory
    );
    // The reference stores [out][in]; ours are input-major (in × out).
    let mut tensors = vec![
        ("param.w_h".to_string(), transpose(&w_h, h, i)),
        ("param.b_h".to_string(), b_h),
    ];
    if use_recurrent {
        tensors.push(("param.u_r".into(), transpose(&u_r, h, h)));
    }
    if use_learnable_gates {
        tensors.push(("param.w_g".into(), transpose(&w_g, h, i)));
        tensors.push(("param.u_g".into(), transpose(&u_g, h, h)));
        tensors.push(("param.b_g".into(), b_g));
        tensors.push(("param.w_c".into(), transpose(&w_c, h, i)));
        tensors.push(("param.b_c".into(), b_c));
    }
    tensors.push(("param.w_o".into(), transpose(&w_o, o, h)));
    tensors.push(("param.b_o".into(), b_o));
    tensors.push(("state.m".into(), m));
    tensors.push(("state.p".into(), p));
    if use_output_memory {
        tensors.push(("state.zp".into(), zp));
    }
    Ok(Imported {
        params: ron,
        tensors,
    })
}
