//! The auxiliary-loss hook ([`Cell::aux_loss`]) on a small recurrent cell with an L1 penalty
//! on its output: the loss includes the penalty as a mean over the real (unpadded) steps,
//! and its gradient matches central differences through the recurrence.

use crate::cell::{Cell, Diagnostic, Dims};
use crate::data::{IoSpec, Sequence};
use crate::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use crate::model::{DynModel, Model, ModelMeta};
use crate::{Dataset, Inputs, Layout, Rng, Tensors};
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

/// `y_t = x_t W + b + ρ·y_{t−1}` (state: `y_{t−1}`), with the auxiliary loss `λ·Σ|y_t|`.
#[derive(Clone)]
struct Penalised {
    dims: Dims,
    lambda: f64,
}

const RHO: f64 = 0.5;

#[derive(Default)]
struct Tape {
    b: usize,
    x: Vec<f64>,
    y: Vec<f64>,
    weights: Vec<f64>,
}

impl Cell<f64> for Penalised {
    type Tape = Tape;
    type Scratch = ();

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        Layout::new()
            .with("w", &[self.dims.input, self.dims.output])
            .with("b", &[self.dims.output])
    }

    fn state_layout(&self) -> Layout {
        Layout::new().with("y", &[self.dims.output])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<f64>) {
        params.data_mut().iter_mut().for_each(|v| *v = rng.normal());
    }

    fn step(
        &self,
        p: &Tensors<f64>,
        state: &mut Tensors<f64>,
        x: ArrayView2<f64>,
        mut y: ArrayViewMut2<f64>,
        _: &mut (),
    ) {
        let (i, o) = (self.dims.input, self.dims.output);
        let (w, bias) = (p.slice(0), p.slice(1));
        let st = state.data_mut();
        for (r, xr) in x.rows().into_iter().enumerate() {
            for c in 0..o {
                let v = bias[c]
                    + RHO * st[r * o + c]
                    + (0..i).map(|j| xr[j] * w[j * o + c]).sum::<f64>();
                st[r * o + c] = v;
                y[[r, c]] = v;
            }
        }
    }

    fn forward_window(
        &self,
        p: &Tensors<f64>,
        state: &mut Tensors<f64>,
        xs: ArrayView3<f64>,
        mut ys: ArrayViewMut3<f64>,
        tape: Option<&mut Tape>,
    ) {
        for (t, x) in xs.outer_iter().enumerate() {
            self.step(p, state, x, ys.index_axis_mut(ndarray::Axis(0), t), &mut ());
        }
        if let Some(tape) = tape {
            tape.b = xs.dim().1;
            tape.x = xs.iter().copied().collect();
            tape.y = ys.iter().copied().collect();
        }
    }

    fn aux_loss(&self, _: &Tensors<f64>, tape: &mut Tape, row_weights: &[f64]) -> f64 {
        let o = self.dims.output;
        tape.weights = row_weights.to_vec();
        row_weights
            .iter()
            .zip(tape.y.chunks_exact(o))
            .map(|(w, y)| w * self.lambda * y.iter().map(|v| v.abs()).sum::<f64>())
            .sum()
    }

    fn backward_window(
        &self,
        p: &Tensors<f64>,
        tape: &Tape,
        dys: ArrayView3<f64>,
        dstate: &mut Tensors<f64>,
        grads: &mut Tensors<f64>,
        mut dxs: Option<ArrayViewMut3<f64>>,
    ) {
        let (t, b, o) = dys.dim();
        let i = self.dims.input;
        let w = p.slice(0).to_vec();
        for step in (0..t).rev() {
            for r in 0..b {
                let row = step * b + r;
                for c in 0..o {
                    let y = tape.y[row * o + c];
                    let wt = tape.weights.get(row).copied().unwrap_or(0.0);
                    let g = dys[[step, r, c]]
                        + self.lambda * wt * y.signum()
                        + dstate.data()[r * o + c];
                    for j in 0..i {
                        grads.slice_mut(0)[j * o + c] += tape.x[row * i + j] * g;
                        if let Some(dx) = dxs.as_mut() {
                            dx[[step, r, j]] += g * w[j * o + c];
                        }
                    }
                    grads.slice_mut(1)[c] += g;
                    dstate.data_mut()[r * o + c] = RHO * g;
                }
            }
        }
    }

    fn diagnostics(&self, _: &Tensors<f64>, _: &Tensors<f64>) -> Vec<Diagnostic> {
        Vec::new()
    }
}

fn model(lambda: f64) -> Model<f64, Penalised> {
    let (i, o) = (2, 2);
    let meta = ModelMeta {
        entry: "penalised".into(),
        params: "()".into(),
        io: IoSpec::regression(i, o),
        seed: 4,
        skip: false,
        difference: vec![],
        horizon: 0,
    };
    Model::new(
        meta,
        Penalised {
            dims: Dims {
                input: i,
                output: o,
            },
            lambda,
        },
    )
    .unwrap()
}

#[test]
fn the_auxiliary_loss_is_a_mean_over_the_real_steps_and_its_gradient_is_right() {
    let mut rng = Rng::new(6);
    // Two sequences of different lengths: the shorter one is padded inside the batch.
    let data = regression_data(&mut rng, &[7, 3], 2, 2, 1.0);
    let (plain, penalised) = (model(0.0), model(0.3));
    assert_eq!(
        plain.params(),
        penalised.params(),
        "same seed, same weights"
    );
    let extra = penalised.loss(&data, None).unwrap() - plain.loss(&data, None).unwrap();
    // By hand: 0.3 · mean over the 10 real steps of Σ|y|, from the cell's equations.
    let p = plain.params();
    let (w, b) = (p.slice(0), p.slice(1));
    let mut total = 0.0;
    for seq in &data.sequences {
        let Inputs::Real(x) = &seq.inputs else {
            unreachable!()
        };
        let mut prev = [0.0; 2];
        for row in x.rows() {
            for c in 0..2 {
                prev[c] = b[c] + RHO * prev[c] + row[0] * w[c] + row[1] * w[2 + c];
                total += prev[c].abs();
            }
        }
    }
    let want = 0.3 * total / 10.0;
    assert!((extra - want).abs() < 1e-12, "aux {extra} vs {want}");

    let mut s0 = penalised.batch_state(2);
    s0.data_mut().iter_mut().for_each(|v| *v = rng.normal());
    let (_, g) = penalised.gradients(&data, Some(&s0)).unwrap();
    let (_, g0) = plain.gradients(&data, Some(&s0)).unwrap();
    assert_ne!(g.params, g0.params, "the penalty changes the gradient");
    for c in check_model_params(&penalised, &data, Some(&s0), &g.params, 1e-6) {
        assert!(c.rel_error < 1e-7, "param {}: {:e}", c.name, c.rel_error);
    }
    for c in check_model_state(&penalised, &data, &s0, &g.state, 1e-6) {
        assert!(c.rel_error < 1e-7, "state {}: {:e}", c.name, c.rel_error);
    }
    for err in check_model_inputs(&penalised, &data, Some(&s0), &g.inputs, 1e-6) {
        assert!(err < 1e-7, "inputs: {err:e}");
    }
}

#[test]
fn training_lowers_the_penalised_activity() {
    let mut rng = Rng::new(2);
    let data: Dataset<f64> = Dataset {
        io: IoSpec::regression(2, 2),
        sequences: (0..8)
            .map(|_| Sequence {
                inputs: Inputs::Real(Array2::from_shape_fn((12, 2), |_| rng.normal())),
                targets: crate::Targets::Real(Array2::from_shape_fn((12, 2), |_| rng.normal())),
                mask: None,
            })
            .collect(),
    };
    // The penalty a model's weights pay on the data: the loss with λ = 1 less the loss
    // with λ = 0, at the same weights.
    let activity = |m: &Model<f64, Penalised>| {
        let (mut one, mut zero) = (model(1.0), model(0.0));
        one.set_params(m.params()).unwrap();
        zero.set_params(m.params()).unwrap();
        one.loss(&data, None).unwrap() - zero.loss(&data, None).unwrap()
    };
    let cfg = crate::TrainConfig {
        epochs: 30,
        max_updates: 0,
        eval_every: 0,
        warmup: 0,
        schedule: crate::Schedule::Constant,
        patience: 10,
        validation: 0.0,
        ..crate::TrainConfig::default()
    };
    let (mut plain, mut penalised) = (model(0.0), model(5.0));
    plain.fit(&data, &cfg, &mut |_| {}).unwrap();
    penalised.fit(&data, &cfg, &mut |_| {}).unwrap();
    let (a, b) = (activity(&penalised), activity(&plain));
    assert!(a < 0.75 * b, "penalised activity {a} vs {b}");
}
