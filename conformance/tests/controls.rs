//! Negative controls: deliberately broken cells, registered only in this test binary, each of
//! which the right property must catch with a shrunk counterexample. A correct twin passes
//! everything, so the failures are the defects' and nothing else's.

use mnnn_conformance::{CountingAllocator, Outcome, Property, Suite, table};
use mnnn_core::autodiff::{Derived, Rec, TapeCell, Var};
use mnnn_core::cell::{Cell, Diagnostic, Dims};
use mnnn_core::registry::{Architecture, Capability, Family, ParamRange};
use mnnn_core::{Layout, Result, Rng, Scalar, Tensors};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const OK: u8 = 0;
const GROWING: u8 = 1;
const SNAPSHOT_GAP: u8 = 2;
const CHUNK_SKIP: u8 = 3;
const GRAD_SIGN: u8 = 4;
const SEED_IGNORED: u8 = 5;
const WIDE_PANIC: u8 = 6;
const FRESH_GRAD: u8 = 7;
const WRONG_TERM: u8 = 8;
const LOOSE_DIAGNOSTIC: u8 = 9;
const NAMES: [&str; 10] = [
    "ctl-ok",
    "ctl-growing",
    "ctl-snapshot-gap",
    "ctl-chunk-skip",
    "ctl-grad-sign",
    "ctl-seed-ignored",
    "ctl-wide-panic",
    "ctl-fresh-grad",
    "ctl-wrong-term",
    "ctl-loose-diagnostic",
];

/// A leaky linear memory `h_t = a ⊙ h_{t−1} + x_t W`, `y_t = h_t V`, starting from a learned
/// `h_0`, with defect `D`.
#[derive(Clone, Debug)]
struct Leaky<const D: u8> {
    dims: Dims,
    hidden: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LeakyParams {
    hidden: usize,
}

impl Default for LeakyParams {
    fn default() -> Self {
        LeakyParams { hidden: 4 }
    }
}

#[derive(Default)]
struct Scratch {
    history: Vec<f64>,
    hidden_extra: Vec<f64>,
}

#[derive(Default)]
struct Tape<S> {
    x: Vec<ArrayView2Owned<S>>,
}

type ArrayView2Owned<S> = (Array2<S>, Array2<S>); // (x_t, h_{t−1})

const W: usize = 0;
const A: usize = 1;
const V: usize = 2;
const H0: usize = 3;

impl<const D: u8> Leaky<D> {
    /// The weight of the input term: wrongly doubled, consistently in every form and in the
    /// backward pass, under `WRONG_TERM`.
    fn gain<S: Scalar>() -> S {
        S::from_f64(if D == WRONG_TERM { 2.0 } else { 1.0 })
    }

    fn check_width(&self) {
        if D == WIDE_PANIC && self.dims.input > 8 {
            panic!("inputs wider than 8 are not handled");
        }
    }
}

impl<S: Scalar, const D: u8> Cell<S> for Leaky<D> {
    type Tape = Tape<S>;
    type Scratch = Scratch;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        Layout::new()
            .with("w", &[self.dims.input, self.hidden])
            .with("a", &[self.hidden])
            .with("v", &[self.hidden, self.dims.output])
            .with("h0", &[self.hidden])
    }

    fn state_layout(&self) -> Layout {
        Layout::new().with("h", &[self.hidden])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        let mut fixed = Rng::new(42);
        let rng = if D == SEED_IGNORED { &mut fixed } else { rng };
        for v in params.data_mut() {
            *v = S::from_f64(rng.uniform_in(-0.5, 0.5));
        }
    }

    fn reset_state(&self, p: &Tensors<S>, state: &mut Tensors<S>) {
        for mut row in state.mat_mut(0).rows_mut() {
            row.assign(&p.vec(H0));
        }
    }

    fn reset_state_backward(&self, _p: &Tensors<S>, dstate: &Tensors<S>, grads: &mut Tensors<S>) {
        if D != FRESH_GRAD {
            grads
                .vec_mut(H0)
                .scaled_add(S::one(), &dstate.mat(0).sum_axis(Axis(0)));
        }
    }

    fn step(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        scratch: &mut Scratch,
    ) {
        self.check_width();
        let a = p.vec(A);
        let mut h = state.mat_mut(0);
        for mut row in h.rows_mut() {
            row *= &a;
        }
        general_mat_mul(Self::gain(), &x, &p.mat(W), S::one(), &mut h);
        if D == GROWING {
            scratch.history.extend(x.iter().map(|v| v.as_f64()));
        }
        let mut out = h.to_owned();
        if D == SNAPSHOT_GAP {
            // A second memory kept outside the state tensors.
            scratch.hidden_extra.resize(out.len(), 0.0);
            for (e, o) in scratch.hidden_extra.iter_mut().zip(out.iter_mut()) {
                *e = 0.5 * *e + o.as_f64();
                *o += S::from_f64(*e);
            }
        }
        general_mat_mul(S::one(), &out.view(), &p.mat(V), S::zero(), &mut y);
    }

    fn forward_window(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        self.check_width();
        let mut local = Tape::default();
        let tape = tape.unwrap_or(&mut local);
        tape.x.clear();
        let a = p.vec(A);
        for (x, mut y) in xs.axis_iter(Axis(0)).zip(ys.axis_iter_mut(Axis(0))) {
            let prev = state.mat(0).to_owned();
            let mut h = state.mat_mut(0);
            for mut row in h.rows_mut() {
                row *= &a;
            }
            general_mat_mul(Self::gain(), &x, &p.mat(W), S::one(), &mut h);
            general_mat_mul(S::one(), &h, &p.mat(V), S::zero(), &mut y);
            tape.x.push((x.to_owned(), prev));
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
        let a = p.vec(A).to_owned();
        let mut dh = dstate.mat(0).to_owned();
        for t in (0..tape.x.len()).rev() {
            let (x, prev) = &tape.x[t];
            let dy = dys.index_axis(Axis(0), t);
            let mut h = prev.clone();
            for mut row in h.rows_mut() {
                row *= &a;
            }
            h.scaled_add(Self::gain(), &x.dot(&p.mat(W)));
            general_mat_mul(S::one(), &h.t(), &dy, S::one(), &mut grads.mat_mut(V));
            dh += &dy.dot(&p.mat(V).t());
            let da = (&dh * prev).sum_axis(Axis(0));
            let sign = if D == GRAD_SIGN { -S::one() } else { S::one() };
            grads.vec_mut(A).scaled_add(sign, &da);
            general_mat_mul(Self::gain(), &x.t(), &dh, S::one(), &mut grads.mat_mut(W));
            if let Some(dx) = dxs.as_mut() {
                let g: S = Self::gain();
                dx.index_axis_mut(Axis(0), t)
                    .assign(&(dh.dot(&p.mat(W).t()) * g));
            }
            for mut row in dh.rows_mut() {
                row *= &a;
            }
        }
        dstate.mat_mut(0).assign(&dh);
    }

    fn forward_chunked(
        &self,
        p: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        chunk: usize,
        scratch: &mut Scratch,
    ) {
        let t = xs.dim().0;
        for k in 0..t {
            let last_of_chunk = (k + 1) % chunk == 0 || k + 1 == t;
            if D == CHUNK_SKIP && last_of_chunk {
                continue; // the defect: the chunk's last step is never run
            }
            self.step(
                p,
                state,
                xs.index_axis(Axis(0), k),
                ys.index_axis_mut(Axis(0), k),
                scratch,
            );
        }
    }

    fn diagnostics(&self, _p: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        // Under `LOOSE_DIAGNOSTIC`, the name drifts from the one declared (as a rename in
        // one place and not the other would).
        vec![Diagnostic {
            name: if D == LOOSE_DIAGNOSTIC {
                "mean_h"
            } else {
                "mean_abs_h"
            },
            value: state.data().iter().map(|v| v.as_f64().abs()).sum::<f64>(),
        }]
    }
}

impl<const D: u8> Architecture for Leaky<D> {
    const NAME: &'static str = NAMES[D as usize];
    const FAMILY: Family = Family::Control;
    const SUMMARY: &'static str = "a leaky linear memory, for testing the suite";
    const CITATION: &'static str = "mnnn conformance negative controls";
    const STATE_FORMULA: &'static str = "hidden";
    const CAPABILITIES: &'static [Capability] = &[Capability::Trainable, Capability::ExactChunked];
    const DIAGNOSTICS: &'static [&'static str] = &["mean_abs_h"];
    const PARAM_RANGES: &'static [ParamRange] = &[ParamRange::int("hidden", 1, 1024, 4)];
    type Params = LeakyParams;
    type Cell<S: Scalar> = Leaky<D>;

    fn validate(p: &LeakyParams) -> Result<()> {
        mnnn_core::registry::check_range("hidden", p.hidden, 1, 1024)
    }

    fn build<S: Scalar>(p: &LeakyParams, dims: Dims) -> Leaky<D> {
        Leaky {
            dims,
            hidden: p.hidden,
        }
    }

    fn state_size(p: &LeakyParams, _dims: Dims) -> usize {
        p.hidden
    }

    fn naive(
        p: &LeakyParams,
        dims: Dims,
        weights: &Tensors<f64>,
        state: &Tensors<f64>,
        xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        let (w, a, v) = (weights.get("w")?, weights.get("a")?, weights.get("v")?);
        let mut h: Vec<f64> = state.data().to_vec();
        let mut ys = Array2::zeros((xs.nrows(), dims.output));
        for (t, x) in xs.rows().into_iter().enumerate() {
            for j in 0..p.hidden {
                let input: f64 = (0..dims.input).map(|i| x[i] * w[[i, j]]).sum();
                h[j] = a[[j]] * h[j] + input;
            }
            for k in 0..dims.output {
                ys[[t, k]] = (0..p.hidden).map(|j| h[j] * v[[j, k]]).sum();
            }
        }
        Some(ys)
    }
}

mnnn_core::register!(Leaky<OK>);
mnnn_core::register!(Leaky<GROWING>);
mnnn_core::register!(Leaky<SNAPSHOT_GAP>);
mnnn_core::register!(Leaky<CHUNK_SKIP>);
mnnn_core::register!(Leaky<GRAD_SIGN>);
mnnn_core::register!(Leaky<SEED_IGNORED>);
mnnn_core::register!(Leaky<WIDE_PANIC>);
mnnn_core::register!(Leaky<FRESH_GRAD>);
mnnn_core::register!(Leaky<WRONG_TERM>);
mnnn_core::register!(Leaky<LOOSE_DIAGNOSTIC>);

fn caught(name: &str, property: Property, expect: &str) {
    let report = Suite::new().check_only(name, &[property]).unwrap();
    match report.outcome(property) {
        Some(Outcome::Fail(msg)) => {
            assert!(
                msg.contains("minimal case: params (hidden: "),
                "no shrunk counterexample: {msg}"
            );
            assert!(
                msg.contains(expect),
                "{name}: expected '{expect}' in\n{msg}"
            );
            println!("{name} / {property}: {msg}");
        }
        other => panic!("{name}: {property} should fail, got {other:?}"),
    }
}

#[test]
fn the_correct_twin_passes_everything() {
    let r = Suite::new().check("ctl-ok").unwrap();
    assert!(r.passed(), "{}", table(std::slice::from_ref(&r)));
    assert!(r.properties.iter().all(|p| p.outcome == Outcome::Pass));
}

#[test]
fn a_state_that_grows_is_caught_by_no_growth() {
    caught("ctl-growing", Property::NoGrowth, "the heap grew by");
}

#[test]
fn memory_left_out_of_the_snapshot_is_caught_by_persistence() {
    caught(
        "ctl-snapshot-gap",
        Property::Persistence,
        "first difference",
    );
}

#[test]
fn a_chunked_path_that_skips_steps_is_caught_by_chunked() {
    caught(
        "ctl-chunk-skip",
        Property::Chunked,
        "chunk 1: relative distance",
    );
}

#[test]
fn a_sign_error_in_the_gradient_is_caught_by_gradients() {
    caught("ctl-grad-sign", Property::Gradients, "parameter 'a'");
}

/// [`Leaky`]'s equations in tape operations: the derived reference its hand-written backward
/// is checked against.
#[derive(Clone, Debug)]
struct LeakyTape(Leaky<OK>);

impl TapeCell<f64> for LeakyTape {
    fn dims(&self) -> Dims {
        self.0.dims
    }

    fn param_layout(&self) -> Layout {
        Cell::<f64>::param_layout(&self.0)
    }

    fn state_layout(&self) -> Layout {
        Cell::<f64>::state_layout(&self.0)
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<f64>) {
        Cell::<f64>::init_params(&self.0, rng, params)
    }

    fn record_step(&self, r: &mut Rec<'_, f64>, x: Var, state: &mut [Var]) -> Var {
        let (w, a, v) = (r.param(W), r.param(A), r.param(V));
        let kept = r.mul_row(state[0], a);
        let fresh = r.matmul(x, w);
        state[0] = r.add(kept, fresh);
        r.matmul(state[0], v)
    }
}

fn derived_leaky(p: &LeakyParams, dims: Dims) -> Derived<LeakyTape> {
    Derived(LeakyTape(Leaky {
        dims,
        hidden: p.hidden,
    }))
}

#[test]
fn a_correct_hand_backward_equals_the_derived_one() {
    let outcome = Suite::new().check_derived::<Leaky<OK>, _>(derived_leaky);
    assert_eq!(outcome, Outcome::Pass);
}

#[test]
fn a_wrong_term_in_a_hand_backward_is_caught_against_the_derived_one() {
    match Suite::new().check_derived::<Leaky<GRAD_SIGN>, _>(derived_leaky) {
        Outcome::Fail(msg) => {
            assert!(
                msg.contains("parameter gradient 'a'") && msg.contains("minimal case: params"),
                "{msg}"
            );
            println!("ctl-grad-sign / derived: {msg}");
        }
        other => panic!("a sign error in 'a' should fail, got {other:?}"),
    }
}

#[test]
fn a_learned_initial_state_left_untrained_is_caught_by_gradients() {
    caught(
        "ctl-fresh-grad",
        Property::Gradients,
        "parameter 'h0' from a fresh state",
    );
}

#[test]
fn an_init_that_ignores_the_seed_is_caught_by_determinism() {
    caught(
        "ctl-seed-ignored",
        Property::Determinism,
        "the seed is ignored",
    );
}

#[test]
fn a_panic_on_wide_input_is_caught_by_bad_input() {
    caught(
        "ctl-wide-panic",
        Property::BadInput,
        "panicked: inputs wider than 8",
    );
}

#[test]
fn a_term_wrong_in_every_form_alike_is_caught_by_reference_alone() {
    // Step, window, chunked form and backward agree with one another, so the properties that
    // compare forms (and the gradient check) pass; only the naive loop sees the doubled term.
    let r = Suite::new()
        .check_only(
            "ctl-wrong-term",
            &[
                Property::Chunked,
                Property::Gradients,
                Property::Persistence,
            ],
        )
        .unwrap();
    assert!(r.passed(), "{}", table(std::slice::from_ref(&r)));
    caught(
        "ctl-wrong-term",
        Property::Reference,
        "step: relative distance",
    );
}

#[test]
fn a_diagnostic_other_than_the_declared_one_is_caught_by_diagnostics() {
    caught(
        "ctl-loose-diagnostic",
        Property::Diagnostics,
        "diagnostic 'mean_h' is returned but not declared",
    );
}
