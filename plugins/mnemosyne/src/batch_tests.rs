//! A batch through stacked tapes (several groups, the last one short) against each sequence
//! run alone: outputs, states and every gradient.

use crate::cell::{GROUP, MnemosyneCell};
use crate::params::{Gate, Memory, MnemosyneParams, Update};
use mnnn_core::cell::{Cell, Dims};
use mnnn_core::{Rng, Tensors};
use ndarray::{Array3, Axis, s};

fn sized(memory: Memory, chunk: usize, momentum: bool, gate: Gate) -> MnemosyneParams {
    MnemosyneParams {
        layers: 2,
        heads: 2,
        head_dim: 4,
        memory,
        update: Update::All,
        chunk,
        lr: 0.7,
        momentum,
        forget: true,
        gate,
        sidecar: 3,
        ffn: 2,
    }
}

fn largest_gap(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn a_stacked_batch_equals_its_sequences_one_by_one() {
    let b = GROUP + 3;
    let (t, dims) = (
        7,
        Dims {
            input: 3,
            output: 2,
        },
    );
    let cases = [
        sized(Memory::Mlp, 3, true, Gate::Surprise),
        sized(Memory::TttLinear, 1, false, Gate::Surprise),
        sized(Memory::Linear, 1, false, Gate::None),
    ];
    for (n, p) in cases.iter().enumerate() {
        let c = MnemosyneCell::<f64>::new(p, dims);
        let mut rng = Rng::new(40 + n as u64);
        let mut params = Tensors::zeros(c.param_layout());
        c.init_params(&mut rng, &mut params);
        for v in params.data_mut() {
            *v += 0.3 * rng.normal();
        }
        let xs = Array3::from_shape_fn((t, b, 3), |_| rng.normal());
        let dys = Array3::from_shape_fn((t, b, 2), |_| rng.normal());
        let layout = c.state_layout();
        let mut state = Tensors::zeros(layout.batched(b));
        c.reset_state(&params, &mut state);
        // A window in first, so that the state (memory, sidecar, chunk position) is not the
        // reset one when the recorded window starts.
        let mut warm = Array3::zeros((t, b, 2));
        c.forward_window(&params, &mut state, xs.view(), warm.view_mut(), None);
        let start = state.clone();
        let dstate = Tensors::from_vec(
            layout.batched(b),
            (0..layout.total() * b).map(|_| rng.normal()).collect(),
        )
        .expect("sized");

        let mut ys = Array3::zeros((t, b, 2));
        let mut tape = Default::default();
        c.forward_window(
            &params,
            &mut state,
            xs.view(),
            ys.view_mut(),
            Some(&mut tape),
        );
        let mut ds = dstate.clone();
        let mut grads = Tensors::zeros_like(&params);
        let mut dxs = Array3::zeros((t, b, 3));
        c.backward_window(
            &params,
            &tape,
            dys.view(),
            &mut ds,
            &mut grads,
            Some(dxs.view_mut()),
        );

        let mut grads_one = Tensors::zeros_like(&params);
        for j in 0..b {
            let one = |x: &Tensors<f64>| {
                let mut out = Tensors::zeros(layout.clone());
                for (i, e) in layout.entries().iter().enumerate() {
                    let n = e.len();
                    out.slice_mut(i)
                        .copy_from_slice(&x.slice(i)[j * n..(j + 1) * n]);
                }
                out
            };
            let mut st = one(&start);
            let xj = xs.slice(s![.., j..j + 1, ..]);
            let mut yj = Array3::zeros((t, 1, 2));
            let mut tj = Default::default();
            c.forward_window(&params, &mut st, xj, yj.view_mut(), Some(&mut tj));
            let mut dsj = one(&dstate);
            let mut dxj = Array3::zeros((t, 1, 3));
            c.backward_window(
                &params,
                &tj,
                dys.slice(s![.., j..j + 1, ..]),
                &mut dsj,
                &mut grads_one,
                Some(dxj.view_mut()),
            );
            let col = |a: &Array3<f64>| a.index_axis(Axis(1), j).iter().copied().collect();
            let checks: [(&str, Vec<f64>, Vec<f64>); 4] = [
                ("outputs", col(&ys), yj.iter().copied().collect()),
                ("state", one(&state).data().to_vec(), st.data().to_vec()),
                ("input gradient", col(&dxs), dxj.iter().copied().collect()),
                (
                    "state gradient",
                    one(&ds).data().to_vec(),
                    dsj.data().to_vec(),
                ),
            ];
            for (what, batched, alone) in checks {
                let gap = largest_gap(&batched, &alone);
                assert!(
                    gap < 1e-12,
                    "{p:?}: sequence {j}'s {what} differ by {gap:e}"
                );
            }
        }
        let gap = largest_gap(grads.data(), grads_one.data());
        assert!(gap < 1e-10, "{p:?}: parameter gradients differ by {gap:e}");
    }
}
