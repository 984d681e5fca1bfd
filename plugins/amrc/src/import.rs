//! Reading the reference implementation's AMRC save files.

use crate::AmrcParams;
use mnnn_core::Result;
use mnnn_core::reference::{Compat, Imported, Reader, RefDims, file_bytes, transpose};

/// Reads a reference AMRC file (`int I, H, O; f32 β, α, η; int steps; f32 W_h[H·I], W_o[O·H],
/// b_h[H], b_o[O], m[H], p[H]`, native little-endian). The file does not hold the previous
/// hidden output `s`, so the imported model starts with `s = 0`; `p` and `m` are restored.
/// The learning rate and step count are the reference's training state and are not kept.
pub fn import(bytes: &[u8], dims: &RefDims) -> Result<Imported> {
    let (i, h, o) = (dims.input, dims.hidden, dims.output);
    // 28 header bytes, then W_h, W_o, b_h, b_o, m, p. (The spec's printed formula says 4H,
    // but its layout and its measured 544 bytes for I=4, H=16, O=1 give 3H.)
    let len = file_bytes(28, &[&[h, i], &[o, h], &[3, h], &[o]])?;
    let mut r = Reader::new(bytes, len)?;
    r.expect_i32("input size", i)?;
    r.expect_i32("hidden size", h)?;
    r.expect_i32("output size", o)?;
    let beta = r.f32()?;
    let alpha = r.f32()?;
    let _learning_rate = r.f32()?;
    let _steps = r.i32()?;
    let w_h = transpose(&r.f32s(h * i)?, h, i);
    let w_o = transpose(&r.f32s(o * h)?, o, h);
    let b_h = r.f32s(h)?;
    let b_o = r.f32s(o)?;
    let m = r.f32s(h)?;
    let p = r.f32s(h)?;
    let params = AmrcParams {
        hidden: h,
        alpha: alpha as f64,
        beta: beta as f64,
        compat: Compat::Reference,
    };
    params.validate()?;
    Ok(Imported {
        params: ron::to_string(&params).expect("params serialise"),
        tensors: vec![
            ("param.w_h".into(), w_h),
            ("param.b_h".into(), b_h),
            ("param.w_o".into(), w_o),
            ("param.b_o".into(), b_o),
            ("state.m".into(), m),
            ("state.p".into(), p),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_too_large_to_address_are_refused_not_wrapped() {
        let file = [0u8; 32];
        for hidden in [usize::MAX, 1 << 62, (1 << 62) + 1] {
            let dims = RefDims {
                input: 1,
                hidden,
                output: 1,
                manifold: None,
            };
            let e = import(&file, &dims).unwrap_err().to_string();
            assert!(e.contains("the sizes are wrong"), "{hidden}: {e}");
        }
    }
}
