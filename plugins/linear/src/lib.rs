//! # linear — the memoryless baseline
//!
//! `y_t = x_t W + b`: each output depends on the current input only. It is always a row of
//! `mnnn compare`, so that what memory adds is visible: a task a memoryless model solves as
//! well as the others does not test memory. Its state is empty (size 0). On real inputs and
//! regression targets, training fits it by least squares in closed form (as a user of a
//! linear baseline expects), not by gradient.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let mut m = Entry::of::<mnnn_linear::Linear>().create::<f32>(None, &IoSpec::regression(3, 2), 0)?;
//! assert_eq!(m.state_size(), 0);
//! let y = m.predict(&Inputs::Real(ndarray::Array2::zeros((4, 3))))?;
//! assert_eq!(y.dim(), (4, 2));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

use mnnn_core::cell::{Cell, Diagnostic, Dims, LinearFeatures};
use mnnn_core::naive::{values, vec_mat};
use mnnn_core::ops::linear;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Layout, Result, Rng, Scalar, Tensors, init};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use serde::{Deserialize, Serialize};

/// The registry entry.
pub struct Linear;

/// No hyper-parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearParams {}

/// The cell: an affine map of the current input.
#[derive(Clone, Debug)]
pub struct LinearCell {
    dims: Dims,
}

/// The inputs of the last window (for the weight gradient).
#[derive(Default, Debug)]
pub struct Tape<S> {
    x: Array2<S>,
}

const W: usize = 0;
const B: usize = 1;

impl<S: Scalar> Cell<S> for LinearCell {
    type Tape = Tape<S>;
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
        Layout::new()
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        let lim = init::glorot_limit(self.dims.input, self.dims.output);
        init::uniform(rng, params.slice_mut(W), lim);
    }

    fn step(
        &self,
        p: &Tensors<S>,
        _state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        _: &mut (),
    ) {
        linear::forward(x, p.mat(W), Some(p.vec(B)), y);
    }

    fn forward_window(
        &self,
        p: &Tensors<S>,
        _state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        let (t, b, i) = xs.dim();
        let o = self.dims.output;
        // A window is one `(T·B) × in` matrix; contiguous windows (the engine's) are used in
        // place, others are copied once.
        let owned;
        let x = match xs.as_slice() {
            Some(v) => ArrayView2::from_shape((t * b, i), v).expect("sizes"),
            None => {
                owned = Array2::from_shape_vec((t * b, i), xs.iter().copied().collect())
                    .expect("sizes");
                owned.view()
            }
        };
        match ys.as_slice_mut() {
            Some(v) => linear::forward(
                x,
                p.mat(W),
                Some(p.vec(B)),
                ArrayViewMut2::from_shape((t * b, o), v).expect("sizes"),
            ),
            None => {
                let mut y = Array2::zeros((t * b, o));
                linear::forward(x, p.mat(W), Some(p.vec(B)), y.view_mut());
                ys.assign(&y.into_shape_with_order((t, b, o)).expect("contiguous"));
            }
        }
        if let Some(tape) = tape {
            // The tape keeps its buffer from window to window.
            if tape.x.dim() == (t * b, i) {
                tape.x.assign(&x);
            } else {
                tape.x = x.to_owned();
            }
        }
    }

    fn backward_window(
        &self,
        p: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        _dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b, o) = dys.dim();
        let owned;
        let dy = match dys.as_slice() {
            Some(v) => ArrayView2::from_shape((t * b, o), v).expect("sizes"),
            None => {
                owned = Array2::from_shape_vec((t * b, o), dys.iter().copied().collect())
                    .expect("sizes");
                owned.view()
            }
        };
        general_mat_mul(S::one(), &tape.x.t(), &dy, S::one(), &mut grads.mat_mut(W));
        grads.vec_mut(B).scaled_add(S::one(), &dy.sum_axis(Axis(0)));
        if let Some(dx) = dxs {
            linear::backward_inputs(&[(dy, p.mat(W))], dx);
        }
    }

    fn diagnostics(&self, _p: &Tensors<S>, _state: &Tensors<S>) -> Vec<Diagnostic> {
        Vec::new()
    }

    fn linear_features(&self) -> Option<LinearFeatures> {
        Some(LinearFeatures {
            width: self.dims.input,
            orders: vec![self.dims.input],
        })
    }

    fn features(&self, xs: ArrayView2<S>, mut out: ArrayViewMut2<f64>) {
        out.zip_mut_with(&xs, |o, x| *o = x.as_f64());
    }

    fn set_coefficients(&self, coef: ArrayView2<f64>, params: &mut Tensors<S>) {
        mnnn_core::cell::set_affine(coef, params, W, B);
    }
}

impl Architecture for Linear {
    const NAME: &'static str = "linear";
    const FAMILY: Family = Family::Baseline;
    const SUMMARY: &'static str =
        "Memoryless linear map of the current input: the floor memory must clear";
    const CITATION: &'static str =
        "Ordinary least squares, fitted in closed form (by gradient on tokens or classes)";
    const STATE_FORMULA: &'static str = "0 (no memory)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &[];
    const PARAM_RANGES: &'static [ParamRange] = &[];
    type Params = LinearParams;
    type Cell<S: Scalar> = LinearCell;

    fn validate(_: &LinearParams) -> Result<()> {
        Ok(())
    }

    fn build<S: Scalar>(_: &LinearParams, dims: Dims) -> LinearCell {
        LinearCell { dims }
    }

    fn state_size(_: &LinearParams, _: Dims) -> usize {
        0
    }

    /// `y_t = x_t W + b`, term by term.
    fn naive(
        _: &LinearParams,
        dims: Dims,
        weights: &Tensors<f64>,
        _state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        let (w, b) = (values(weights, "w")?, values(weights, "b")?);
        let mut ys = Array2::zeros((xs.nrows(), dims.output));
        for (t, x) in xs.rows().into_iter().enumerate() {
            let xw = vec_mat(&x.to_vec(), &w, dims.output);
            for k in 0..dims.output {
                ys[[t, k]] = xw[k] + b[k];
            }
        }
        Some(ys)
    }
}

mnnn_core::register!(Linear);

#[cfg(test)]
mod tests {
    use mnnn_core::{Entry, Inputs, IoSpec, Rng, Sequence, Targets, TrainConfig};
    use ndarray::Array2;

    #[test]
    fn training_is_the_least_squares_fit_in_one_step() {
        // y = 3a − 2b + 1 plus a little noise: least squares recovers it to the noise level,
        // where a gradient run at the defaults varied from seed to seed.
        let mut rng = Rng::new(9);
        let n = 500;
        let x = Array2::from_shape_fn((n, 2), |_| rng.normal());
        let y = Array2::from_shape_fn((n, 1), |(t, _)| {
            3.0 * x[[t, 0]] - 2.0 * x[[t, 1]] + 1.0 + 0.01 * rng.normal()
        });
        let data = mnnn_core::Dataset {
            io: IoSpec::regression(2, 1),
            sequences: vec![Sequence {
                inputs: Inputs::Real(x),
                targets: Targets::Real(y),
                mask: None,
            }],
        };
        for seed in 0..3 {
            let mut m = Entry::of::<super::Linear>()
                .create::<f64>(None, &data.io, seed)
                .unwrap();
            let r = m.fit(&data, &TrainConfig::default(), &mut |_| {}).unwrap();
            assert_eq!((r.updates, r.least_squares_order), (0, Some(2)));
            let p = m.predict(&Inputs::Real(
                Array2::from_shape_vec((1, 2), vec![1.0, 1.0]).unwrap(),
            ));
            let v = p.unwrap()[[0, 0]];
            assert!((v - 2.0).abs() < 5e-3, "seed {seed}: {v}");
        }
    }
}
