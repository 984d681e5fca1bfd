//! A member written as its forward equations only: the leaky integrator
//! `h_t = a ⊙ h_{t−1} + (1 − a) ⊙ tanh(x_t W + b)`, `a = σ(ā)` per unit (trained through the
//! sigmoid), read out as `y_t = h_t V + c`. Its step, window and backward all come from core's
//! tape ([`Derived`]); it trains on delayed recall and passes the whole suite.

use mnnn_conformance::{CountingAllocator, Outcome, Property, Suite, table};
use mnnn_core::autodiff::{Derived, Rec, TapeCell, Var};
use mnnn_core::naive::{sigmoid, values, vec_mat};
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange, check_range};
use mnnn_core::{Dataset, Dims, Entry, Inputs, IoSpec, Layout, Result, Rng, Scalar, Sequence};
use mnnn_core::{Targets, Tensors, TrainConfig};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

// ---- what the member's author writes: params, equations, registration ----

/// Leaky-integrator hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LeakyParams {
    hidden: usize,
}

impl Default for LeakyParams {
    fn default() -> Self {
        LeakyParams { hidden: 8 }
    }
}

#[derive(Clone, Debug)]
struct LeakyCell {
    dims: Dims,
    hidden: usize,
}

impl<S: Scalar> TapeCell<S> for LeakyCell {
    fn dims(&self) -> Dims {
        self.dims
    }
    fn param_layout(&self) -> Layout {
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        let l = Layout::new()
            .with("w", &[i, h])
            .with("b", &[h])
            .with("a", &[h]);
        l.with("v", &[h, o]).with("c", &[o])
    }
    fn state_layout(&self) -> Layout {
        Layout::new().with("h", &[self.hidden])
    }
    fn init_params(&self, rng: &mut Rng, p: &mut Tensors<S>) {
        p.data_mut()
            .iter_mut()
            .for_each(|v| *v = S::from_f64(rng.uniform_in(-1.0, 1.0)));
    }
    fn record_step(&self, r: &mut Rec<'_, S>, x: Var, state: &mut [Var]) -> Var {
        let [w, b, a, v, c] = ["w", "b", "a", "v", "c"].map(|n| r.param_named(n));
        let a = r.sigmoid(a);
        let u = r.linear(x, w, b);
        let u = r.tanh(u);
        let kept = r.mul_row(state[0], a);
        let rest = r.one_minus(a);
        let fresh = r.mul_row(u, rest);
        state[0] = r.add(kept, fresh);
        r.linear(state[0], v, c)
    }
}

struct Leaky;

impl Architecture for Leaky {
    const NAME: &'static str = "leaky";
    const FAMILY: Family = Family::Member;
    const SUMMARY: &'static str = "a leaky integrator with learned per-unit time constants";
    const CITATION: &'static str = "mnnn docs: authoring a member";
    const STATE_FORMULA: &'static str = "hidden";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &[];
    const PARAM_RANGES: &'static [ParamRange] = &[ParamRange::int("hidden", 1, 1 << 20, 6)];
    type Params = LeakyParams;
    type Cell<S: Scalar> = Derived<LeakyCell>;

    fn validate(p: &LeakyParams) -> Result<()> {
        check_range("hidden", p.hidden, 1, 1 << 20)
    }
    fn build<S: Scalar>(p: &LeakyParams, dims: Dims) -> Derived<LeakyCell> {
        Derived(LeakyCell {
            dims,
            hidden: p.hidden,
        })
    }
    fn state_size(p: &LeakyParams, _dims: Dims) -> usize {
        p.hidden
    }
    fn naive(
        p: &LeakyParams,
        dims: Dims,
        w: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        // The equations once more, one unit at a time, for the suite's `reference` property.
        let (wx, b, a) = (values(w, "w")?, values(w, "b")?, values(w, "a")?);
        let (v, c) = (values(w, "v")?, values(w, "c")?);
        let mut h = values(state, "h")?;
        let mut ys = Array2::zeros((xs.nrows(), dims.output));
        for (t, x) in xs.rows().into_iter().enumerate() {
            let u = vec_mat(&x.to_vec(), &wx, p.hidden);
            for j in 0..p.hidden {
                let keep = sigmoid(a[j]);
                h[j] = keep * h[j] + (1.0 - keep) * (u[j] + b[j]).tanh();
            }
            let y = vec_mat(&h, &v, dims.output);
            for k in 0..dims.output {
                ys[[t, k]] = y[k] + c[k];
            }
        }
        Some(ys)
    }
}

mnnn_core::register!(Leaky);

// ---- the checks ----

#[test]
fn the_leaky_integrator_passes_the_suite() {
    let r = Suite::new().check("leaky").unwrap();
    assert!(r.passed(), "{}", table(std::slice::from_ref(&r)));
    // Its naive loop is checked, not skipped.
    assert_eq!(r.outcome(Property::Reference), Some(&Outcome::Pass));
}

#[test]
fn the_leaky_integrator_learns_a_delayed_recall() {
    // y_t = x_{t−1}: only a memory of the last input can give it.
    let mut rng = Rng::new(4);
    let sequence = |rng: &mut Rng| {
        let x = Array2::from_shape_fn((40, 1), |_| rng.normal());
        let y = Array2::from_shape_fn((40, 1), |(t, _)| if t > 0 { x[[t - 1, 0]] } else { 0.0 });
        Sequence {
            inputs: Inputs::Real(x),
            targets: Targets::Real(y),
            mask: Some((0..40).map(|t| t > 0).collect()),
        }
    };
    let data = Dataset {
        io: IoSpec::regression(1, 1),
        sequences: (0..12).map(|_| sequence(&mut rng)).collect(),
    };
    let entry = Entry::of::<Leaky>();
    let mut m = entry
        .create::<f64>(Some("(hidden: 8)"), &data.io, 1)
        .unwrap();
    let before = m.params().clone();
    let mse0 = m.evaluate(&data).unwrap().mse.unwrap();
    let cfg = TrainConfig {
        epochs: 40,
        validation: 0.0,
        window: 0,
        learning_rate: 0.02,
        ..Default::default()
    };
    m.fit(&data, &cfg, &mut |_| {}).unwrap();
    let mse1 = m.evaluate(&data).unwrap().mse.unwrap();
    assert!(mse1 < 0.5 * mse0, "mse {mse0} → {mse1}");
    for (i, e) in before.layout().entries().iter().enumerate() {
        assert_ne!(
            before.slice(i),
            m.params().slice(i),
            "{} was not trained",
            e.name
        );
    }
}
