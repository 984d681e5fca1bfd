//! The forward-only operator against the tape's forms and against token loops, in f64.

use super::{Form, WINDOW, linear_memory};
use crate::memory::{self, Fast, HeadParams, Tokens};
use crate::params::Memory;
use crate::reference::{Head, Stream, Weights, normal, relative_error, unit_rows};
use crate::tape::Tape;
use mnnn_core::Rng;
use ndarray::{Array2, ArrayView2, s};

/// A stream for a memory without forgetting or momentum, and its starting weights.
fn stream(t: usize, d: usize, seed: u64) -> (Stream, Array2<f64>) {
    let mut rng = Rng::new(seed);
    let st = Stream {
        q: unit_rows(&mut rng, t, d),
        k: unit_rows(&mut rng, t, d),
        v: normal(&mut rng, t, d, 1.0),
        theta: (0..t).map(|_| rng.uniform_in(0.05, 0.9)).collect(),
        log_keep: None,
        log_eta: None,
    };
    (st, normal(&mut rng, d, d, 0.3))
}

/// Token by token (the reference): the delta rule is the sequential recursion, `Dual` takes
/// every gradient at its chunk's starting weights.
fn token_loop(
    st: &Stream,
    w0: &Array2<f64>,
    chunk: usize,
    form: Form,
) -> (Array2<f64>, Array2<f64>) {
    let head = Head {
        memory: Memory::Linear,
        ln: None,
        static_w1: None,
        gate: None,
    };
    let phi = Weights {
        w: vec![w0.clone()],
        b: vec![None],
    };
    let chunk = if form == Form::Delta { 1 } else { chunk };
    let (out, mut phi, _) = head.run(st, chunk, phi.clone(), phi.zeros_like());
    (out, phi.w.remove(0))
}

/// Through the layer's own segment functions on the tape.
fn on_tape(st: &Stream, w0: &Array2<f64>, chunk: usize, form: Form) -> (Array2<f64>, Array2<f64>) {
    let (t_len, d) = st.q.dim();
    let hp = HeadParams {
        ln: None,
        static_w1: None,
        gate: None,
    };
    let mut out = Array2::zeros((t_len, d));
    let mut w = w0.clone();
    for t0 in (0..t_len).step_by(chunk) {
        let n = chunk.min(t_len - t0);
        let mut tape = Tape::new();
        let rows = s![t0..t0 + n, ..];
        let leaf = |tape: &mut Tape<f64>, a: ArrayView2<f64>| tape.leaf(a.to_owned());
        let tok = Tokens {
            q: leaf(&mut tape, st.q.slice(rows)),
            k: leaf(&mut tape, st.k.slice(rows)),
            v: leaf(&mut tape, st.v.slice(rows)),
            theta: tape.leaf(Array2::from_shape_fn((n, 1), |(i, _)| st.theta[t0 + i])),
            log_keep: None,
            log_eta: None,
        };
        let phi = Fast {
            w: vec![tape.leaf(w)],
            b: vec![None],
        };
        let o = match form {
            Form::Dual => memory::segment(&mut tape, Memory::Linear, &hp, &phi, None, &phi, &tok),
            Form::Delta => memory::exact_segment(&mut tape, &phi, &tok),
        };
        out.slice_mut(rows).assign(&tape.value(o.o));
        w = tape.value(o.phi.w[0]).to_owned();
    }
    (out, w)
}

fn run(st: &Stream, w0: &Array2<f64>, chunk: usize, form: Form) -> (Array2<f64>, Array2<f64>) {
    linear_memory(
        st.q.view(),
        st.k.view(),
        st.v.view(),
        &st.theta,
        w0.view(),
        chunk,
        form,
    )
}

fn assert_close(what: &str, got: &(Array2<f64>, Array2<f64>), want: &(Array2<f64>, Array2<f64>)) {
    let (eo, ew) = (
        relative_error(got.0.view(), want.0.view()),
        relative_error(got.1.view(), want.1.view()),
    );
    assert!(
        eo < 1e-10 && ew < 1e-10,
        "{what}: reads {eo:e}, weights {ew:e}"
    );
}

#[test]
fn matches_the_token_loop_and_the_tape_at_every_chunk_size() {
    let d = 5;
    // 200 tokens at b = 3 span two windows, the last one partial; 100 at b = 64 end on a chunk of 36.
    const { assert!(200 > WINDOW * 3) };
    for (seed, &t) in [1usize, 7, 64, 100, 200].iter().enumerate() {
        let (st, w0) = stream(t, d, seed as u64);
        for chunk in [1, 3, 4, 16, 64] {
            for form in [Form::Dual, Form::Delta] {
                let got = run(&st, &w0, chunk, form);
                let what = format!("{form:?}, T {t}, b {chunk}");
                assert_close(&what, &got, &token_loop(&st, &w0, chunk, form));
                assert_close(&what, &got, &on_tape(&st, &w0, chunk, form));
            }
        }
    }
}

#[test]
fn a_pool_of_one_thread_runs_the_two_halves_in_turn() {
    let (st, w0) = stream(150, 4, 9);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    for form in [Form::Dual, Form::Delta] {
        let got = pool.install(|| run(&st, &w0, 4, form));
        assert_close(&format!("{form:?}"), &got, &token_loop(&st, &w0, 4, form));
    }
}

#[test]
fn chunk_zero_is_one_and_an_empty_stream_keeps_the_weights() {
    let (st, w0) = stream(9, 3, 4);
    for form in [Form::Dual, Form::Delta] {
        assert_close("chunk 0", &run(&st, &w0, 0, form), &run(&st, &w0, 1, form));
    }
    let (empty, w0) = stream(0, 3, 5);
    let (o, w) = run(&empty, &w0, 8, Form::Delta);
    assert_eq!((o.dim(), w), ((0, 3), w0));
}

/// In f32 the products go through the AVX-512 kernel where the CPU has it: the operator
/// still follows the f64 token loop to f32 rounding, at the benchmark's shape class.
#[test]
fn f32_follows_the_token_loop() {
    let (st, w0) = stream(300, 32, 21);
    let f = |a: &Array2<f64>| a.mapv(|x| x as f32);
    for form in [Form::Dual, Form::Delta] {
        let theta: Vec<f32> = st.theta.iter().map(|&x| x as f32).collect();
        let (q, k, v, w0_32) = (f(&st.q), f(&st.k), f(&st.v), f(&w0));
        let (o, w) = linear_memory(q.view(), k.view(), v.view(), &theta, w0_32.view(), 64, form);
        let want = token_loop(&st, &w0, 64, form);
        let eo = relative_error(o.mapv(f64::from).view(), want.0.view());
        let ew = relative_error(w.mapv(f64::from).view(), want.1.view());
        assert!(
            eo < 1e-4 && ew < 1e-4,
            "{form:?}: reads {eo:e}, weights {ew:e}"
        );
    }
}
