//! The fast forms against the independent f64 reference, and the import's refusals.

use mnnn_core::cell::{Cell, Dims};
use mnnn_core::{Rng, Tensors};
use mnnn_rnn::{Kind, RnnCell, RnnParams, naive};
use ndarray::{Array3, Axis};

fn setup(kind: Kind, hidden: usize, layers: usize, seed: u64) -> (RnnCell, Tensors<f64>) {
    let dims = Dims {
        input: 3,
        output: 2,
    };
    let cell = RnnCell::new(kind, &RnnParams { hidden, layers }, dims);
    let mut p = Tensors::zeros(Cell::<f64>::param_layout(&cell));
    let mut rng = Rng::new(seed);
    // Larger than the initial weights, so every gate is well away from ½.
    p.data_mut().iter_mut().for_each(|v| *v = rng.normal());
    (cell, p)
}

fn random_state(cell: &RnnCell, b: usize, rng: &mut Rng) -> Tensors<f64> {
    let mut s = Tensors::zeros(Cell::<f64>::state_layout(cell).batched(b));
    s.data_mut().iter_mut().for_each(|v| *v = rng.normal());
    s
}

fn max_diff(a: &Array3<f64>, b: &Array3<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn window_and_step_equal_the_reference() {
    for kind in [Kind::Lstm, Kind::Gru] {
        for (hidden, layers, b) in [(5, 1, 1), (4, 3, 3), (9, 2, 2)] {
            let (cell, p) = setup(kind, hidden, layers, 7);
            let mut rng = Rng::new(3);
            let s0 = random_state(&cell, b, &mut rng);
            let xs = Array3::from_shape_fn((11, b, 3), |_| rng.normal());
            let mut s_ref = s0.clone();
            let want = naive::run(kind, hidden, layers, &p, &mut s_ref, xs.view());

            let mut s = s0.clone();
            let mut ys = Array3::zeros((11, b, 2));
            cell.forward_window(&p, &mut s, xs.view(), ys.view_mut(), None);
            let d = max_diff(&ys, &want);
            assert!(d < 1e-12, "{kind:?} window off by {d}");
            let sd = s
                .data()
                .iter()
                .zip(s_ref.data())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(sd < 1e-12, "{kind:?} final state off by {sd}");

            let mut s = s0.clone();
            let mut ys = Array3::zeros((11, b, 2));
            let mut scratch = Default::default();
            for (x, y) in xs.axis_iter(Axis(0)).zip(ys.axis_iter_mut(Axis(0))) {
                cell.step(&p, &mut s, x, y, &mut scratch);
            }
            let d = max_diff(&ys, &want);
            assert!(d < 1e-12, "{kind:?} steps off by {d}");
        }
    }
}

#[test]
fn f32_is_close_to_the_reference() {
    for kind in [Kind::Lstm, Kind::Gru] {
        let (cell, p) = setup(kind, 16, 2, 11);
        let mut rng = Rng::new(5);
        let s0 = random_state(&cell, 4, &mut rng);
        let xs = Array3::from_shape_fn((40, 4, 3), |_| rng.normal());
        let want = naive::run(kind, 16, 2, &p, &mut s0.clone(), xs.view());
        let mut s = s0.cast::<f32>();
        let mut ys = Array3::<f32>::zeros((40, 4, 2));
        cell.forward_window(
            &p.cast(),
            &mut s,
            xs.mapv(|v| v as f32).view(),
            ys.view_mut(),
            None,
        );
        let d = max_diff(&ys.mapv(f64::from), &want);
        assert!(d < 1e-4, "{kind:?} f32 off by {d}");
    }
}

#[test]
fn import_refuses_bad_files_by_name() {
    let e = mnnn_rnn::import_torch(Kind::Lstm, b"not safetensors").unwrap_err();
    assert!(
        e.to_string().contains("not a readable safetensors file"),
        "{e}"
    );
}
