//! AMN against its equations (both modes), reference files, finite differences, its
//! parameter ranges and the reference's own demo task.

// The equations are written out as plain index loops, the way the spec states them.
#![allow(clippy::needless_range_loop)]

use mnnn_amn::{Amn, import, reference_file_size};
use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::reference::{RefDims, build};
use mnnn_core::testkit::{self, assert_wrong_lengths_refused};
use mnnn_core::{
    Dataset, DynModel, Entry, Inputs, IoSpec, Rng, Scalar, Sequence, Targets, Tensors, TrainConfig,
};
use ndarray::Array2;

fn model<S: Scalar>(params: &str, i: usize, o: usize, seed: u64) -> Box<dyn DynModel<S>> {
    Entry::of::<Amn>()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

/// Sets the named tensor of `t` (which must exist and have `v.len()` values).
fn set(t: &mut Tensors<f64>, name: &str, v: &[f64]) {
    let i = t
        .layout()
        .index_of(name)
        .unwrap_or_else(|| panic!("no {name}"));
    t.slice_mut(i).copy_from_slice(v);
}

fn get<'a>(t: &'a Tensors<f64>, name: &str) -> &'a [f64] {
    t.slice(t.layout().index_of(name).unwrap())
}

fn softplus(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn clip(v: f64, l: f64) -> f64 {
    v.clamp(-l, l)
}

/// Plain weights of a tiny AMN (I inputs, H hidden, M manifold rows, O outputs), matrices
/// row-major input-major.
#[derive(Clone)]
struct Plain {
    i: usize,
    h: usize,
    m: usize,
    o: usize,
    a: Vec<f64>,
    bf: Vec<f64>,
    lam: Vec<f64>,
    b: Vec<f64>,
    e: Option<Vec<f64>>,
    q: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
}

/// Constants of the equations.
struct Consts {
    dt: f64,
    decay: f64,
    mix: f64,
    lc: f64,
    lru: f64,
    out: f64,
    mc: f64,
    ws: f64,
}

const REFERENCE: Consts = Consts {
    dt: 0.05,
    decay: 0.995,
    mix: 0.7,
    lc: 10.0,
    lru: 10.0,
    out: 100.0,
    mc: 5.0,
    ws: 0.01,
};

/// One step of the equations in plain f64 loops: updates `(h, s, mf)`, returns `y`.
fn plain_step(
    w: &Plain,
    k: &Consts,
    x: &[f64],
    h: &mut [f64],
    s: &mut [f64],
    mf: &mut [f64],
) -> Vec<f64> {
    let (ni, nh, nm, no) = (w.i, w.h, w.m, w.o);
    let mut c = vec![0.0; nh];
    let mut f = vec![0.0; nh];
    for n in 0..nh {
        let u: f64 = (0..ni).map(|j| x[j] * w.b[j * nh + n]).sum();
        f[n] = u.tanh();
        let tau = w.a[n] + w.bf[n] * f[n].abs();
        // Design (with the LRU input term E) integrates the liquid increment; the reference
        // adds the whole liquid state.
        let base = if w.e.is_some() { 0.0 } else { h[n] };
        c[n] = clip(base + k.dt * (-tau * h[n] + w.bf[n] * f[n]), k.lc);
    }
    for n in 0..nh {
        let xe: f64 = match &w.e {
            Some(e) => (0..ni).map(|j| x[j] * e[j * nh + n]).sum(),
            None => 0.0,
        };
        s[n] = clip(w.lam[n] * s[n] + c[n] + xe, k.lru);
    }
    let q: Vec<f64> = (0..nm)
        .map(|m| (0..nh).map(|j| s[j] * w.q[j * nm + m]).sum::<f64>().tanh())
        .collect();
    for n in 0..nh {
        let r: f64 = (0..nm).map(|m| q[m] * mf[m * nh + n]).sum();
        h[n] = k.mix * s[n] + (1.0 - k.mix) * r;
    }
    let y: Vec<f64> = (0..no)
        .map(|o| {
            let hc: f64 = (0..nh).map(|j| h[j] * w.c[j * no + o]).sum();
            let xd: f64 = (0..ni).map(|j| x[j] * w.d[j * no + o]).sum();
            clip(hc + xd, k.out)
        })
        .collect();
    for m in 0..nm {
        let kk = sigmoid((0..nh).map(|j| h[j] * w.k[j * nm + m]).sum());
        let vv: f64 = (0..nh).map(|j| h[j] * w.v[j * nm + m]).sum();
        for n in 0..nh {
            let idx = m * nh + n;
            mf[idx] = clip(k.decay * mf[idx] + k.ws * kk * vv * h[n], k.mc);
        }
    }
    y
}

fn vals(rng: &mut Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

#[test]
fn design_steps_follow_the_equations() {
    // I = 1, H = 2, M = 2, O = 1, weights set by hand, a non-zero starting state.
    let mut m = model::<f64>(
        "(hidden: 2, manifold: 2, dt: 0.3, memory_decay: 0.95, mix: 0.6, lc_clip: 10.0, \
         lru_clip: 0.9, output_clip: 100.0, manifold_clip: 5.0, write_scale: 0.05)",
        1,
        1,
        0,
    );
    let raw_a = [0.2, -0.4];
    let raw_bf = [-1.0, 0.3];
    let raw_l = [2.0, 3.5];
    let w = Plain {
        i: 1,
        h: 2,
        m: 2,
        o: 1,
        a: raw_a.iter().map(|&v| softplus(v)).collect(),
        bf: raw_bf.iter().map(|&v| softplus(v)).collect(),
        lam: raw_l.iter().map(|&v| sigmoid(v)).collect(),
        b: vec![0.8, -1.3],
        e: Some(vec![0.4, 0.25]),
        q: vec![0.5, -0.7, 1.1, 0.3],
        c: vec![1.5, -0.6],
        d: vec![0.2],
        k: vec![0.9, -0.4, 0.2, 1.2],
        v: vec![-0.8, 0.6, 1.4, 0.5],
    };
    let mut p = m.params().clone();
    set(&mut p, "a_raw", &raw_a);
    set(&mut p, "bf_raw", &raw_bf);
    set(&mut p, "lambda_raw", &raw_l);
    set(&mut p, "b", &w.b);
    set(&mut p, "e", w.e.as_ref().unwrap());
    set(&mut p, "q", &w.q);
    set(&mut p, "c", &w.c);
    set(&mut p, "d", &w.d);
    set(&mut p, "k", &w.k);
    set(&mut p, "v", &w.v);
    set(&mut p, "head.w", &[1.0]);
    set(&mut p, "head.b", &[0.0]);
    m.set_params(&p).unwrap();
    let (mut h, mut s, mut mf) = (vec![0.3, -0.5], vec![0.7, -0.2], vec![0.4, -1.0, 0.6, 0.2]);
    let mut st = m.state().clone();
    set(&mut st, "h", &h);
    set(&mut st, "s", &s);
    set(&mut st, "m", &mf);
    m.set_state(&st).unwrap();

    let xs = [0.5, -1.0, 2.0];
    let ys = m
        .predict(&Inputs::Real(
            Array2::from_shape_vec((3, 1), xs.to_vec()).unwrap(),
        ))
        .unwrap();
    let k = Consts {
        dt: 0.3,
        decay: 0.95,
        mix: 0.6,
        lc: 10.0,
        lru: 0.9,
        out: 100.0,
        mc: 5.0,
        ws: 0.05,
    };
    let mut lru_clipped = false;
    for (t, &x) in xs.iter().enumerate() {
        let y = plain_step(&w, &k, &[x], &mut h, &mut s, &mut mf);
        lru_clipped |= s.iter().any(|v| v.abs() == 0.9);
        assert!(
            (ys[[t, 0]] - y[0]).abs() < 1e-12,
            "step {t}: {} vs {}",
            ys[[t, 0]],
            y[0]
        );
    }
    assert!(lru_clipped, "the test should exercise the LRU clip");
    let st = m.state();
    for (name, want) in [("h", &h), ("s", &s), ("m", &mf)] {
        for (a, b) in get(st, name).iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12, "state {name}: {a} vs {b}");
        }
    }
}

/// A reference file (`amn_save` layout) for `w` and the state `(h, s, mf)`.
fn reference_file(
    w: &Plain,
    header: [i32; 4],
    dt: f32,
    decay: f32,
    state: (&[f64], &[f64], &[f64]),
) -> Vec<u8> {
    let mut out = Vec::new();
    for v in header {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0.001f32, dt, decay] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&1234i32.to_le_bytes());
    let (h, s, mf) = state;
    for arr in [
        &w.a[..],
        &w.bf,
        &w.lam,
        &w.b,
        &w.c,
        &w.d,
        mf,
        &w.k,
        &w.v,
        &w.q,
        h,
        s,
    ] {
        for &v in arr {
            out.extend_from_slice(&(v as f32).to_le_bytes());
        }
    }
    out
}

/// Rounds every weight to f32, as a reference file stores it.
fn f32_round(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

#[test]
fn reference_files_import_and_run_the_reference_equations() {
    let (i, h, o, m) = (2, 3, 3, 2);
    let mut rng = Rng::new(42);
    let w = Plain {
        i,
        h,
        m,
        o,
        a: f32_round((0..h).map(|_| rng.uniform_in(0.5, 1.0)).collect()),
        bf: f32_round((0..h).map(|_| rng.uniform_in(0.1, 0.4)).collect()),
        lam: f32_round((0..h).map(|_| rng.uniform_in(0.95, 0.99)).collect()),
        b: f32_round(vals(&mut rng, i * h, 0.8)),
        e: None,
        q: f32_round(vals(&mut rng, h * m, 0.6)),
        c: f32_round(vals(&mut rng, h * o, 0.8)),
        d: f32_round(vals(&mut rng, i * o, 0.3)),
        k: f32_round(vals(&mut rng, h * m, 0.6)),
        v: f32_round(vals(&mut rng, h * m, 0.6)),
    };
    // A large first neuron drives the liquid and LRU clips (±10); one manifold entry sits
    // next to its clip (5).
    let h0 = f32_round(vec![12.0, -0.3, 0.5]);
    let s0 = f32_round(vec![9.5, 0.2, -0.4]);
    let m0 = f32_round(vec![4.999, -0.3, 0.2, 0.1, -0.6, 0.45]);
    let bytes = reference_file(
        &w,
        [i as i32, h as i32, o as i32, m as i32],
        0.05,
        0.995,
        (&h0, &s0, &m0),
    );
    assert_eq!(bytes.len(), reference_file_size(i, h, o, m).unwrap());
    assert_eq!(
        reference_file_size(1, 16, 1, 8),
        Some(2532),
        "the size §3.8 verified"
    );
    let dims = RefDims {
        input: i,
        hidden: h,
        output: o,
        manifold: Some(m),
    };
    let imported = import(&bytes, &dims).unwrap();
    assert!(imported.params.contains("compat: \"reference\""));
    let mut model = build(&Entry::of::<Amn>(), &imported, &dims).unwrap();
    // The file's whole state was imported.
    let st = model.state().cast::<f64>();
    assert_eq!(get(&st, "h"), &h0[..]);
    assert_eq!(get(&st, "s"), &s0[..]);
    assert_eq!(get(&st, "m"), &m0[..]);

    let xs: Vec<f64> = f32_round(vec![0.7, -1.2, 0.3, 1.5, -0.4, 0.9]);
    let ys = model
        .predict(&Inputs::Real(
            Array2::from_shape_vec((3, i), xs.iter().map(|&v| v as f32).collect()).unwrap(),
        ))
        .unwrap();
    let consts = Consts {
        dt: 0.05f32 as f64,
        decay: 0.995f32 as f64,
        ..REFERENCE
    };
    let (mut hh, mut ss, mut mf) = (h0.clone(), s0.clone(), m0.clone());
    let (mut lc_hit, mut lru_hit) = (false, false);
    for t in 0..3 {
        let x = &xs[t * i..(t + 1) * i];
        let y = plain_step(&w, &consts, x, &mut hh, &mut ss, &mut mf);
        lru_hit |= ss.iter().any(|v| v.abs() == 10.0);
        if t == 0 {
            // h0[0] = 12: the liquid state before its clip is above 10.
            let f0 = (x[0] * w.b[0] + x[1] * w.b[h]).tanh();
            let tau = w.a[0] + w.bf[0] * f0.abs();
            lc_hit = h0[0] + consts.dt * (-tau * h0[0] + w.bf[0] * f0) > 10.0;
        }
        for (k, want) in y.iter().enumerate() {
            let got = ys[[t, k]] as f64;
            assert!(
                (got - want).abs() < 1e-5 * want.abs().max(1.0),
                "step {t} output {k}: {got} vs {want}"
            );
        }
    }
    assert!(lc_hit && lru_hit, "the clips should be exercised");
    let st = model.state().cast::<f64>();
    for (name, want) in [("h", &hh), ("s", &ss), ("m", &mf)] {
        for (a, b) in get(&st, name).iter().zip(want.iter()) {
            assert!(
                (a - b).abs() < 1e-5 * b.abs().max(1.0),
                "state {name}: {a} vs {b}"
            );
        }
    }

    // Wrong lengths name both byte counts; a header of other sizes is refused.
    let n = bytes.len();
    assert_wrong_lengths_refused(import, &bytes, n, &dims);
    // I and O swapped: the same size, another header.
    let swapped = reference_file(
        &w,
        [o as i32, h as i32, i as i32, m as i32],
        0.05,
        0.995,
        (&h0, &s0, &m0),
    );
    assert_eq!(swapped.len(), n);
    let err = import(&swapped, &dims).unwrap_err().to_string();
    assert!(
        err.contains("input_size = 3, expected 2"),
        "header mismatch: {err}"
    );
    // Each header size that disagrees with the sizes asked for is named.
    for (k, field) in [
        "input_size",
        "hidden_size",
        "output_size",
        "memory_manifold_size",
    ]
    .iter()
    .enumerate()
    {
        let mut bad = bytes.clone();
        bad[4 * k..4 * k + 4].copy_from_slice(&7i32.to_le_bytes());
        let err = import(&bad, &dims).unwrap_err().to_string();
        assert!(err.contains(&format!("{field} = 7, expected")), "{err}");
    }
    let err = import(
        &bytes,
        &RefDims {
            manifold: None,
            ..dims
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("manifold"), "{err}");
    // A header dt this entry does not accept is refused when the model is built.
    let bad_dt = reference_file(
        &w,
        [i as i32, h as i32, o as i32, m as i32],
        -0.1,
        0.995,
        (&h0, &s0, &m0),
    );
    let imported = import(&bad_dt, &dims).unwrap();
    let err = build(&Entry::of::<Amn>(), &imported, &dims)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("'dt'"), "{err}");
}

/// Full-BPTT gradients of the parameters, the initial state and the inputs against central
/// differences, with clips that bind somewhere in the window.
fn check_gradients(params: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut m = model::<f64>(params, 3, 2, seed);
    let mut p = m.params().clone();
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.2 * rng.normal());
    m.set_params(&p).unwrap();
    let data = regression_data(&mut rng, &[9, 6], 3, 2, 1.5);
    let mut s0 = m.batch_state(2);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v = 0.6 * rng.normal());
    let (_, g) = m.gradients(&data, Some(&s0)).unwrap();

    // The best of two finite-difference steps: a right gradient on this strongly curved loss
    // (the manifold write is cubic in h) can miss at one step from rounding or truncation; a
    // wrong one misses at both.
    let run = |eps: f64| check_model_params(m.as_ref(), &data, Some(&s0), &g.params, eps);
    let (fine, coarse) = (run(1e-6), run(1e-4));
    for (c, other) in fine.into_iter().zip(coarse) {
        let c = if other.rel_error < c.rel_error {
            other
        } else {
            c
        };
        assert!(c.analytic_norm > 1e-6, "{} has a zero gradient", c.name);
        assert!(
            c.rel_error < 1e-6,
            "{params}: param {}: relative error {:e}",
            c.name,
            c.rel_error
        );
    }
    for c in check_model_state(m.as_ref(), &data, &s0, &g.state, 1e-6) {
        assert!(
            c.analytic_norm > 1e-6,
            "state {} has a zero gradient",
            c.name
        );
        assert!(
            c.rel_error < 1e-6,
            "{params}: state {}: relative error {:e}",
            c.name,
            c.rel_error
        );
    }
    let inputs = check_model_inputs(m.as_ref(), &data, Some(&s0), &g.inputs, 1e-6);
    for (k, err) in inputs.into_iter().enumerate() {
        assert!(err < 1e-6, "{params}: inputs of sequence {k}: {err:e}");
    }
}

/// How many values of a 12-step run from a random state sit at the LRU and manifold clips.
fn clip_hits(params: &str, lru: f64, mc: f64) -> (usize, usize) {
    let mut rng = Rng::new(3);
    let mut m = model::<f64>(params, 3, 2, 3);
    let mut s0 = m.state().clone();
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v = 0.6 * rng.normal());
    m.set_state(&s0).unwrap();
    let (mut s_hits, mut m_hits) = (0, 0);
    for _ in 0..12 {
        let x = Array2::from_shape_fn((1, 3), |_| rng.normal() * 1.5);
        m.predict(&Inputs::Real(x)).unwrap();
        let st = m.state();
        s_hits += get(st, "s").iter().filter(|v| v.abs() == lru).count();
        m_hits += get(st, "m").iter().filter(|v| v.abs() == mc).count();
    }
    (s_hits, m_hits)
}

#[test]
fn bptt_gradients_match_central_differences_in_both_modes() {
    // Design mode's LRU integrates the liquid increment and stays small, so its clip is set
    // lower to make it bind.
    for (compat, lru) in [("design", 0.6), ("reference", 1.2)] {
        let params = format!(
            "(hidden: 4, manifold: 3, dt: 0.4, memory_decay: 0.97, mix: 0.55, lc_clip: 1.5, \
             lru_clip: {lru}, output_clip: 2.0, manifold_clip: 0.25, write_scale: 0.1, \
             compat: \"{compat}\")"
        );
        let (s_hits, m_hits) = clip_hits(&params, lru, 0.25);
        assert!(
            s_hits > 0 && m_hits > 0,
            "{compat}: the clips should bind ({s_hits}, {m_hits})"
        );
        check_gradients(&params, 17);
        // And at the defaults (no clip binding).
        check_gradients(
            &format!("(hidden: 5, manifold: 2, compat: \"{compat}\")"),
            5,
        );
    }
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    let mut rng = Rng::new(3);
    let m = model::<f64>("(hidden: 3, manifold: 2)", 2, 1, 1);
    let data = regression_data(&mut rng, &[6], 2, 1, 1.0);
    let (_, mut g) = m.gradients(&data, None).unwrap();
    let k = g.params.layout().index_of("k").unwrap();
    let max = g.params.slice(k).iter().fold(0.0f64, |a, v| a.max(v.abs()));
    g.params.slice_mut(k)[0] += 0.05 * max;
    let worst = check_model_params(m.as_ref(), &data, None, &g.params, 1e-6)
        .into_iter()
        .map(|c| c.rel_error)
        .fold(0.0, f64::max);
    assert!(
        worst > 1e-3,
        "a perturbed gradient went unnoticed ({worst:e})"
    );
}

#[test]
fn invalid_params_are_refused_with_their_range() {
    let e = Entry::of::<Amn>();
    let io = IoSpec::regression(1, 1);
    let refusal = |p: &str| testkit::refusal(&e, p, &io).to_string();
    for (text, want) in [
        ("(hidden: 0)", "'hidden' = 0: must be in [1, 16777216]"),
        ("(manifold: 0)", "'manifold' = 0: must be in [1, 16777216]"),
        (
            "(hidden: 16777217)",
            "'hidden' = 16777217: must be in [1, 16777216]",
        ),
        ("(dt: 0.0)", "'dt' = 0: must be in [0.001, 1]"),
        ("(dt: 1.5)", "'dt' = 1.5: must be in [0.001, 1]"),
        (
            "(memory_decay: 0.5)",
            "'memory_decay' = 0.5: must be in [0.9, 1]",
        ),
        ("(mix: -0.1)", "'mix' = -0.1: must be in [0, 1]"),
        ("(lc_clip: 0.0)", "'lc_clip' = 0: must be in [0.1, 20]"),
        ("(lru_clip: 25.0)", "'lru_clip' = 25: must be in [0.1, 20]"),
        (
            "(output_clip: 2000.0)",
            "'output_clip' = 2000: must be in [0.1, 1000]",
        ),
        (
            "(manifold_clip: -1.0)",
            "'manifold_clip' = -1: must be in [0.1, 20]",
        ),
        (
            "(write_scale: 0.5)",
            "'write_scale' = 0.5: must be in [0, 0.1]",
        ),
        ("(mix: NaN)", "'mix' = NaN: must be in [0, 1]"),
    ] {
        let err = refusal(text);
        assert!(err.contains(want), "{text}: {err}");
    }
    let err = refusal("(compat: \"exact\")");
    assert!(
        err.contains("compat must be \"design\" or \"reference\""),
        "{err}"
    );
    let err = refusal("(hiden: 3)");
    assert!(err.contains("hiden"), "{err}");
    // Valid sizes whose tensors would not fit are refused before anything is allocated.
    assert!(refusal("(hidden: 16777216, manifold: 64)").contains("at most 268435456"));
}

#[test]
fn diagnostics_read_the_manifold_the_time_scales_and_the_lru() {
    for compat in ["design", "reference"] {
        let mut m = model::<f64>(
            &format!("(hidden: 3, manifold: 2, compat: \"{compat}\")"),
            1,
            1,
            4,
        );
        let mut st = m.state().clone();
        set(&mut st, "s", &[0.5, -1.5, 1.0]);
        set(&mut st, "m", &[1.0, -2.0, 0.5, 0.0, -0.5, 3.0]);
        m.set_state(&st).unwrap();
        let d = m.diagnostics();
        let val = |n: &str| d.iter().find(|x| x.name == n).unwrap().value;
        assert!((val("manifold_energy") - 7.0 / 6.0).abs() < 1e-12);
        assert!((val("mean_abs_lru") - 1.0).abs() < 1e-12);
        let a = get(m.params(), if compat == "design" { "a_raw" } else { "a" });
        let a: Vec<f64> = if compat == "design" {
            a.iter().map(|&v| softplus(v)).collect()
        } else {
            a.to_vec()
        };
        assert!(
            a.iter().all(|&v| (0.5..=1.0).contains(&(v + 1e-12))),
            "A at init {a:?}"
        );
        let want = a.iter().map(|v| 1.0 / v).sum::<f64>() / 3.0;
        assert!((val("mean_lc_timescale") - want).abs() < 1e-12);
    }
}

#[test]
fn design_init_keeps_the_coefficients_in_the_reference_ranges() {
    let m = model::<f64>("(hidden: 64, manifold: 4)", 2, 1, 9);
    let p = m.params();
    assert!(
        get(p, "a_raw")
            .iter()
            .all(|&v| (0.5..=1.0 + 1e-12).contains(&softplus(v)))
    );
    assert!(
        get(p, "bf_raw")
            .iter()
            .all(|&v| (0.1..=0.4 + 1e-12).contains(&softplus(v)))
    );
    assert!(
        get(p, "lambda_raw")
            .iter()
            .all(|&v| (0.95..=0.99 + 1e-12).contains(&sigmoid(v)))
    );
}

/// The `amn.py` sine demo: next-step prediction of a noisy sine with the reference's demo
/// sizes (I = 1, H = 16, M = 8, dt = 0.05), at the two learning rates where the reference
/// diverges.
#[test]
fn trains_stably_on_the_reference_demo_where_the_reference_diverges() {
    let mut rng = Rng::new(12);
    let n = 1200;
    let series: Vec<f64> = (0..=n)
        .map(|t| (0.1 * t as f64).sin() + 0.05 * rng.normal())
        .collect();
    let data = Dataset {
        io: IoSpec::regression(1, 1),
        sequences: vec![Sequence {
            inputs: Inputs::Real(Array2::from_shape_vec((n, 1), series[..n].to_vec()).unwrap()),
            targets: Targets::Real(Array2::from_shape_vec((n, 1), series[1..].to_vec()).unwrap()),
            mask: None,
        }],
    }
    .cast::<f32>();
    for (compat, lr) in [
        ("design", 0.005),
        ("design", 0.01),
        ("reference", 0.005),
        ("reference", 0.01),
    ] {
        let params = format!("(hidden: 16, manifold: 8, dt: 0.05, compat: \"{compat}\")");
        let mut m = model::<f32>(&params, 1, 1, 1);
        let cfg = TrainConfig {
            learning_rate: lr,
            ..TrainConfig::default()
        };
        let report = m.fit(&data, &cfg, &mut |_| {}).unwrap();
        assert!(
            report
                .history
                .iter()
                .all(|e| e.train_loss.is_finite() && e.val_loss.is_some_and(f64::is_finite)),
            "{compat}, lr {lr}: a loss became non-finite"
        );
        let diag = m.diagnostics();
        assert!(diag.iter().all(|d| d.value.is_finite()));
        let r2 = report.validation.unwrap().r2.unwrap();
        let worst = report
            .history
            .iter()
            .map(|e| e.train_loss)
            .fold(0.0, f64::max);
        println!(
            "{compat}, lr {lr}: validation R² {r2:.6}, train R² {:.4}, {} epochs (best {}), \
             train loss {:.4} → {:.4} (max {worst:.4}), {:.2} s",
            report.train.r2.unwrap(),
            report.epochs_run,
            report.best_epoch,
            report.history[0].train_loss,
            report.history.last().unwrap().train_loss,
            report.seconds,
        );
        assert!(r2 > 0.9, "{compat}, lr {lr}: validation R² {r2}");
    }
}
