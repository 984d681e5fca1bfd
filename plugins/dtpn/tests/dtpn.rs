//! DTPN against its equations (both modes), the reference file format, finite differences,
//! and what the issue asks of it: learned key/value writes, an addressed read, every
//! parameter trained, diagnostics per track.

use mnnn_core::gradcheck::{
    check_model_inputs, check_model_params, check_model_state, regression_data,
};
use mnnn_core::reference::{RefDims, build};
use mnnn_core::testkit::{self, assert_wrong_lengths_refused};
use mnnn_core::{
    Architecture, Dataset, DynModel, Entry, Inputs, IoSpec, Rng, Scalar, Sequence, Targets,
    Tensors, TrainConfig,
};
use mnnn_dtpn::{Dtpn, import, reference_file_size};
use ndarray::Array2;

fn model<S: Scalar>(params: &str, i: usize, o: usize, seed: u64) -> Box<dyn DynModel<S>> {
    Entry::of::<Dtpn>()
        .create::<S>(Some(params), &IoSpec::regression(i, o), seed)
        .unwrap()
}

fn set(t: &mut Tensors<f64>, name: &str, v: &[f64]) {
    let i = t.layout().index_of(name).unwrap();
    t.slice_mut(i).copy_from_slice(v);
}

fn get<'a, S: Scalar>(t: &'a Tensors<S>, name: &str) -> &'a [S] {
    t.slice(t.layout().index_of(name).unwrap())
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn real(rows: usize, cols: usize, v: &[f64]) -> Inputs<f64> {
    Inputs::Real(Array2::from_shape_vec((rows, cols), v.to_vec()).unwrap())
}

// ---------------------------------------------------------------------------------------
// Design mode by hand.

#[test]
fn design_steps_follow_the_equations() {
    // I = 1, H = 2, M = 2, O = 1; matrices are input-major (row = input index).
    let (h, m) = (2usize, 2usize);
    let (alpha, beta, decay) = (0.25, 0.5, 0.9);
    let w_in = [0.5, -0.3];
    let u = [0.2, -0.1, 0.4, 0.3];
    let b_h = [0.05, -0.02];
    let w_k = [0.7, -0.4, 0.1, 0.9];
    let w_v = [0.3, 0.8, -0.6, 0.2];
    let w_q = [1.2, -0.5, 0.4, 0.6];
    let w_out = [0.9, -0.7];
    let b_out = [0.1];
    let mut md = model::<f64>(
        "(hidden: 2, memory: 2, alpha: 0.25, beta: 0.5, memory_decay: 0.9)",
        1,
        1,
        0,
    );
    let mut p = md.params().clone();
    for (name, v) in [
        ("w_in", &w_in[..]),
        ("u", &u),
        ("b_h", &b_h),
        ("w_k", &w_k),
        ("w_v", &w_v),
        ("w_q", &w_q),
        ("w_out", &w_out),
        ("b_out", &b_out),
    ] {
        set(&mut p, name, v);
    }
    md.set_params(&p).unwrap();
    // A non-zero starting state, so every track contributes from the first step.
    let (mut hs, mut e, mut n) = (vec![0.3, -0.2], vec![0.1, 0.4], vec![-0.5, 0.2]);
    let mut x_mem = vec![0.2, -0.1, 0.05, 0.3];
    let mut st = md.state().clone();
    set(&mut st, "h", &hs);
    set(&mut st, "e", &e);
    set(&mut st, "n", &n);
    set(&mut st, "memory", &x_mem);
    md.set_state(&st).unwrap();

    let xs = [0.7, -1.2, 0.4];
    let ys = md.predict(&real(3, 1, &xs)).unwrap();
    for (t, &x) in xs.iter().enumerate() {
        let mut y = vec![0.0; h];
        for j in 0..h {
            let mut pre = x * w_in[j] + b_h[j];
            for i in 0..h {
                pre += hs[i] * u[i * h + j];
            }
            y[j] = pre.tanh() + beta * e[j];
        }
        for j in 0..h {
            n[j] = (1.0 - alpha) * n[j] + alpha * y[j];
        }
        let lin = |w: &[f64], cols: usize| -> Vec<f64> {
            (0..cols)
                .map(|c| (0..h).map(|i| y[i] * w[i * cols + c]).sum())
                .collect()
        };
        let k: Vec<f64> = lin(&w_k, m).into_iter().map(sigmoid).collect();
        let v: Vec<f64> = lin(&w_v, h).into_iter().map(f64::tanh).collect();
        let ql = lin(&w_q, m);
        let zsum: f64 = ql.iter().map(|l| l.exp()).sum();
        let q: Vec<f64> = ql.iter().map(|l| l.exp() / zsum).collect();
        for r in 0..m {
            for j in 0..h {
                x_mem[r * h + j] = decay * x_mem[r * h + j] + k[r] * v[j];
            }
        }
        for j in 0..h {
            let read: f64 = (0..m).map(|r| q[r] * x_mem[r * h + j]).sum();
            hs[j] = (y[j] + n[j] + read).tanh();
        }
        e = y;
        let out = b_out[0] + hs[0] * w_out[0] + hs[1] * w_out[1];
        assert!(
            (ys[[t, 0]] - out).abs() < 1e-13,
            "step {t}: {} vs {out}",
            ys[[t, 0]]
        );
    }
    let st = md.state();
    for (name, want) in [("h", &hs), ("e", &e), ("n", &n), ("memory", &x_mem)] {
        for (a, b) in get(st, name).iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-13, "state {name}: {a} vs {b}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reference mode: a file written byte by byte, imported, run, compared with the spec.

struct RefFile {
    i: usize,
    h: usize,
    o: usize,
    m: usize,
    beta: f32,
    alpha: f32,
    decay: f32,
    w_in: Vec<f32>,
    u: Vec<f32>,
    w_out: Vec<f32>,
    b_out: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    e: Vec<f32>,
    n: Vec<f32>,
    mx: Vec<f32>,
    h_state: Vec<f32>,
}

fn values(n: usize, salt: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|k| (((k * 37 + salt * 11) % 19) as f32 - 9.0) / 9.0 * scale)
        .collect()
}

impl RefFile {
    fn new(i: usize, h: usize, o: usize, m: usize) -> Self {
        RefFile {
            i,
            h,
            o,
            m,
            beta: 0.3,
            alpha: 0.1,
            decay: 0.95,
            w_in: values(i * h, 1, 0.8),
            u: values(h * h, 2, 0.5),
            w_out: values(h * o, 3, 0.9),
            b_out: values(o, 4, 0.2),
            k: values(h * m, 5, 1.0),
            v: values(m * h, 6, 0.6),
            e: values(h, 7, 0.4),
            n: values(h, 8, 0.3),
            mx: values(m * h, 9, 1.5),
            h_state: values(h, 10, 0.7),
        }
    }

    /// The `dtpn_save` layout, byte by byte.
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for d in [self.i, self.h, self.o, self.m] {
            b.extend_from_slice(&(d as i32).to_le_bytes());
        }
        for f in [self.beta, self.alpha, self.decay, 0.001f32] {
            b.extend_from_slice(&f.to_le_bytes());
        }
        b.extend_from_slice(&1234i32.to_le_bytes());
        for arr in [
            &self.w_in,
            &self.u,
            &self.w_out,
            &self.b_out,
            &self.k,
            &self.v,
            &self.e,
            &self.n,
            &self.mx,
            &self.h_state,
        ] {
            for f in arr {
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
            manifold: Some(self.m),
        }
    }

    /// `dtpn_forward` (spec §4.3) in plain f64 on the file's own indexing, from the file's
    /// state.
    fn run(&self, xs: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let f = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (i_n, h_n, o_n, m_n) = (self.i, self.h, self.o, self.m);
        let (w_in, u, w_out, b_out, kw, vw) = (
            f(&self.w_in),
            f(&self.u),
            f(&self.w_out),
            f(&self.b_out),
            f(&self.k),
            f(&self.v),
        );
        let (beta, alpha, decay) = (
            f64::from(self.beta),
            f64::from(self.alpha),
            f64::from(self.decay),
        );
        let (mut e, mut n, mut mx, mut h) = (f(&self.e), f(&self.n), f(&self.mx), f(&self.h_state));
        let mut outs = Vec::new();
        for x in xs {
            let mut y = vec![0.0; h_n];
            for hh in 0..h_n {
                let mut pre = 0.0;
                for i in 0..i_n {
                    pre += w_in[i * h_n + hh] * x[i];
                }
                for h2 in 0..h_n {
                    pre += u[h2 * h_n + hh] * h[h2];
                }
                y[hh] = pre.tanh() + beta * e[hh];
            }
            for hh in 0..h_n {
                n[hh] = (1.0 - alpha) * n[hh] + alpha * y[hh];
            }
            let k: Vec<f64> = (0..m_n)
                .map(|m| sigmoid((0..h_n).map(|hh| y[hh] * kw[hh * m_n + m]).sum()))
                .collect();
            for m in 0..m_n {
                for hh in 0..h_n {
                    mx[m * h_n + hh] = decay * mx[m * h_n + hh] + k[m] * vw[m * h_n + hh];
                }
            }
            for hh in 0..h_n {
                let r: f64 = (0..m_n).map(|m| mx[m * h_n + hh]).sum::<f64>() / m_n as f64;
                h[hh] = (y[hh] + n[hh] + r).tanh();
            }
            e = y;
            outs.push(
                (0..o_n)
                    .map(|o| b_out[o] + (0..h_n).map(|hh| w_out[hh * o_n + o] * h[hh]).sum::<f64>())
                    .collect(),
            );
        }
        outs
    }
}

#[test]
fn reference_files_import_and_run_as_the_reference_does() {
    let file = RefFile::new(2, 3, 2, 4);
    let bytes = file.bytes();
    assert_eq!(Some(bytes.len()), reference_file_size(2, 3, 2, 4));
    let imported = import(&bytes, &file.dims()).unwrap();
    assert!(
        imported.params.contains("compat: \"reference\""),
        "{}",
        imported.params
    );
    let entry = Entry::of::<Dtpn>();
    let mut md = build(&entry, &imported, &file.dims()).unwrap();
    // The saved memory state is in place before anything runs.
    for (name, want) in [
        ("e", &file.e),
        ("n", &file.n),
        ("memory", &file.mx),
        ("h", &file.h_state),
    ] {
        assert_eq!(get(md.state(), name), &want[..], "state {name}");
    }
    assert_eq!(get(md.params(), "v"), &file.v[..]);
    let xs = vec![vec![0.5, -1.0], vec![1.5, 0.25], vec![-0.75, 2.0]];
    let want = file.run(&xs);
    let flat: Vec<f32> = xs.iter().flatten().map(|&v| v as f32).collect();
    let got = md
        .predict(&Inputs::Real(Array2::from_shape_vec((3, 2), flat).unwrap()))
        .unwrap();
    for (t, row) in want.iter().enumerate() {
        for (o, &w) in row.iter().enumerate() {
            let g = f64::from(got[[t, o]]);
            assert!((g - w).abs() < 1e-5, "step {t} output {o}: {g} vs {w}");
        }
    }
    // The hyper-parameters came from the header.
    let p = &md.meta().params;
    assert!(p.contains("memory_decay:0.949999988079071"), "{p}");
}

#[test]
fn bad_reference_files_are_refused_with_the_reason() {
    let file = RefFile::new(2, 3, 1, 2);
    let bytes = file.bytes();
    let dims = file.dims();
    assert_wrong_lengths_refused(import, &bytes, bytes.len(), &dims);
    // Header sizes must agree with the sizes asked for (same byte count, other H and I).
    let mut swapped = bytes.clone();
    swapped[0..4].copy_from_slice(&3i32.to_le_bytes());
    let err = import(&swapped, &dims).unwrap_err().to_string();
    assert!(err.contains("input size I = 3, expected 2"), "{err}");
    let mut m_wrong = bytes.clone();
    m_wrong[12..16].copy_from_slice(&5i32.to_le_bytes());
    let err = import(&m_wrong, &dims).unwrap_err().to_string();
    assert!(err.contains("memory rows M = 5, expected 2"), "{err}");
    // An asked-for size that does not match the file's length is a size error.
    let other = RefDims { hidden: 4, ..dims };
    assert!(
        import(&bytes, &other)
            .unwrap_err()
            .to_string()
            .contains("bytes")
    );
    // M is required.
    let no_m = RefDims {
        manifold: None,
        ..dims
    };
    assert!(import(&bytes, &no_m).unwrap_err().to_string().contains("M"));
    // A header rate outside [0, 1] is refused by name.
    let mut hot = bytes.clone();
    hot[16..20].copy_from_slice(&1.5f32.to_le_bytes());
    let err = import(&hot, &dims).unwrap_err().to_string();
    assert!(err.contains("'beta' = 1.5"), "{err}");
}

#[test]
fn an_imported_model_saves_loads_and_continues_exactly() {
    let file = RefFile::new(1, 4, 1, 3);
    let entry = Entry::of::<Dtpn>();
    let imported = import(&file.bytes(), &file.dims()).unwrap();
    let mut a = build(&entry, &imported, &file.dims()).unwrap();
    let x = Inputs::Real(Array2::from_shape_fn((12, 1), |(t, _)| {
        (t as f32 * 0.7).sin()
    }));
    let whole = a.clone().predict(&x).unwrap();
    a.predict(&x.slice(0, 5)).unwrap();
    let bytes = a.to_bytes().unwrap();
    let mut b =
        mnnn_core::registry::load_bytes::<f32>(&bytes, std::path::Path::new("mem")).unwrap();
    let tail = b.predict(&x.slice(5, 12)).unwrap();
    assert_eq!(tail, whole.slice(ndarray::s![5.., ..]));
}

// ---------------------------------------------------------------------------------------
// Validation.

#[test]
fn invalid_params_are_refused_with_their_field_and_range() {
    let e = Entry::of::<Dtpn>();
    let io = IoSpec::regression(1, 1);
    let refusal = |p: &str| testkit::refusal(&e, p, &io).to_string();
    for (text, want) in [
        ("(hidden: 0)", "'hidden' = 0: must be in [1, 16777216]"),
        (
            "(hidden: 16777217)",
            "'hidden' = 16777217: must be in [1, 16777216]",
        ),
        ("(memory: 0)", "'memory' = 0: must be in [1, 16777216]"),
        (
            "(memory: 99999999)",
            "'memory' = 99999999: must be in [1, 16777216]",
        ),
        ("(alpha: -0.1)", "'alpha' = -0.1: must be in [0, 1]"),
        ("(beta: 1.5)", "'beta' = 1.5: must be in [0, 1]"),
        (
            "(memory_decay: 1.01)",
            "'memory_decay' = 1.01: must be in [0, 1]",
        ),
        (
            "(memory_decay: NaN)",
            "'memory_decay' = NaN: must be in [0, 1]",
        ),
    ] {
        let err = testkit::refusal(&e, text, &io);
        assert!(
            matches!(err, mnnn_core::Error::InvalidParam { .. }),
            "{text}: {err}"
        );
        assert!(err.to_string().contains(want), "{text}: {err}");
    }
    let err = refusal("(compat: \"exact\")");
    assert!(
        err.contains("compat must be \"design\" or \"reference\""),
        "{err}"
    );
    let err = refusal("(hiden: 3)");
    assert!(err.contains("hiden"), "{err}");
    // Valid sizes whose product is too large are refused before anything is allocated.
    let err = refusal("(hidden: 16777216, memory: 16777216)");
    assert!(err.contains("at most 268435456"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Gradients.

fn randomise(t: &mut Tensors<f64>, rng: &mut Rng, scale: f64) {
    t.data_mut()
        .iter_mut()
        .for_each(|v| *v += rng.normal() * scale);
}

/// Worst relative error over every parameter, the initial state and the inputs; each
/// analytic gradient must be non-zero (every parameter is trained).
fn worst_gradient_error(m: &dyn DynModel<f64>, data: &Dataset<f64>, s0: &Tensors<f64>) -> f64 {
    let (_, g) = m.gradients(data, Some(s0)).unwrap();
    let mut worst = 0.0f64;
    for c in check_model_params(m, data, Some(s0), &g.params, 1e-5) {
        assert!(c.analytic_norm > 1e-6, "{} has a zero gradient", c.name);
        worst = worst.max(c.rel_error);
    }
    for c in check_model_state(m, data, s0, &g.state, 1e-5) {
        assert!(
            c.analytic_norm > 1e-6,
            "state {} has a zero gradient",
            c.name
        );
        worst = worst.max(c.rel_error);
    }
    for err in check_model_inputs(m, data, Some(s0), &g.inputs, 1e-5) {
        worst = worst.max(err);
    }
    worst
}

fn gradient_case(compat: &str, seed: u64) -> (Box<dyn DynModel<f64>>, Dataset<f64>, Tensors<f64>) {
    let mut rng = Rng::new(seed);
    let mut m = model::<f64>(
        &format!(
            "(hidden: 5, memory: 3, alpha: 0.3, beta: 0.6, memory_decay: 0.8, compat: \"{compat}\")"
        ),
        3,
        2,
        seed,
    );
    let mut p = m.params().clone();
    randomise(&mut p, &mut rng, 0.3);
    m.set_params(&p).unwrap();
    // Unequal lengths: the shorter sequence is padded inside the batch.
    let data = regression_data(&mut rng, &[9, 6], 3, 2, 1.0);
    let mut s0 = m.batch_state(2);
    randomise(&mut s0, &mut rng, 0.5);
    (m, data, s0)
}

#[test]
fn design_bptt_gradients_match_central_differences() {
    let (m, data, s0) = gradient_case("design", 11);
    let worst = worst_gradient_error(m.as_ref(), &data, &s0);
    assert!(worst < 1e-6, "worst relative error {worst:e}");
}

#[test]
fn reference_bptt_gradients_match_central_differences() {
    let (m, data, s0) = gradient_case("reference", 12);
    let worst = worst_gradient_error(m.as_ref(), &data, &s0);
    assert!(worst < 1e-6, "worst relative error {worst:e}");
}

// ---------------------------------------------------------------------------------------
// What the issue asks of DTPN specifically.

/// The memory after one step from a zero state, for input `x`.
fn memory_after_one_step(m: &dyn DynModel<f64>, x: f64) -> Vec<f64> {
    let mut m = m.clone_box();
    m.predict(&real(1, 1, &[x])).unwrap();
    get(m.state(), "memory").to_vec()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn design_writes_input_dependent_values_and_the_reference_a_static_pattern() {
    let h = 6;
    for (compat, static_rows) in [("design", false), ("reference", true)] {
        let m = model::<f64>(
            &format!("(hidden: {h}, memory: 3, compat: \"{compat}\")"),
            1,
            1,
            5,
        );
        let (a, b) = (
            memory_after_one_step(m.as_ref(), 1.3),
            memory_after_one_step(m.as_ref(), -0.8),
        );
        for row in 0..3 {
            let c = cosine(&a[row * h..(row + 1) * h], &b[row * h..(row + 1) * h]);
            if static_rows {
                // Reference: row m is k_m·V[m, ·] whatever the input: only its scale moves.
                assert!((c - 1.0).abs() < 1e-12, "{compat} row {row}: cos {c}");
            } else {
                assert!(
                    c < 0.999,
                    "{compat} row {row}: cos {c}: content is input-independent"
                );
            }
        }
    }
}

#[test]
fn design_reads_through_the_learned_query() {
    // The same memory and input, two queries: the read (hence the output) changes, and the
    // query that puts its weight on one row reads that row.
    let mut m = model::<f64>("(hidden: 4, memory: 3, alpha: 0.0, beta: 0.0)", 1, 1, 3);
    let mut p = m.params().clone();
    set(&mut p, "u", &[0.0; 16]);
    set(&mut p, "w_in", &[0.0; 4]);
    set(&mut p, "b_h", &[1.0, 0.5, -0.5, 0.25]);
    m.set_params(&p).unwrap();
    let mem: Vec<f64> = (0..12).map(|k| (k as f64 - 5.5) * 0.3).collect();
    let mut st = m.state().clone();
    set(&mut st, "memory", &mem);
    m.set_state(&st).unwrap();
    let decay = 0.99; // the default memory_decay
    // y = tanh(b_h) (β = 0, U = 0, W_in = 0); k, v from y; q from W_q.
    let y: Vec<f64> = [1.0f64, 0.5, -0.5, 0.25].iter().map(|v| v.tanh()).collect();
    let w_k = get(&p, "w_k").to_vec();
    let w_v = get(&p, "w_v").to_vec();
    let k: Vec<f64> = (0..3)
        .map(|c| sigmoid((0..4).map(|i| y[i] * w_k[i * 3 + c]).sum()))
        .collect();
    let v: Vec<f64> = (0..4)
        .map(|c| (0..4).map(|i| y[i] * w_v[i * 4 + c]).sum::<f64>().tanh())
        .collect();
    let written: Vec<f64> = (0..12)
        .map(|a| decay * mem[a] + k[a / 4] * v[a % 4])
        .collect();
    let mut hs = Vec::new();
    for row in 0..3 {
        // A query that picks `row`: large logits for it through y's first unit.
        let mut wq = vec![0.0; 12];
        wq[row] = 40.0;
        let mut mm = m.clone();
        let mut pp = p.clone();
        set(&mut pp, "w_q", &wq);
        mm.set_params(&pp).unwrap();
        mm.predict(&real(1, 1, &[0.0])).unwrap();
        let h = get(mm.state(), "h").to_vec();
        for j in 0..4 {
            let want = (y[j] + written[row * 4 + j]).tanh();
            assert!(
                (h[j] - want).abs() < 1e-9,
                "row {row} unit {j}: {} vs {want}",
                h[j]
            );
        }
        hs.push(h);
    }
    assert!(
        hs[0] != hs[1] && hs[1] != hs[2],
        "the query does not address the memory"
    );
    // And the read is not the column mean.
    let mean: Vec<f64> = (0..4)
        .map(|j| (0..3).map(|r| written[r * 4 + j]).sum::<f64>() / 3.0)
        .collect();
    for h in &hs {
        assert!(
            (0..4).any(|j| (h[j] - (y[j] + mean[j]).tanh()).abs() > 1e-3),
            "read equals the column mean"
        );
    }
}

#[test]
fn diagnostics_report_each_track() {
    for compat in ["design", "reference"] {
        let mut m = model::<f64>(
            &format!("(hidden: 2, memory: 2, compat: \"{compat}\")"),
            1,
            1,
            0,
        );
        let names: Vec<&str> = m.diagnostics().iter().map(|d| d.name).collect();
        assert_eq!(names, Dtpn::DIAGNOSTICS);
        assert!(
            m.diagnostics().iter().all(|d| d.value == 0.0),
            "fresh state"
        );
        let mut st = m.state().clone();
        set(&mut st, "h", &[9.0, 9.0]);
        set(&mut st, "e", &[0.5, -1.5]);
        set(&mut st, "n", &[-0.2, 0.4]);
        set(&mut st, "memory", &[1.0, -2.0, 3.0, -4.0]);
        m.set_state(&st).unwrap();
        let d: Vec<f64> = m.diagnostics().iter().map(|d| d.value).collect();
        assert_eq!(d, vec![1.0, 0.30000000000000004, 2.5], "{compat}");
        m.predict(&real(4, 1, &[0.3, -0.2, 0.9, 1.0])).unwrap();
        let st = m.state();
        let mean_abs = |v: &[f64]| v.iter().map(|x| x.abs()).sum::<f64>() / v.len() as f64;
        let d: Vec<f64> = m.diagnostics().iter().map(|d| d.value).collect();
        assert_eq!(
            d,
            vec![
                mean_abs(get(st, "e")),
                mean_abs(get(st, "n")),
                mean_abs(get(st, "memory"))
            ]
        );
    }
}

#[test]
fn training_moves_every_parameter_and_learns_a_delayed_recall() {
    // y_t = x_{t−2}: needs memory. Both modes; every cell parameter must change.
    let mut rng = Rng::new(4);
    let data = Dataset {
        io: IoSpec::regression(1, 1),
        sequences: (0..12)
            .map(|_| {
                let x: Vec<f64> = (0..40).map(|_| rng.normal()).collect();
                let y: Vec<f64> = (0..40)
                    .map(|t| if t >= 2 { x[t - 2] } else { 0.0 })
                    .collect();
                Sequence {
                    inputs: Inputs::Real(Array2::from_shape_vec((40, 1), x).unwrap()),
                    targets: Targets::Real(Array2::from_shape_vec((40, 1), y).unwrap()),
                    mask: None,
                }
            })
            .collect(),
    };
    for compat in ["design", "reference"] {
        let mut m = model::<f64>(
            &format!("(hidden: 12, memory: 4, compat: \"{compat}\")"),
            1,
            1,
            1,
        );
        let before = m.params().clone();
        let loss0 = m.evaluate(&data).unwrap().mse.unwrap();
        let cfg = TrainConfig {
            epochs: 40,
            validation: 0.0,
            window: 0,
            learning_rate: 0.02,
            ..Default::default()
        };
        m.fit(&data, &cfg, &mut |_| {}).unwrap();
        let loss1 = m.evaluate(&data).unwrap().mse.unwrap();
        assert!(loss1 < 0.5 * loss0, "{compat}: mse {loss0} → {loss1}");
        for e in before.layout().entries() {
            if e.name.starts_with("head.") {
                continue;
            }
            assert_ne!(
                get(&before, &e.name),
                get(m.params(), &e.name),
                "{compat}: {} was not trained",
                e.name
            );
        }
    }
}

#[test]
fn windowed_and_chunked_forms_equal_the_step_loop_in_both_modes() {
    let mut rng = Rng::new(21);
    let x = Inputs::Real(Array2::from_shape_fn((50, 3), |_| rng.normal()));
    let other = Inputs::Real(Array2::from_shape_fn((31, 3), |_| rng.normal()));
    for compat in ["design", "reference"] {
        let m = model::<f64>(
            &format!("(hidden: 7, memory: 5, beta: 0.8, compat: \"{compat}\")"),
            3,
            2,
            2,
        );
        let seq = m.clone().predict(&x).unwrap();
        let den = seq.mapv(|v| v * v).sum().sqrt();
        // The windowed form (matrix products over a batch), beside another sequence.
        let win = m.predict_batch(&[x.clone(), other.clone()]).unwrap();
        let num = (&win[0] - &seq).mapv(|v| v * v).sum().sqrt();
        assert!(num / den < 1e-12, "{compat} window: {:e}", num / den);
        let alone = m.predict_batch(std::slice::from_ref(&other)).unwrap();
        assert_eq!(alone[0], win[1], "{compat}: batched differs from alone");
        for chunk in [1, 3, 16, 50] {
            let ch = m.clone().predict_chunked(&x, chunk).unwrap();
            let num = (&ch - &seq).mapv(|v| v * v).sum().sqrt();
            assert!(num / den < 1e-12, "{compat} chunk {chunk}: {:e}", num / den);
        }
    }
}
