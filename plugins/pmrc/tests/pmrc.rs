//! PMRC against its equations (both modes), the reference file format, finite differences,
//! partial training and its diagnostics.

use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::reference::{RefDims, build};
use mnnn_core::registry::load_bytes;
use mnnn_core::testkit::{self, assert_wrong_lengths_refused};
use mnnn_core::{
    Dataset, DynModel, Entry, FreezeSpec, Inputs, IoSpec, Rng, Scalar, Sequence, Targets, Tensors,
    TrainConfig,
};
use mnnn_pmrc::{Pmrc, file_size, import};
use ndarray::Array2;
use std::path::Path;

fn entry() -> Entry {
    Entry::of::<Pmrc>()
}

fn model<S: Scalar>(params: &str, i: usize, o: usize, seed: u64) -> Box<dyn DynModel<S>> {
    entry()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

/// Sets tensor `name` of a parameter or state set.
fn set<S: Scalar>(t: &mut Tensors<S>, name: &str, values: &[f64]) {
    let i = t
        .layout()
        .index_of(name)
        .unwrap_or_else(|| panic!("no {name}"));
    let dst = t.slice_mut(i);
    assert_eq!(dst.len(), values.len(), "{name}");
    for (d, v) in dst.iter_mut().zip(values) {
        *d = S::from_f64(*v);
    }
}

fn get<S: Scalar>(t: &Tensors<S>, name: &str) -> Vec<f64> {
    let i = t
        .layout()
        .index_of(name)
        .unwrap_or_else(|| panic!("no {name}"));
    t.slice(i).iter().map(|v| v.as_f64()).collect()
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn inputs<S: Scalar>(rows: &[&[f64]]) -> Inputs<S> {
    let i = rows[0].len();
    Inputs::Real(Array2::from_shape_fn((rows.len(), i), |(t, j)| {
        S::from_f64(rows[t][j])
    }))
}

// ---------------------------------------------------------------------------------------
// Design equations, by hand.

/// `v · W` for a row vector and an input-major matrix stored row-major.
fn vecmat(v: &[f64], w: &[f64], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for (r, &x) in v.iter().enumerate() {
        for c in 0..cols {
            out[c] += x * w[r * cols + c];
        }
    }
    out
}

#[test]
fn design_steps_follow_the_equations() {
    // H = 2, I = 1, O = 1, all three switches on, then with gates off.
    for gates in [true, false] {
        let params = format!(
            "(hidden: 2, alpha: 0.25, beta: 0.5, output_beta: 0.4, use_learnable_gates: {gates})"
        );
        let mut m = model::<f64>(&params, 1, 1, 0);
        let mut p = m.params().clone();
        let (w_h, b_h) = ([0.8, -0.6], [0.1, -0.2]);
        let u_r = [0.3, -0.7, 0.5, 0.2];
        let (w_g, u_g, b_g) = ([0.9, -0.4], [0.6, -0.3, 0.2, 0.7], [0.1, -0.5]);
        let (w_c, b_c) = ([-1.1, 0.7], [0.05, 0.3]);
        let (w_o, b_o) = ([1.5, -0.9], [-0.2]);
        set(&mut p, "w_h", &w_h);
        set(&mut p, "b_h", &b_h);
        set(&mut p, "u_r", &u_r);
        if gates {
            set(&mut p, "w_g", &w_g);
            set(&mut p, "u_g", &u_g);
            set(&mut p, "b_g", &b_g);
            set(&mut p, "w_c", &w_c);
            set(&mut p, "b_c", &b_c);
        } else {
            assert!(p.layout().index_of("w_g").is_none(), "no gate tensors");
        }
        set(&mut p, "w_o", &w_o);
        set(&mut p, "b_o", &b_o);
        m.set_params(&p).unwrap();
        let xs = [0.5, -1.0, 2.0];
        let ys = m.predict(&inputs(&[&[0.5], &[-1.0], &[2.0]])).unwrap();

        let (mut mem, mut s, mut y) = ([0.0f64; 2], [0.0f64; 2], 0.0f64);
        for (t, &x) in xs.iter().enumerate() {
            let rec = vecmat(&s, &u_r, 2);
            let n: Vec<f64> = (0..2)
                .map(|j| (x * w_h[j] + b_h[j] + rec[j] + mem[j]).tanh())
                .collect();
            let gm = vecmat(&mem, &u_g, 2);
            let mut new_mem = [0.0; 2];
            for j in 0..2 {
                new_mem[j] = if gates {
                    let g = sig(x * w_g[j] + gm[j] + b_g[j]);
                    let c = (x * w_c[j] + b_c[j]).tanh();
                    g * c + (1.0 - g) * mem[j]
                } else {
                    0.75 * mem[j] + 0.25 * n[j]
                };
                s[j] = n[j] + 0.5 * s[j];
            }
            mem = new_mem;
            let z = (s[0] * w_o[0] + s[1] * w_o[1] + b_o[0]).tanh();
            y = z + 0.4 * y;
            assert!(
                (ys[[t, 0]] - y).abs() < 1e-14,
                "gates {gates}, step {t}: {} vs {y}",
                ys[[t, 0]]
            );
        }
        let st = m.state();
        for j in 0..2 {
            assert!((get(st, "m")[j] - mem[j]).abs() < 1e-14);
            assert!((get(st, "s")[j] - s[j]).abs() < 1e-14);
        }
        assert!((get(st, "y")[0] - y).abs() < 1e-14);
    }
}

#[test]
fn switches_shape_parameters_and_state() {
    let m = model::<f32>(
        "(hidden: 4, use_recurrent: false, use_learnable_gates: false, use_output_memory: false)",
        3,
        2,
        0,
    );
    let names: Vec<&str> = m
        .params()
        .layout()
        .entries()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["w_h", "b_h", "w_o", "b_o", "head.w", "head.b"]);
    assert_eq!(m.state_size(), 8, "2·hidden");
    let r = model::<f32>("(hidden: 4, compat: \"reference\")", 3, 2, 0);
    assert_eq!(r.state_size(), 3 * 4 + 2 * 2, "3·hidden + 2·output");
    let d = model::<f32>("(hidden: 4)", 3, 2, 0);
    assert_eq!(d.state_size(), 2 * 4 + 2, "2·hidden + output");
    let dims = mnnn_core::Dims {
        input: 3,
        output: 2,
    };
    for (params, size) in [
        ("(hidden: 4)", 10),
        ("(hidden: 4, compat: \"reference\")", 16),
    ] {
        let canon = (entry().parse_params)(params).unwrap();
        assert_eq!((entry().state_size)(&canon, dims).unwrap(), size);
    }
}

// ---------------------------------------------------------------------------------------
// Reference files and the reference forward pass.

/// A reference network exactly as `memory_net_extended.c` runs it: `[out][in]` storage,
/// neurons updated one by one in place.
#[derive(Clone)]
struct CNet {
    i: usize,
    h: usize,
    o: usize,
    beta: f32,
    alpha: f32,
    beta_o: f32,
    rec: bool,
    gates: bool,
    om: bool,
    w_h: Vec<f32>,
    w_o: Vec<f32>,
    u_r: Vec<f32>,
    b_h: Vec<f32>,
    b_o: Vec<f32>,
    w_g: Vec<f32>,
    u_g: Vec<f32>,
    b_g: Vec<f32>,
    w_c: Vec<f32>,
    b_c: Vec<f32>,
    m: Vec<f32>,
    p: Vec<f32>,
    q: Vec<f32>,
    zp: Vec<f32>,
    g: Vec<f32>,
    // not in the file
    s: Vec<f32>,
    z: Vec<f32>,
}

impl CNet {
    fn random(i: usize, h: usize, o: usize, flags: [bool; 3], seed: u64) -> CNet {
        let mut rng = Rng::new(seed);
        let mut v = |n: usize, s: f64| -> Vec<f32> {
            (0..n)
                .map(|_| rng.uniform_in(-s, s) as f32)
                .collect::<Vec<_>>()
        };
        let p = v(h, 0.6);
        CNet {
            i,
            h,
            o,
            beta: 0.3,
            alpha: 0.15,
            beta_o: 0.45,
            rec: flags[0],
            gates: flags[1],
            om: flags[2],
            w_h: v(h * i, 0.9),
            w_o: v(o * h, 0.9),
            u_r: v(h * h, 0.7),
            b_h: v(h, 0.3),
            b_o: v(o, 0.3),
            w_g: v(h * i, 0.9),
            u_g: v(h * h, 0.8),
            b_g: v(h, 0.4),
            w_c: v(h * i, 0.9),
            b_c: v(h, 0.3),
            m: v(h, 0.5),
            q: p.clone(),
            p,
            zp: v(o, 0.5),
            g: v(h, 1.0),
            s: vec![0.0; h],
            z: vec![0.0; o],
        }
    }

    /// The file `save_network` writes, byte by byte.
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for n in [self.i, self.h, self.o] {
            b.extend_from_slice(&(n as i32).to_le_bytes());
        }
        for f in [self.beta, self.alpha, self.beta_o, 0.01f32] {
            b.extend_from_slice(&f.to_le_bytes());
        }
        b.extend_from_slice(&1234i32.to_le_bytes());
        b.extend([self.rec as u8, self.gates as u8, self.om as u8]);
        for arr in [
            &self.w_h, &self.w_o, &self.u_r, &self.b_h, &self.b_o, &self.w_g, &self.u_g, &self.b_g,
            &self.w_c, &self.b_c, &self.m, &self.p, &self.q, &self.zp, &self.g,
        ] {
            for f in arr.iter() {
                b.extend_from_slice(&f.to_le_bytes());
            }
        }
        b
    }

    fn dims(&self) -> RefDims {
        RefDims {
            input: self.i,
            hidden: self.h,
            output: self.o,
            manifold: None,
        }
    }

    /// `forward` of `memory_net_extended.c` (§2.3), in f64 on the f32 values: a literal
    /// transcription of its index loops.
    #[allow(clippy::needless_range_loop)]
    fn forward(&mut self, x: &[f64]) -> Vec<f64> {
        let (ni, nh, no) = (self.i, self.h, self.o);
        let f = |v: f32| v as f64;
        let mut s: Vec<f64> = self.s.iter().map(|&v| f(v)).collect();
        let mut p: Vec<f64> = self.p.iter().map(|&v| f(v)).collect();
        let mut q: Vec<f64> = self.q.iter().map(|&v| f(v)).collect();
        let mut m: Vec<f64> = self.m.iter().map(|&v| f(v)).collect();
        for h in 0..nh {
            let mut a = f(self.b_h[h]);
            for i in 0..ni {
                a += f(self.w_h[h * ni + i]) * x[i];
            }
            if self.rec {
                for h2 in 0..nh {
                    a += f(self.u_r[h * nh + h2]) * q[h2];
                }
            }
            a += m[h];
            let n = a.tanh();
            let mut mc = 0.0;
            if self.gates {
                let mut gs = f(self.b_g[h]);
                for i in 0..ni {
                    gs += f(self.w_g[h * ni + i]) * x[i];
                }
                for h2 in 0..nh {
                    gs += f(self.u_g[h * nh + h2]) * m[h2];
                }
                let g = sig(gs);
                let mut cs = f(self.b_c[h]);
                for i in 0..ni {
                    cs += f(self.w_c[h * ni + i]) * x[i];
                }
                let c = cs.tanh();
                mc = g * c + (1.0 - g) * m[h];
            }
            let out = n + f(self.beta) * p[h];
            p[h] = s[h];
            q[h] = s[h];
            s[h] = out;
            m[h] = if self.gates {
                mc
            } else {
                (1.0 - f(self.alpha)) * m[h] + f(self.alpha) * n
            };
        }
        let mut y = vec![0.0; no];
        let mut z: Vec<f64> = self.z.iter().map(|&v| f(v)).collect();
        let mut zp: Vec<f64> = self.zp.iter().map(|&v| f(v)).collect();
        for o in 0..no {
            let mut v = f(self.b_o[o]);
            for h in 0..nh {
                v += f(self.w_o[o * nh + h]) * s[h];
            }
            let mut v = v.tanh();
            if self.om {
                v += f(self.beta_o) * zp[o];
                zp[o] = z[o];
            }
            z[o] = v;
            y[o] = v;
        }
        // The C state is f32: round what the next step reads, as it does.
        let back = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        self.s = back(&s);
        self.p = back(&p);
        self.q = back(&q);
        self.m = back(&m);
        self.z = back(&z);
        self.zp = back(&zp);
        y
    }
}

const REF_XS: [[f64; 2]; 3] = [[0.7, -0.3], [-1.2, 0.5], [0.4, 1.1]];

fn check_reference(flags: [bool; 3], seed: u64) {
    let net = CNet::random(2, 4, 2, flags, seed);
    let bytes = net.bytes();
    assert_eq!(bytes.len(), file_size(2, 4, 2).unwrap());
    let imported = import(&bytes, &net.dims()).unwrap();
    let mut m = build(&entry(), &imported, &net.dims()).unwrap();
    // The flags travel with the params; s and z start at zero.
    let canon = &m.meta().params;
    for (name, on) in [
        ("use_recurrent", flags[0]),
        ("use_learnable_gates", flags[1]),
        ("use_output_memory", flags[2]),
    ] {
        assert!(canon.contains(&format!("{name}:{on}")), "{canon}");
    }
    assert!(canon.contains("compat:\"reference\""), "{canon}");
    assert!(get(m.state(), "s").iter().all(|&v| v == 0.0));
    if flags[2] {
        assert!(get(m.state(), "z").iter().all(|&v| v == 0.0));
        assert_eq!(
            get(m.state(), "zp"),
            net.zp.iter().map(|&v| v as f64).collect::<Vec<_>>()
        );
    } else {
        assert!(m.state().layout().index_of("z").is_none());
    }
    let ys = m
        .predict(&inputs::<f32>(&[&REF_XS[0], &REF_XS[1], &REF_XS[2]]))
        .unwrap();
    let mut c = net.clone();
    for (t, x) in REF_XS.iter().enumerate() {
        let want = c.forward(x);
        for (o, w) in want.iter().enumerate() {
            let got = ys[[t, o]] as f64;
            assert!(
                (got - w).abs() < 1e-5,
                "flags {flags:?}, step {t}, output {o}: {got} vs {w}"
            );
        }
    }
    // The memory after three steps, too.
    for (a, b) in get(m.state(), "m").iter().zip(&c.m) {
        assert!((a - *b as f64).abs() < 1e-5, "memory {a} vs {b}");
    }
}

#[test]
fn imported_reference_models_run_the_reference_forward_pass() {
    // All eight switch combinations, the Gauss–Seidel recurrence and gate included.
    for (k, flags) in (0..8)
        .map(|b| [b & 1 != 0, b & 2 != 0, b & 4 != 0])
        .enumerate()
    {
        check_reference(flags, 100 + k as u64);
    }
}

#[test]
fn reference_mode_is_not_the_design_function() {
    // Same weights, the other mode: the outputs must differ (lag-2 echoes, Gauss–Seidel).
    let net = CNet::random(2, 4, 2, [true, true, true], 5);
    let imported = import(&net.bytes(), &net.dims()).unwrap();
    let mut r = build(&entry(), &imported, &net.dims()).unwrap();
    let design_params = imported.params.replace("\"reference\"", "\"design\"");
    let mut d = entry()
        .create::<f32>(Some(&design_params), &IoSpec::regression(2, 2), 0)
        .unwrap();
    d.set_params(r.params()).unwrap();
    let x = inputs::<f32>(&[&REF_XS[0], &REF_XS[1], &REF_XS[2]]);
    let (yr, yd) = (r.predict(&x).unwrap(), d.predict(&x).unwrap());
    assert!((&yr - &yd).iter().any(|v| v.abs() > 1e-3));
}

#[test]
fn an_imported_model_saves_and_continues_exactly() {
    let net = CNet::random(2, 4, 2, [true, true, true], 9);
    let imported = import(&net.bytes(), &net.dims()).unwrap();
    let mut a = build(&entry(), &imported, &net.dims()).unwrap();
    let mut rng = Rng::new(2);
    let x = Array2::from_shape_fn((12, 2), |_| rng.normal() as f32);
    let full = a.clone().predict(&Inputs::Real(x.clone())).unwrap();
    a.predict(&Inputs::Real(x.slice(ndarray::s![..5, ..]).to_owned()))
        .unwrap();
    let mut b = load_bytes::<f32>(&a.to_bytes().unwrap(), Path::new("mem")).unwrap();
    let tail = b
        .predict(&Inputs::Real(x.slice(ndarray::s![5.., ..]).to_owned()))
        .unwrap();
    assert_eq!(tail, full.slice(ndarray::s![5.., ..]));
}

#[test]
fn bad_reference_files_are_refused() {
    let net = CNet::random(2, 3, 1, [true, true, true], 1);
    let bytes = net.bytes();
    let n = file_size(2, 3, 1).unwrap();
    assert_eq!(n, 35 + 4 * (3 * 3 * 2 + 3 + 2 * 9 + 7 * 3 + 2));
    assert_wrong_lengths_refused(import, &bytes, n, &net.dims());
    // A header that disagrees with the sizes given (the byte count happens to fit).
    let mut bad = bytes.clone();
    bad[4..8].copy_from_slice(&4i32.to_le_bytes());
    let e = import(&bad, &net.dims()).unwrap_err().to_string();
    assert!(
        e.contains("hidden_size = 4, expected 3"),
        "header mismatch: {e}"
    );
    // q must equal p.
    let mut odd = net.clone();
    odd.q[1] += 0.5;
    let e = import(&odd.bytes(), &net.dims()).unwrap_err().to_string();
    assert!(e.contains("q[1]"), "{e}");
    // A rate outside [0, 1] in the header.
    let mut wild = net.clone();
    wild.beta = 1.5;
    let e = import(&wild.bytes(), &net.dims()).unwrap_err().to_string();
    assert!(e.contains("'beta' = 1.5"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Gradients.

fn randn(rng: &mut Rng, r: usize, c: usize) -> Array2<f64> {
    Array2::from_shape_fn((r, c), |_| rng.normal())
}

/// Worst relative error over parameters, initial state and inputs, and whether every
/// parameter tensor had a non-zero gradient.
fn gradient_errors(params: &str, perturb: Option<(usize, f64)>) -> (f64, Vec<String>) {
    let mut rng = Rng::new(11);
    let mut m = model::<f64>(params, 3, 2, 4);
    let mut p = m.params().clone();
    p.data_mut()
        .iter_mut()
        .for_each(|v| *v += 0.5 * rng.normal());
    m.set_params(&p).unwrap();
    let data = regression_data(&mut rng, &[7, 4], 3, 2, 1.0);
    let mut s0 = m.batch_state(2);
    s0.data_mut()
        .iter_mut()
        .for_each(|v| *v = 0.5 * rng.normal());
    let (_, mut g) = m.gradients(&data, Some(&s0)).unwrap();
    if let Some((idx, by)) = perturb {
        g.params.data_mut()[idx] += by;
    }
    let mut worst: f64 = 0.0;
    let mut zero = Vec::new();
    for c in check_model_params(m.as_ref(), &data, Some(&s0), &g.params, 1e-5) {
        if c.analytic_norm < 1e-8 {
            zero.push(c.name.clone());
        }
        worst = worst.max(c.rel_error);
    }
    for c in check_model_state(m.as_ref(), &data, &s0, &g.state, 1e-5) {
        if c.analytic_norm < 1e-8 {
            zero.push(format!("state {}", c.name));
        }
        worst = worst.max(c.rel_error);
    }
    for err in check_model_inputs(m.as_ref(), &data, Some(&s0), &g.inputs, 1e-5) {
        worst = worst.max(err);
    }
    (worst, zero)
}

#[test]
fn bptt_gradients_match_central_differences_in_both_modes() {
    for compat in ["design", "reference"] {
        for b in 0..8 {
            let (rec, gates, om) = (b & 1 != 0, b & 2 != 0, b & 4 != 0);
            let params = format!(
                "(hidden: 5, alpha: 0.3, beta: 0.6, output_beta: 0.7, use_recurrent: {rec}, \
                 use_learnable_gates: {gates}, use_output_memory: {om}, compat: \"{compat}\")"
            );
            let (worst, zero) = gradient_errors(&params, None);
            assert!(worst < 1e-6, "{params}: relative error {worst:e}");
            assert!(zero.is_empty(), "{params}: zero gradients for {zero:?}");
        }
    }
}

#[test]
fn a_wrong_gradient_would_be_caught() {
    for compat in ["design", "reference"] {
        let params = format!("(hidden: 4, compat: \"{compat}\")");
        // Index 20 lies inside u_r (w_h: 0..12, b_h: 12..16, u_r: 16..32).
        let (worst, _) = gradient_errors(&params, Some((20, 0.05)));
        assert!(
            worst > 1e-3,
            "{compat}: a perturbed gradient went unnoticed"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Partial training and diagnostics.

/// A series whose target is the input two steps back (it needs memory).
fn series(len: usize) -> Dataset<f32> {
    let mut rng = Rng::new(3);
    let x: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
    let inputs = Array2::from_shape_fn((len, 2), |(t, j)| {
        (if j == 0 { x[t] } else { (0.3 * t as f64).sin() }) as f32
    });
    let targets = Array2::from_shape_fn((len, 1), |(t, _)| {
        (if t >= 2 { 0.8 * x[t - 2] } else { 0.0 }) as f32
    });
    Dataset {
        io: IoSpec::regression(2, 1),
        sequences: vec![Sequence {
            inputs: Inputs::Real(inputs),
            targets: Targets::Real(targets),
            mask: None,
        }],
    }
}

#[test]
fn partial_training_freezes_exactly_what_it_names() {
    let mut m = entry()
        .create::<f32>(Some("(hidden: 6)"), &IoSpec::regression(2, 1), 3)
        .unwrap();
    let specs = [
        FreezeSpec::Tensors("*_g".into()),
        FreezeSpec::Tensors("*_c".into()),
        FreezeSpec::Percentage {
            pattern: "w_h".into(),
            fraction: 0.5,
            seed: 7,
        },
        FreezeSpec::Magnitude {
            pattern: "w_o".into(),
            fraction: 0.5,
            largest: false,
        },
        FreezeSpec::Neurons {
            tensor: "u_r".into(),
            neurons: vec![1, 4],
        },
    ];
    for s in &specs {
        assert!(m.freeze(s).unwrap() > 0);
    }
    let layout = m.params().layout().clone();
    let frozen = m.frozen().unwrap().to_vec();
    let count = |name: &str| {
        let e = &layout.entries()[layout.index_of(name).unwrap()];
        e.range().filter(|&k| frozen[k]).count()
    };
    for name in ["w_g", "u_g", "b_g", "w_c", "b_c"] {
        let e = &layout.entries()[layout.index_of(name).unwrap()];
        assert_eq!(count(name), e.len(), "{name} wholly frozen");
    }
    assert_eq!(count("w_h"), 6, "exactly half of 2·6");
    assert_eq!(count("w_o"), 3, "exactly half of 6");
    assert_eq!(count("u_r"), 12, "two columns of 6");
    assert_eq!(count("b_h") + count("b_o") + count("head.w"), 0);
    // The magnitude freeze took the smallest |w_o|, as asked.
    let wo = get(m.params(), "w_o");
    let e = &layout.entries()[layout.index_of("w_o").unwrap()];
    let (fz, free): (Vec<_>, Vec<_>) = (0..wo.len()).partition(|&k| frozen[e.offset + k]);
    let max_frozen = fz.iter().map(|&k| wo[k].abs()).fold(0.0, f64::max);
    let min_free = free
        .iter()
        .map(|&k| wo[k].abs())
        .fold(f64::INFINITY, f64::min);
    assert!(max_frozen <= min_free, "{max_frozen} > {min_free}");
    // Columns 1 and 4 of u_r.
    let ur = &layout.entries()[layout.index_of("u_r").unwrap()];
    for k in 0..36 {
        assert_eq!(frozen[ur.offset + k], k % 6 == 1 || k % 6 == 4);
    }

    let data = series(120);
    let cfg = TrainConfig {
        epochs: 3,
        window: 16,
        validation: 0.0,
        patience: 0,
        ..TrainConfig::default()
    };
    let before = m.params().data().to_vec();
    m.fit(&data, &cfg, &mut |_| {}).unwrap();
    let after = m.params().data().to_vec();
    for (k, e) in layout.entries().iter().enumerate() {
        for j in e.range() {
            if frozen[j] {
                assert_eq!(
                    before[j].to_bits(),
                    after[j].to_bits(),
                    "frozen {}[{}] moved",
                    layout.entries()[k].name,
                    j - e.offset
                );
            } else {
                assert_ne!(
                    before[j],
                    after[j],
                    "{}[{}] did not train",
                    e.name,
                    j - e.offset
                );
            }
        }
    }
    // Unfreeze everything that was frozen; training then moves those entries too.
    for s in &specs {
        m.unfreeze(s).unwrap();
    }
    assert!(m.frozen().is_none());
    m.fit(&data, &cfg, &mut |_| {}).unwrap();
    let again = m.params().data();
    let moved = (0..again.len())
        .filter(|&j| frozen[j] && again[j] != after[j])
        .count();
    assert_eq!(moved, frozen.iter().filter(|f| **f).count());
}

fn diag(m: &dyn DynModel<f64>, name: &str) -> f64 {
    m.diagnostics()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap()
        .value
}

/// The diagnostics by hand from the parameters and state.
fn expected_diagnostics(m: &dyn DynModel<f64>, gates: bool) -> (f64, f64) {
    let mem = get(m.state(), "m");
    let h = mem.len();
    let abs = mem.iter().map(|v| v.abs()).sum::<f64>() / h as f64;
    if !gates {
        return (0.0, abs);
    }
    let (u, b) = (get(m.params(), "u_g"), get(m.params(), "b_g"));
    let pre = vecmat(&mem, &u, h);
    let gate = (0..h).map(|j| sig(pre[j] + b[j])).sum::<f64>() / h as f64;
    (gate, abs)
}

#[test]
fn diagnostics_are_recomputed_from_the_state() {
    for compat in ["design", "reference"] {
        let mut m = model::<f64>(&format!("(hidden: 5, compat: \"{compat}\")"), 2, 1, 4);
        let mut p = m.params().clone();
        set(&mut p, "b_g", &[1.0, -2.0, 0.5, 0.0, 3.0]);
        m.set_params(&p).unwrap();
        let check = |m: &dyn DynModel<f64>, when: &str| {
            let (g, a) = expected_diagnostics(m, true);
            assert!((diag(m, "mean_gate") - g).abs() < 1e-12, "{compat} {when}");
            assert!(
                (diag(m, "mean_abs_memory") - a).abs() < 1e-12,
                "{compat} {when}"
            );
        };
        let mut rng = Rng::new(1);
        let x = Inputs::Real(randn(&mut rng, 9, 2));
        let fresh_gate = diag(m.as_ref(), "mean_gate");
        m.predict(&x).unwrap();
        check(m.as_ref(), "after predict");
        assert!(diag(m.as_ref(), "mean_abs_memory") > 0.0);
        assert_ne!(diag(m.as_ref(), "mean_gate"), fresh_gate);
        // Straight after a load.
        let loaded = load_bytes::<f64>(&m.to_bytes().unwrap(), Path::new("mem")).unwrap();
        check(loaded.as_ref(), "after a load");
        assert_eq!(loaded.diagnostics(), m.diagnostics());
        // After set_state with another state (no step in between).
        let mut other = m.state().clone();
        set(&mut other, "m", &[0.9, -0.8, 0.1, 0.4, -0.3]);
        m.set_state(&other).unwrap();
        check(m.as_ref(), "after set_state");
        assert!((diag(m.as_ref(), "mean_abs_memory") - 2.5 / 5.0).abs() < 1e-12);
        // After a reset: zero memory, the gate is σ(b_g).
        m.reset_state();
        check(m.as_ref(), "after reset");
        assert_eq!(diag(m.as_ref(), "mean_abs_memory"), 0.0);
        let want = [1.0, -2.0, 0.5, 0.0, 3.0]
            .iter()
            .map(|&b| sig(b))
            .sum::<f64>()
            / 5.0;
        assert!((diag(m.as_ref(), "mean_gate") - want).abs() < 1e-12);
    }
    let mut off = model::<f64>("(hidden: 3, use_learnable_gates: false)", 2, 1, 4);
    off.predict(&Inputs::Real(Array2::ones((4, 2)))).unwrap();
    let (g, a) = expected_diagnostics(off.as_ref(), false);
    assert_eq!(diag(off.as_ref(), "mean_gate"), g);
    assert!((diag(off.as_ref(), "mean_abs_memory") - a).abs() < 1e-12 && a > 0.0);
}

// ---------------------------------------------------------------------------------------
// Validation.

#[test]
fn invalid_params_are_refused_with_their_range() {
    let e = entry();
    let io = IoSpec::regression(1, 1);
    let err = |p: &str| testkit::refusal(&e, p, &io).to_string();
    assert!(
        err("(beta: 1.5)").contains("'beta' = 1.5: must be in [0, 1]"),
        "{}",
        err("(beta: 1.5)")
    );
    assert!(err("(alpha: -0.1)").contains("'alpha' = -0.1: must be in [0, 1]"));
    assert!(err("(output_beta: 2.0)").contains("'output_beta' = 2: must be in [0, 1]"));
    assert!(err("(output_beta: NaN)").contains("'output_beta' = NaN"));
    assert!(err("(hidden: 0)").contains("'hidden' = 0: must be in [1, 16777216]"));
    assert!(err("(hidden: 4611686018427387904)").contains("must be in [1, 16777216]"));
    let c = err("(compat: \"exact\")");
    assert!(
        c.contains("compat must be \"design\" or \"reference\""),
        "{c}"
    );
    let u = err("(gates: true)");
    assert!(u.contains("gates"), "{u}");
    // Valid, but too large to allocate: refused before allocating.
    let big = err("(hidden: 20000)");
    assert!(big.contains("at most 268435456"), "{big}");
    let mut m = model::<f32>("()", 2, 1, 0);
    let w = m
        .predict(&Inputs::Real(Array2::zeros((3, 5))))
        .unwrap_err()
        .to_string();
    assert!(w.contains("expected width 2, got width 5"), "{w}");
}
