//! The tape's chunked forms against the independent token loop of [`crate::reference`].

use crate::memory::{self, Fast, HeadParams, HeadState, Tokens};
use crate::params::{Memory, Update};
use crate::reference::{Head, Stream, Weights, fast_shapes, normal, relative_error, unit_rows};
use crate::schedule::{Cut, segments};
use crate::tape::{Tape, Var};
use mnnn_core::Rng;
use mnnn_core::buf::mat;
use mnnn_core::gradcheck::numeric_gradient;
use ndarray::{Array1, Array2};

struct Setup {
    head: Head,
    stream: Stream,
    phi: Weights,
    s: Weights,
}

fn setup(
    memory: Memory,
    last_layer: bool,
    momentum: bool,
    forget: bool,
    gate: bool,
    lr: f64,
    seed: u64,
) -> Setup {
    let (d, t) = (4, 23);
    let mut rng = Rng::new(seed);
    let h = 4 * d;
    let ln = (memory != Memory::Linear).then(|| {
        (
            Array1::from_shape_fn(d, |_| 1.0 + 0.2 * rng.normal()),
            Array1::from_shape_fn(d, |_| 0.2 * rng.normal()),
        )
    });
    let static_w1 = (memory == Memory::Mlp && last_layer).then(|| {
        (
            normal(&mut rng, d, h, 0.5),
            Array1::from_shape_fn(h, |_| 0.1 * rng.normal()),
        )
    });
    let update = if last_layer {
        Update::LastLayer
    } else {
        Update::All
    };
    let shapes = fast_shapes(memory, update, d);
    let mut make = |sd: f64| Weights {
        w: shapes
            .iter()
            .map(|&(r, c, _)| normal(&mut rng, r, c, sd))
            .collect(),
        b: shapes
            .iter()
            .map(|&(_, c, b)| b.then(|| Array1::from_shape_fn(c, |_| sd * rng.normal())))
            .collect(),
    };
    let phi = make(0.3);
    let s = if momentum {
        make(0.05)
    } else {
        phi.zeros_like()
    };
    let stream = Stream {
        q: unit_rows(&mut rng, t, d),
        k: unit_rows(&mut rng, t, d),
        v: normal(&mut rng, t, d, 1.0),
        theta: (0..t).map(|_| lr * rng.uniform_in(0.2, 1.0)).collect(),
        log_keep: forget.then(|| {
            (0..t)
                .map(|_| (1.0 - rng.uniform_in(0.0, 0.2)).ln())
                .collect()
        }),
        log_eta: momentum.then(|| (0..t).map(|_| rng.uniform_in(0.2, 0.9).ln()).collect()),
    };
    let head = Head {
        memory,
        ln,
        static_w1,
        gate: gate.then(|| (0.6, -1.0)),
    };
    Setup {
        head,
        stream,
        phi,
        s,
    }
}

fn leaf_weights(t: &mut Tape<f64>, w: &Weights) -> Fast {
    Fast {
        w: w.w.iter().map(|m| t.leaf(m.clone())).collect(),
        b: w.b
            .iter()
            .map(|b| {
                b.as_ref()
                    .map(|b| t.leaf(b.view().insert_axis(ndarray::Axis(0)).to_owned()))
            })
            .collect(),
    }
}

fn col(t: &mut Tape<f64>, v: &[f64]) -> Var {
    t.leaf(Array2::from_shape_vec((v.len(), 1), v.to_vec()).unwrap())
}

/// The tape's output for the whole stream cut into segments of the inner chunk `b`
/// (`exact`: blocks of `b` by the delta rule's exact algorithm, sequential semantics).
fn tape_run(su: &Setup, b: usize, exact: bool) -> Array2<f64> {
    let mut t = Tape::new();
    let st = &su.stream;
    let (q, k, v) = (
        t.leaf(st.q.clone()),
        t.leaf(st.k.clone()),
        t.leaf(st.v.clone()),
    );
    let theta = col(&mut t, &st.theta);
    let keep = st.log_keep.as_ref().map(|l| col(&mut t, l));
    let eta = st.log_eta.as_ref().map(|l| col(&mut t, l));
    let hp = HeadParams {
        ln: su.head.ln.as_ref().map(|(g, b)| {
            (
                t.leaf(g.view().insert_axis(ndarray::Axis(0)).to_owned()),
                t.leaf(b.view().insert_axis(ndarray::Axis(0)).to_owned()),
            )
        }),
        static_w1: su.head.static_w1.as_ref().map(|(w, b)| {
            (
                t.leaf(w.clone()),
                t.leaf(b.view().insert_axis(ndarray::Axis(0)).to_owned()),
            )
        }),
        gate: su.head.gate.map(|(a, c)| {
            (
                t.leaf(Array2::from_elem((1, 1), a)),
                t.leaf(Array2::from_elem((1, 1), c)),
            )
        }),
    };
    let start = HeadState {
        phi: leaf_weights(&mut t, &su.phi),
        momentum: st.log_eta.as_ref().map(|_| leaf_weights(&mut t, &su.s)),
        // Starting at a chunk boundary: the held snapshot is never read before it is set.
        snapshot: (!exact && b > 1).then(|| leaf_weights(&mut t, &su.phi)),
    };
    let win = Tokens {
        q,
        k,
        v,
        theta,
        log_keep: keep,
        log_eta: eta,
    };
    let (chunk, cut) = if exact {
        (1, Cut::Chunks(b))
    } else {
        (b, Cut::Chunks(b))
    };
    let (segs, _) = segments(st.q.nrows(), chunk, 0, cut);
    let out = memory::run_window(&mut t, su.head.memory, &hp, start, &win, &segs, exact);
    t.value(out.o).to_owned()
}

const MEMORIES: [(Memory, bool); 4] = [
    (Memory::Linear, false),
    (Memory::TttLinear, false),
    (Memory::Mlp, false),
    (Memory::Mlp, true),
];

#[test]
fn the_dual_form_equals_the_token_loop_at_every_chunk_size() {
    let mut worst: f64 = 0.0;
    for (mi, &(memory, last)) in MEMORIES.iter().enumerate() {
        for flags in 0..8u64 {
            let (mom, forget, gate) = (flags & 1 == 1, flags & 2 == 2, flags & 4 == 4);
            let su = setup(
                memory,
                last,
                mom,
                forget,
                gate,
                0.8,
                100 * mi as u64 + flags,
            );
            for b in [1, 2, 3, 4, 7, 16, 64] {
                let (want, _, _) = su.head.run(&su.stream, b, su.phi.clone(), su.s.clone());
                let got = tape_run(&su, b, false);
                let err = relative_error(got.view(), want.view());
                worst = worst.max(err);
                assert!(
                    err < 1e-10,
                    "{memory:?} last_layer {last} momentum {mom} forget {forget} gate {gate} b {b}: {err:e}"
                );
            }
        }
    }
    assert!(worst > 0.0, "some rounding is expected between two codes");
}

#[test]
fn the_exact_delta_form_equals_the_sequential_loop_at_every_block() {
    for forget in [false, true] {
        let su = setup(
            Memory::Linear,
            false,
            false,
            forget,
            false,
            1.0,
            7 + forget as u64,
        );
        let (want, _, _) = su.head.run(&su.stream, 1, su.phi.clone(), su.s.clone());
        for b in [1, 2, 3, 5, 8, 23, 64] {
            let got = tape_run(&su, b, true);
            let err = relative_error(got.view(), want.view());
            assert!(err < 1e-10, "forget {forget} block {b}: {err:e}");
        }
    }
}

#[test]
fn chunking_is_an_approximation_beyond_one_token() {
    // The mini-batch form is a different function at b > 1: a test that cannot tell them
    // apart would not be testing anything.
    let su = setup(Memory::Linear, false, false, false, false, 1.0, 3);
    let (seq, _, _) = su.head.run(&su.stream, 1, su.phi.clone(), su.s.clone());
    let chunked = tape_run(&su, 4, false);
    assert!(relative_error(chunked.view(), seq.view()) > 1e-3);
}

#[test]
fn the_inner_gradient_is_the_gradient_of_the_inner_loss() {
    for (mi, &(memory, last)) in MEMORIES.iter().enumerate() {
        let su = setup(memory, last, false, false, false, 1.0, 40 + mi as u64);
        let (k, v) = (su.stream.k.row(0), su.stream.v.row(0));
        let loss = |phi: &Weights| {
            let (_, e, _) = su.head.gradient(phi, k, v);
            0.5 * e.dot(&e)
        };
        let (g, _, _) = su.head.gradient(&su.phi, k, v);
        let h = 1e-6;
        for (i, w) in su.phi.w.iter().enumerate() {
            let mut x = w.as_slice().expect("standard layout").to_vec();
            let nums = numeric_gradient(&mut x, h, &mut |x| {
                let mut phi = su.phi.clone();
                phi.w[i] = mat(x, w.nrows(), w.ncols()).to_owned();
                loss(&phi)
            });
            for (idx, &num) in nums.iter().enumerate() {
                let (r, c) = (idx / w.ncols(), idx % w.ncols());
                let ana = g.w[i][(r, c)];
                assert!(
                    (num - ana).abs() < 1e-6 * (1.0 + num.abs()),
                    "{memory:?} last {last}: w{i}[{r},{c}] analytic {ana} numeric {num}"
                );
            }
            if let (Some(b), Some(gb)) = (&su.phi.b[i], &g.b[i]) {
                let mut x = b.to_vec();
                let nums = numeric_gradient(&mut x, h, &mut |x| {
                    let mut phi = su.phi.clone();
                    phi.b[i] = Some(Array1::from(x.to_vec()));
                    loss(&phi)
                });
                for (j, &num) in nums.iter().enumerate() {
                    assert!(
                        (num - gb[j]).abs() < 1e-6 * (1.0 + num.abs()),
                        "{memory:?}: b{i}[{j}] analytic {} numeric {num}",
                        gb[j]
                    );
                }
            }
        }
    }
}

/// The fused delta-rule primitive against the same function in elementary tape operations:
/// values and every input's gradient (random cotangents on the reads, the final weights and
/// the surprise), with and without the forget gate, at several block lengths.
#[test]
fn the_fused_delta_chunk_equals_its_composition() {
    let mut rng = Rng::new(21);
    for n in [1, 2, 5, 32] {
        for forget in [false, true] {
            let d = 6;
            let q0 = unit_rows(&mut rng, n, d);
            let k0 = unit_rows(&mut rng, n, d);
            let v0 = normal(&mut rng, n, d, 1.0);
            let w0 = normal(&mut rng, d, d, 0.3);
            let th: Vec<f64> = (0..n).map(|_| rng.uniform_in(0.05, 0.9)).collect();
            let lk: Vec<f64> = (0..n).map(|_| -rng.uniform_in(0.0, 0.3)).collect();
            let seeds = (
                normal(&mut rng, n, d, 1.0),
                normal(&mut rng, d, d, 1.0),
                normal(&mut rng, n, 1, 1.0),
            );
            let run = |fused: bool| {
                let mut t = Tape::<f64>::new();
                let (q, k, v, w) = (
                    t.leaf(q0.clone()),
                    t.leaf(k0.clone()),
                    t.leaf(v0.clone()),
                    t.leaf(w0.clone()),
                );
                let theta = col(&mut t, &th);
                let log_keep = forget.then(|| col(&mut t, &lk));
                let tok = Tokens {
                    q,
                    k,
                    v,
                    theta,
                    log_keep,
                    log_eta: None,
                };
                let start = Fast {
                    w: vec![w],
                    b: vec![None],
                };
                let out = if fused {
                    memory::exact_segment(&mut t, &start, &tok)
                } else {
                    memory::exact_segment_composed(&mut t, &start, &tok)
                };
                let vals = [out.o, out.phi.w[0], out.surprise].map(|x| t.value(x).to_owned());
                let g = t.backward(&[
                    (out.o, seeds.0.view().insert_axis(ndarray::Axis(0))),
                    (out.phi.w[0], seeds.1.view().insert_axis(ndarray::Axis(0))),
                    (out.surprise, seeds.2.view().insert_axis(ndarray::Axis(0))),
                ]);
                let grads: Vec<Array2<f64>> = std::iter::once(w)
                    .chain([q, k, v, theta])
                    .chain(log_keep)
                    .map(|x| {
                        g.get(x)
                            .map(|v| v.to_owned())
                            .unwrap_or_else(|| Array2::zeros(t.dim(x)))
                    })
                    .collect();
                (vals, grads)
            };
            let (fv, fg) = run(true);
            let (cv, cg) = run(false);
            for (a, b) in fv.iter().zip(&cv).chain(fg.iter().zip(&cg)) {
                let e = relative_error(a.view(), b.view());
                assert!(e < 1e-10, "n {n} forget {forget}: {e:e}\n{a}\n{b}");
            }
        }
    }
}
