//! # ar — the autoregressive baseline
//!
//! `y_t = Σ_{k<p} x_{t−k} A_k + b`: a linear map of the last `p` inputs (zeros before the
//! stream starts). Its state is those `p` inputs, a fixed size, so it streams, saves and
//! batches like any member. Training fits it by least squares in closed form, trying every
//! order up to `order` and keeping the one with the lowest validation error; on a
//! forecasting task it is the classical floor a memory must clear, as `linear` is the
//! memoryless one.
//!
//! ```
//! use mnnn_core::{Entry, IoSpec, Inputs};
//! let mut m = Entry::of::<mnnn_ar::Ar>().create::<f32>(Some("(order: 5)"), &IoSpec::regression(2, 1), 0)?;
//! assert_eq!(m.state_size(), 10);
//! let y = m.predict(&Inputs::Real(ndarray::Array2::zeros((4, 2))))?;
//! assert_eq!(y.dim(), (4, 1));
//! # Ok::<(), mnnn_core::Error>(())
//! ```

use mnnn_core::cell::{Cell, Diagnostic, Dims, LinearFeatures, mean_abs};
use mnnn_core::naive::values;
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Error, Layout, Result, Rng, Scalar, Tensors, init};
use ndarray::linalg::general_mat_vec_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s};
use serde::{Deserialize, Serialize};

/// The registry entry.
pub struct Ar;

/// Hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArParams {
    /// The most past inputs the prediction reads, the current one included (default 32);
    /// the fit keeps the order, at most this, that validates best.
    pub order: usize,
}

impl Default for ArParams {
    fn default() -> Self {
        ArParams { order: 32 }
    }
}

/// The cell: a linear map of a shift register of the last `order` inputs.
#[derive(Clone, Debug)]
pub struct ArCell {
    dims: Dims,
    order: usize,
}

/// The register of every step of the last window (`T × B × order·input`), the features the
/// weight gradient reads.
#[derive(Default, Debug)]
pub struct Tape<S> {
    regs: Vec<S>,
}

const W: usize = 0;
const B: usize = 1;

impl ArCell {
    /// Scalars of one sequence's register.
    fn width(&self) -> usize {
        self.order * self.dims.input
    }
}

/// Shifts the register `reg` (newest first) by one input and puts `x` in front.
fn push<S: Scalar>(reg: &mut [S], x: ArrayView1<S>) {
    let i = x.len();
    reg.copy_within(..reg.len() - i, i);
    for (r, &v) in reg[..i].iter_mut().zip(&x) {
        *r = v;
    }
}

impl<S: Scalar> Cell<S> for ArCell {
    type Tape = Tape<S>;
    type Scratch = ();

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        Layout::new()
            .with("w", &[self.width(), self.dims.output])
            .with("b", &[self.dims.output])
    }

    fn state_layout(&self) -> Layout {
        Layout::new().with("inputs", &[self.order, self.dims.input])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        let lim = init::glorot_limit(self.width(), self.dims.output);
        init::uniform(rng, params.slice_mut(W), lim);
    }

    fn step(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        _: &mut (),
    ) {
        let w = self.width();
        let regs = state.slice_mut(0);
        for (j, xr) in x.rows().into_iter().enumerate() {
            let reg = &mut regs[j * w..(j + 1) * w];
            push(reg, xr);
            let mut yj = y.row_mut(j);
            yj.assign(&p.vec(B));
            general_mat_vec_mul(
                S::one(),
                &p.mat(W).t(),
                &ArrayView1::from(&*reg),
                S::one(),
                &mut yj,
            );
        }
    }

    fn forward_window(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        let (t, b, _) = xs.dim();
        let w = self.width();
        // Every step's register, then one product for the window.
        let mut regs = Array2::<S>::zeros((t * b, w));
        let st = state.slice_mut(0);
        for k in 0..t {
            for j in 0..b {
                let reg = &mut st[j * w..(j + 1) * w];
                push(reg, xs.slice(s![k, j, ..]));
                regs.row_mut(k * b + j).assign(&ArrayView1::from(&*reg));
            }
        }
        let mut out = regs.dot(&p.mat(W));
        out += &p.vec(B);
        let o = self.dims.output;
        ys.assign(&out.into_shape_with_order((t, b, o)).expect("contiguous"));
        if let Some(tape) = tape {
            tape.regs = regs.into_raw_vec_and_offset().0;
        }
    }

    fn backward_window(
        &self,
        p: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        mut dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b, o) = dys.dim();
        let (w, i) = (self.width(), self.dims.input);
        let dy = dys.to_shape((t * b, o)).expect("sizes").to_owned();
        let regs = ArrayView2::from_shape((t * b, w), &tape.regs[..]).expect("sizes");
        grads.mat_mut(W).scaled_add(S::one(), &regs.t().dot(&dy));
        grads.vec_mut(B).scaled_add(S::one(), &dy.sum_axis(Axis(0)));
        // ∂L/∂register of each step, walked backwards: the register after step k is the
        // current input followed by the register after step k − 1 without its oldest input.
        let dreg_out = dy.dot(&p.mat(W).t());
        let ds = dstate.slice_mut(0);
        for k in (0..t).rev() {
            for j in 0..b {
                let d = &mut ds[j * w..(j + 1) * w];
                for (v, g) in d.iter_mut().zip(dreg_out.row(k * b + j)) {
                    *v += *g;
                }
                if let Some(dx) = dxs.as_mut() {
                    for c in 0..i {
                        dx[[k, j, c]] = d[c];
                    }
                }
                d.copy_within(i.., 0);
                d[w - i..].fill(S::zero());
            }
        }
    }

    fn diagnostics(&self, _p: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        vec![Diagnostic {
            name: "mean_abs_inputs",
            value: mean_abs(state.slice(0)),
        }]
    }

    fn linear_features(&self) -> Option<LinearFeatures> {
        let i = self.dims.input;
        Some(LinearFeatures {
            width: self.width(),
            orders: (1..=self.order).map(|p| p * i).collect(),
        })
    }

    fn features(&self, xs: ArrayView2<S>, mut out: ArrayViewMut2<f64>) {
        let i = self.dims.input;
        for t in 0..xs.nrows() {
            for lag in 0..self.order.min(t + 1) {
                for c in 0..i {
                    out[[t, lag * i + c]] = xs[[t - lag, c]].as_f64();
                }
            }
        }
    }

    fn set_coefficients(&self, coef: ArrayView2<f64>, params: &mut Tensors<S>) {
        mnnn_core::cell::set_affine(coef, params, W, B);
    }
}

impl Architecture for Ar {
    const NAME: &'static str = "ar";
    const FAMILY: Family = Family::Baseline;
    const SUMMARY: &'static str = "Autoregression on the last `order` inputs, fitted by least squares: the classical forecasting floor";
    const CITATION: &'static str =
        "Box & Jenkins, Time Series Analysis: Forecasting and Control (1970), the AR(p) model";
    const STATE_FORMULA: &'static str = "order·input (the last `order` inputs)";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["mean_abs_inputs"];
    const PARAM_RANGES: &'static [ParamRange] = &[ParamRange::int("order", 1, 4096, 4)];
    type Params = ArParams;
    type Cell<S: Scalar> = ArCell;

    fn validate(p: &ArParams) -> Result<()> {
        if !(1..=4096).contains(&p.order) {
            return Err(Error::invalid_param(
                "order",
                p.order,
                "must be in [1, 4096]",
            ));
        }
        Ok(())
    }

    fn build<S: Scalar>(p: &ArParams, dims: Dims) -> ArCell {
        ArCell {
            dims,
            order: p.order,
        }
    }

    fn state_size(p: &ArParams, dims: Dims) -> usize {
        p.order * dims.input
    }

    /// `y_t = b + Σ_{k<p} x_{t−k} A_k`, the past inputs kept in a queue, newest first.
    fn naive(
        p: &ArParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        let (w, b) = (values(weights, "w")?, values(weights, "b")?);
        let (i, o) = (dims.input, dims.output);
        let held = values(state, "inputs")?;
        let mut past: std::collections::VecDeque<Vec<f64>> =
            held.chunks(i).map(<[f64]>::to_vec).collect();
        let mut ys = Array2::zeros((xs.nrows(), o));
        for (t, x) in xs.rows().into_iter().enumerate() {
            past.pop_back();
            past.push_front(x.to_vec());
            for out in 0..o {
                let mut y = b[out];
                for (k, xk) in past.iter().enumerate().take(p.order) {
                    for (c, v) in xk.iter().enumerate() {
                        y += v * w[(k * i + c) * o + out];
                    }
                }
                ys[[t, out]] = y;
            }
        }
        Some(ys)
    }
}

mnnn_core::register!(Ar);

#[cfg(test)]
mod tests {
    use super::*;
    use mnnn_core::{Entry, Inputs, IoSpec, Sequence, Targets, TrainConfig};

    /// An AR(2) series, `x_t = 1.2 x_{t−1} − 0.5 x_{t−2} + noise`, as next-step pairs.
    fn ar2(n: usize) -> mnnn_core::Dataset<f64> {
        let mut rng = Rng::new(5);
        let mut x = vec![0.0f64, 0.1];
        for t in 2..n + 1 {
            let v = 1.2 * x[t - 1] - 0.5 * x[t - 2] + 0.1 * rng.normal();
            x.push(v);
        }
        let xs = Array2::from_shape_fn((n, 1), |(t, _)| x[t]);
        let ys = Array2::from_shape_fn((n, 1), |(t, _)| x[t + 1]);
        mnnn_core::Dataset {
            io: IoSpec::regression(1, 1),
            sequences: vec![Sequence {
                inputs: Inputs::Real(xs),
                targets: Targets::Real(ys),
                mask: None,
            }],
        }
    }

    #[test]
    fn the_fit_recovers_an_ar2_process_and_picks_its_order_on_validation() {
        let data = ar2(3000);
        let mut m = Entry::of::<Ar>()
            .create::<f64>(Some("(order: 8)"), &data.io, 0)
            .unwrap();
        let r = m.fit(&data, &TrainConfig::default(), &mut |_| {}).unwrap();
        assert_eq!(r.updates, 0, "closed form, no gradient steps");
        let order = r.least_squares_order.unwrap();
        assert!((2..=4).contains(&order), "order {order}");
        // The series' variance is 0.01·1.5 / (0.5·(1.5² − 1.2²)) = 0.037 against the noise's
        // 0.01: the best possible R² is 0.73.
        let r2 = r.validation.unwrap().r2.unwrap();
        assert!(r2 > 0.7, "validation R² {r2}");
        // Streamed step by step, the model predicts what the fit scored.
        let Inputs::Real(x) = &data.sequences[0].inputs else {
            unreachable!()
        };
        let y = m.predict(&Inputs::Real(x.clone())).unwrap();
        let Targets::Real(t) = &data.sequences[0].targets else {
            unreachable!()
        };
        let err: f64 = (2400..3000)
            .map(|k| (y[[k, 0]] - t[[k, 0]]).powi(2))
            .sum::<f64>()
            / 600.0;
        assert!(err < 0.0125, "streamed mse {err} (noise 0.01)");
    }

    #[test]
    fn an_order_out_of_range_is_refused() {
        let e = Entry::of::<Ar>()
            .create::<f32>(Some("(order: 0)"), &IoSpec::regression(1, 1), 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("order"), "{e}");
    }
}
