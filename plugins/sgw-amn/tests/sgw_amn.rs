//! SGW-AMN against its equations (both modes, the reference's in f32), finite differences
//! (the sparsity penalty included), its parameter ranges and its diagnostics.

// The equations are written out as plain index loops, the way the spec states them.
#![allow(clippy::needless_range_loop)]

use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::testkit;
use mnnn_core::{DynModel, Entry, Inputs, IoSpec, Rng, Scalar, Tensors};
use mnnn_sgw_amn::SgwAmn;
use ndarray::Array2;

fn model<S: Scalar>(params: &str, i: usize, o: usize, seed: u64) -> Box<dyn DynModel<S>> {
    Entry::of::<SgwAmn>()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

fn get(t: &Tensors<f64>, name: &str) -> Vec<f64> {
    t.slice(
        t.layout()
            .index_of(name)
            .unwrap_or_else(|| panic!("no {name}")),
    )
    .to_vec()
}

fn set<S: Scalar>(t: &mut Tensors<S>, name: &str, v: &[f64]) {
    let i = t.layout().index_of(name).unwrap();
    for (d, &x) in t.slice_mut(i).iter_mut().zip(v) {
        *d = S::from_f64(x);
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn gelu(u: f64) -> f64 {
    0.5 * u * (1.0 + (0.797884560803 * (u + 0.044715 * u * u * u)).tanh())
}

const I: usize = 2;
const P: usize = 5;
const W: usize = 3;
const Q: usize = 4;
const M: usize = 2;
const O: usize = 2;

struct Plain {
    design: bool,
    temp: f64,
    dt: f64,
    dec: f64,
    hd: f64,
    mix: f64,
    clip: f64,
    a: Vec<f64>,
    bf: Vec<f64>,
    wip: Vec<f64>,
    cw: Vec<f64>,
    wwq: Vec<f64>,
    k: Vec<f64>,
    q: Vec<f64>,
    v: Vec<f64>,
    wout: Vec<f64>,
}

impl Plain {
    /// One step (§6.3 of the reference report in reference mode; the crate docs in design
    /// mode); updates `ws` (W), `wm` (W·W), `mf` (M·Q), returns `y`.
    fn step(&self, x: &[f64], ws: &mut [f64], wm: &mut [f64], mf: &mut [f64]) -> Vec<f64> {
        let pre: Vec<f64> = (0..P)
            .map(|i| gelu((0..I).map(|j| x[j] * self.wip[j * P + i]).sum()))
            .collect();
        let sc: Vec<f64> = (0..P)
            .map(|i| (0..W).map(|j| (pre[i] * self.cw[i * W + j]).abs()).sum())
            .collect();
        // Greedy top-W by score, ties to the lower index.
        let mut marked = sc.clone();
        let mut win = Vec::new();
        for _ in 0..W {
            let mut best = 0;
            for i in 1..P {
                if marked[i] > marked[best] {
                    best = i;
                }
            }
            win.push(best);
            marked[best] = -1.0;
        }
        let weights: Vec<f64> = if self.design {
            let e: Vec<f64> = win.iter().map(|&i| (sc[i] / self.temp).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| W as f64 * v / s).collect()
        } else {
            vec![1.0; W]
        };
        let mut w: Vec<f64> = if self.design {
            ws.to_vec()
        } else {
            vec![0.0; W]
        };
        for j in 0..W {
            for (n, &i) in win.iter().enumerate() {
                w[j] += weights[n] * pre[i] * self.cw[i * W + j];
            }
        }
        let mr: Vec<f64> = (0..W)
            .map(|i| (0..W).map(|j| wm[i * W + j] * w[j]).sum())
            .collect();
        for i in 0..W {
            let f = (w[i] + mr[i]).tanh();
            let tau = self.a[i] + self.bf[i] * f.abs();
            let v = w[i] + self.dt * (-tau * w[i] + self.bf[i] * f);
            ws[i] = if self.design {
                v.clamp(-self.clip, self.clip)
            } else {
                v
            };
        }
        for i in 0..W {
            for j in 0..W {
                wm[i * W + j] = self.hd * wm[i * W + j] + (1.0 - self.hd) * ws[i] * ws[j];
            }
        }
        let mut p: Vec<f64> = (0..Q)
            .map(|i| {
                (0..W)
                    .map(|j| ws[j] * self.wwq[j * Q + i])
                    .sum::<f64>()
                    .tanh()
            })
            .collect();
        let wscale = if self.design { 1.0 - self.dec } else { 1.0 };
        for m in 0..M {
            let key = sigmoid((0..Q).map(|i| p[i] * self.k[i * M + m]).sum());
            for i in 0..Q {
                mf[m * Q + i] = self.dec * mf[m * Q + i] + wscale * key * p[i] * self.v[m * Q + i];
            }
        }
        let qry: Vec<f64> = (0..M)
            .map(|m| sigmoid((0..Q).map(|i| p[i] * self.q[i * M + m]).sum()))
            .collect();
        for i in 0..Q {
            let read: f64 = (0..M).map(|m| qry[m] * mf[m * Q + i]).sum();
            p[i] = self.mix * p[i] + (1.0 - self.mix) * read.tanh();
        }
        (0..O)
            .map(|o| (0..Q).map(|j| p[j] * self.wout[j * O + o]).sum())
            .collect()
    }
}

fn softplus(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

/// Runs random inputs through the model and the plain loop; the largest relative distance.
fn against_plain<S: Scalar>(extra: &str, design: bool, k: (f64, f64, f64, f64, f64, f64)) -> f64 {
    let params = format!("(pre: {P}, workspace: {W}, post: {Q}, manifold: {M}, {extra})");
    let mut m = model::<S>(&params, I, O, 5);
    let mut p = m.params().clone();
    set(&mut p, "head.w", &[1.0, 0.0, 0.0, 1.0]);
    set(&mut p, "head.b", &[0.0, 0.0]);
    m.set_params(&p).unwrap();
    let mut rng = Rng::new(8);
    let mut st = m.state().clone();
    st.data_mut()
        .iter_mut()
        .for_each(|v| *v = S::from_f64(0.7 * rng.normal()));
    m.set_state(&st).unwrap();
    let p = m.params().cast::<f64>();
    let map = |n: &str| -> Vec<f64> {
        if design {
            get(&p, &format!("{n}_raw"))
                .into_iter()
                .map(softplus)
                .collect()
        } else {
            get(&p, n)
        }
    };
    let (temp, dt, dec, hd, mix, clip) = k;
    let w = Plain {
        design,
        temp,
        dt,
        dec,
        hd,
        mix,
        clip,
        a: map("a"),
        bf: map("bf"),
        wip: get(&p, "w_ip"),
        cw: get(&p, "comp"),
        wwq: get(&p, "w_wq"),
        k: get(&p, "k"),
        q: get(&p, "q"),
        v: get(&p, "v"),
        wout: get(&p, "w_out"),
    };
    let st = m.state().cast::<f64>();
    let (mut ws, mut wm, mut mf) = (get(&st, "ws"), get(&st, "wm"), get(&st, "m"));
    let steps = 7;
    let xs: Vec<f64> = (0..steps * I).map(|_| 1.5 * rng.normal()).collect();
    let ys = m
        .predict(&Inputs::Real(
            Array2::from_shape_vec((steps, I), xs.iter().map(|&v| S::from_f64(v)).collect())
                .unwrap(),
        ))
        .unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
    let mut worst: f64 = 0.0;
    for t in 0..steps {
        let y = w.step(&xs[t * I..(t + 1) * I], &mut ws, &mut wm, &mut mf);
        for o in 0..O {
            worst = worst.max(rel(ys[[t, o]].as_f64(), y[o]));
        }
    }
    let st = m.state().cast::<f64>();
    for (name, want) in [("ws", &ws), ("wm", &wm), ("m", &mf)] {
        for (a, b) in get(&st, name).iter().zip(want.iter()) {
            worst = worst.max(rel(*a, *b));
        }
    }
    worst
}

#[test]
fn design_steps_follow_the_equations() {
    let worst = against_plain::<f64>(
        "temperature: 0.7, dt: 0.3, memory_decay: 0.9, workspace_decay: 0.8, mix: 0.6, state_clip: 0.4",
        true,
        (0.7, 0.3, 0.9, 0.8, 0.6, 0.4),
    );
    assert!(worst < 1e-12, "design: {worst:e}");
    let worst = against_plain::<f64>("", true, (0.5, 0.1, 0.995, 0.98, 0.7, 10.0));
    assert!(worst < 1e-12, "design defaults: {worst:e}");
}

#[test]
fn reference_mode_reproduces_the_reference_forward_pass_in_f32() {
    let worst = against_plain::<f32>(
        "compat: \"reference\"",
        false,
        (0.5, 0.1, 0.995, 0.98, 0.7, f64::INFINITY),
    );
    assert!(worst < 2e-5, "reference: {worst:e}");
}

fn check_gradients(params: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut m = model::<f64>(params, 3, 2, seed);
    let mut p = m.params().clone();
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.2 * rng.normal());
    m.set_params(&p).unwrap();
    let data = regression_data(&mut rng, &[8, 5], 3, 2, 1.5);
    let mut s0 = m.batch_state(2);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v = 0.6 * rng.normal());
    let (_, g) = m.gradients(&data, Some(&s0)).unwrap();
    let run = |eps: f64| check_model_params(m.as_ref(), &data, Some(&s0), &g.params, eps);
    let (fine, coarse) = (run(1e-6), run(1e-4));
    for (c, other) in fine.into_iter().zip(coarse) {
        let c = if other.rel_error < c.rel_error {
            other
        } else {
            c
        };
        assert!(
            c.analytic_norm > 1e-8,
            "{params}: {} has a zero gradient",
            c.name
        );
        assert!(
            c.rel_error < 1e-6,
            "{params}: param {}: {:e}",
            c.name,
            c.rel_error
        );
    }
    for c in check_model_state(m.as_ref(), &data, &s0, &g.state, 1e-6) {
        assert!(
            c.rel_error < 1e-6,
            "{params}: state {}: {:e}",
            c.name,
            c.rel_error
        );
    }
    for (k, err) in check_model_inputs(m.as_ref(), &data, Some(&s0), &g.inputs, 1e-6)
        .into_iter()
        .enumerate()
    {
        assert!(err < 1e-6, "{params}: inputs of sequence {k}: {err:e}");
    }
}

#[test]
fn bptt_gradients_match_central_differences_in_both_modes() {
    check_gradients(
        "(pre: 6, workspace: 3, post: 4, manifold: 2, state_clip: 0.6, dt: 0.4)",
        3,
    );
    check_gradients(
        "(pre: 5, workspace: 2, post: 3, manifold: 2, sparsity_penalty: 0.5)",
        7,
    );
    // More workspace units than pre units: winners repeat unit 0.
    check_gradients("(pre: 2, workspace: 3, post: 3, manifold: 2)", 4);
    // A post width past 8: the manifold's backward runs whole blocks of 8 columns and a
    // leftover column.
    check_gradients("(pre: 4, workspace: 2, post: 9, manifold: 2)", 5);
    check_gradients(
        "(pre: 6, workspace: 3, post: 4, manifold: 2, compat: \"reference\")",
        9,
    );
}

#[test]
fn the_sparsity_penalty_enters_the_loss_when_asked_for() {
    let mut rng = Rng::new(1);
    let data = regression_data(&mut rng, &[9, 4], 3, 2, 1.0);
    let base = "pre: 6, workspace: 3, post: 4, manifold: 2";
    let off = model::<f64>(&format!("({base})"), 3, 2, 2);
    let on = model::<f64>(&format!("({base}, sparsity_penalty: 0.5)"), 3, 2, 2);
    assert_eq!(off.params(), on.params());
    let extra = on.loss(&data, None).unwrap() - off.loss(&data, None).unwrap();
    // 0.5 · the mean over the 13 real steps of Σ|w|, from the workspace states of a run.
    let mut total = 0.0;
    for seq in &data.sequences {
        let mut m = model::<f64>(&format!("({base})"), 3, 2, 2);
        m.set_params(off.params()).unwrap();
        let Inputs::Real(x) = &seq.inputs else {
            unreachable!()
        };
        for row in x.rows() {
            m.predict(&Inputs::Real(row.to_owned().insert_axis(ndarray::Axis(0))))
                .unwrap();
            total += get(m.state(), "ws").iter().map(|v| v.abs()).sum::<f64>();
        }
    }
    let want = 0.5 * total / 13.0;
    assert!(
        (extra - want).abs() < 1e-12 * want.max(1.0),
        "{extra} vs {want}"
    );
}

#[test]
fn invalid_params_are_refused_with_their_range() {
    let e = Entry::of::<SgwAmn>();
    let io = IoSpec::regression(1, 1);
    for (text, want) in [
        ("(pre: 0)", "'pre' = 0: must be in [1, 16777216]"),
        (
            "(workspace: 0)",
            "'workspace' = 0: must be in [1, 16777216]",
        ),
        (
            "(temperature: 0.0)",
            "'temperature' = 0: must be in [0.01, 100]",
        ),
        (
            "(sparsity_penalty: -1.0)",
            "'sparsity_penalty' = -1: must be in [0, 10]",
        ),
        (
            "(memory_decay: 1.5)",
            "'memory_decay' = 1.5: must be in [0, 1]",
        ),
        ("(dt: NaN)", "'dt' = NaN: must be in [0.001, 1]"),
    ] {
        let err = testkit::refusal(&e, text, &io).to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn diagnostics_are_named_for_what_they_measure() {
    let mut m = model::<f64>(
        "(pre: 4, workspace: 2, post: 2, manifold: 1, temperature: 1.0)",
        1,
        1,
        3,
    );
    let mut st = m.state().clone();
    set(&mut st, "ws", &[0.05, -0.5]);
    set(&mut st, "wm", &[1.0, -1.0, 0.0, 2.0]);
    set(&mut st, "m", &[0.5, -1.5]);
    set(&mut st, "scores", &[0.0, 0.0, 0.0, 0.0]);
    m.set_state(&st).unwrap();
    let d = m.diagnostics();
    let val = |n: &str| d.iter().find(|x| x.name == n).unwrap().value;
    assert_eq!(val("active_fraction"), 0.5);
    // Equal scores: uniform routing, the maximum entropy ln 4.
    assert!((val("routing_entropy") - 4f64.ln()).abs() < 1e-12);
    assert!((val("routing_entropy_max") - 4f64.ln()).abs() < 1e-12);
    assert_eq!(val("bottleneck_rate"), 0.5);
    assert_eq!(val("manifold_energy"), 1.0);
    assert_eq!(val("workspace_memory_energy"), 1.0);
    // One dominant score: the entropy falls toward 0.
    set(&mut st, "scores", &[30.0, 0.0, 0.0, 0.0]);
    m.set_state(&st).unwrap();
    let e = m
        .diagnostics()
        .into_iter()
        .find(|x| x.name == "routing_entropy")
        .unwrap()
        .value;
    assert!(e < 1e-9, "{e}");
}
