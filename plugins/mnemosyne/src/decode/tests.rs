//! The decode step against the tape's step loop.

use super::DecodeScratch;
use crate::cell::MnemosyneCell;
use crate::params::{Gate, Memory, MnemosyneParams, Update};
use mnnn_core::cell::{Cell, Dims};
use mnnn_core::{Rng, Scalar, Tensors};
use ndarray::Array2;

/// A cell with its parameters drawn and then jittered, so that biases, gates and the
/// sidecar's weights are all away from their initial constants.
fn cell<S: Scalar>(p: &MnemosyneParams, seed: u64) -> (MnemosyneCell<S>, Tensors<S>) {
    let dims = Dims {
        input: 3,
        output: 2,
    };
    let c = MnemosyneCell::<S>::new(p, dims);
    let mut params = Tensors::zeros(c.param_layout());
    let mut rng = Rng::new(seed);
    c.init_params(&mut rng, &mut params);
    for v in params.data_mut() {
        *v += S::from_f64(0.3 * rng.normal());
    }
    (c, params)
}

fn inputs(rng: &mut Rng, t: usize, b: usize) -> Vec<Array2<f64>> {
    (0..t)
        .map(|_| Array2::from_shape_fn((b, 3), |_| rng.normal()))
        .collect()
}

/// Streams `xs` through the decode step and through the tape; returns the largest relative
/// error of the outputs and of the final state.
fn distance<S: Scalar>(p: &MnemosyneParams, xs: &[Array2<f64>], seed: u64) -> (f64, f64) {
    let (c, params) = cell::<S>(p, seed);
    let b = xs[0].nrows();
    let layout = c.state_layout().batched(b);
    let mut s1 = Tensors::zeros(layout.clone());
    c.reset_state(&params, &mut s1);
    let mut s2 = s1.clone();
    let mut scratch = DecodeScratch::default();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for x in xs {
        let x = x.mapv(S::from_f64);
        let mut y1 = Array2::zeros((b, 2));
        let mut y2 = Array2::zeros((b, 2));
        c.step(&params, &mut s1, x.view(), y1.view_mut(), &mut scratch);
        c.tape_step(&params, &mut s2, x.view(), y2.view_mut());
        for (a, r) in y1.iter().zip(&y2) {
            num = num.max((a.as_f64() - r.as_f64()).abs());
            den = den.max(r.as_f64().abs());
        }
    }
    let (mut snum, mut sden) = (0.0f64, 0.0f64);
    for (a, r) in s1.data().iter().zip(s2.data()) {
        snum = snum.max((a.as_f64() - r.as_f64()).abs());
        sden = sden.max(r.as_f64().abs());
    }
    (num / den.max(1e-300), snum / sden.max(1e-300))
}

fn params(
    memory: Memory,
    update: Update,
    chunk: usize,
    momentum: bool,
    forget: bool,
    gate: Gate,
    sidecar: usize,
) -> MnemosyneParams {
    MnemosyneParams {
        layers: 2,
        heads: 2,
        head_dim: 4,
        memory,
        update,
        chunk,
        lr: 0.7,
        momentum,
        forget,
        gate,
        sidecar,
        ffn: 2,
    }
}

/// Every memory, update, momentum, forget gate, surprise gate, sidecar and chunk size (1, a
/// size the stream does not divide, and past the stream's length), batch 2, in f64.
#[test]
fn decode_equals_the_tape_step_loop_in_f64() {
    let mut rng = Rng::new(11);
    let xs = inputs(&mut rng, 29, 2);
    let mut seed = 0;
    for (memory, update) in [
        (Memory::Linear, Update::All),
        (Memory::TttLinear, Update::All),
        (Memory::Mlp, Update::All),
        (Memory::Mlp, Update::LastLayer),
    ] {
        for chunk in [1, 3, 40] {
            for momentum in [false, true] {
                for forget in [false, true] {
                    for gate in [Gate::None, Gate::Surprise] {
                        for sidecar in [0, 3] {
                            let p = params(memory, update, chunk, momentum, forget, gate, sidecar);
                            seed += 1;
                            let (out, state) = distance::<f64>(&p, &xs, seed);
                            assert!(out < 1e-10 && state < 1e-10, "{p:?}: {out:e}, {state:e}");
                        }
                    }
                }
            }
        }
    }
}

/// The default model in f32 (the vectorised tanh and the reordered reads) stays within f32
/// rounding of the tape over a stream of several chunks.
#[test]
fn decode_in_f32_stays_within_rounding_of_the_tape() {
    let mut rng = Rng::new(5);
    let xs = inputs(&mut rng, 40, 1);
    let p = MnemosyneParams {
        head_dim: 8,
        chunk: 4,
        ..MnemosyneParams::default()
    };
    let (out, state) = distance::<f32>(&p, &xs, 3);
    assert!(out < 1e-4 && state < 1e-4, "{out:e}, {state:e}");
}

/// The baseline build and the AVX2 build of the decode loops give the same bits (where the
/// CPU has AVX2; elsewhere both runs take the baseline build).
#[test]
fn decode_builds_agree_bit_for_bit() {
    use mnnn_core::kernels::Path;
    let p = MnemosyneParams {
        head_dim: 8,
        chunk: 4,
        ..MnemosyneParams::default()
    };
    let (c, params) = cell::<f32>(&p, 9);
    let sh = crate::shapes::Shapes::new(&p, c.dims());
    let mut rng = Rng::new(4);
    let xs = inputs(&mut rng, 12, 2);
    let run = |path: Path| {
        let mut st = Tensors::zeros(c.state_layout().batched(2));
        c.reset_state(&params, &mut st);
        let mut sc = DecodeScratch::default();
        let mut ys = Vec::new();
        for x in &xs {
            let x = x.mapv(|v| v as f32);
            let mut y = Array2::zeros((2, 2));
            super::step_on(path, &sh, &params, &mut st, x.view(), y.view_mut(), &mut sc);
            ys.extend(y.iter().map(|v| v.to_bits()));
        }
        ys.extend(st.data().iter().map(|v| v.to_bits()));
        ys
    };
    assert_eq!(run(Path::Portable), run(Path::Avx2));
}
